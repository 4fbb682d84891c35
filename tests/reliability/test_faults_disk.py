"""Disk full and read-only output, simulated at the OS calls of the atomic write (write, fsync,
rename, temp-file creation) during autosave, export, ``zsas segment`` and ``zsas label``: the
last good file stays intact, no temp file is left behind, and the message names the file."""

from __future__ import annotations

import errno
import json
import os

import numpy as np
import pytest
from PIL import Image
from reliability_helpers import os_error, temp_leftovers, tree_bytes
from synthetic import blob_image

from zsas_gui.cli import main
from zsas_gui.core.errors import OutputError
from zsas_gui.core.export import ExportOptions, export
from zsas_gui.core.io.atomic import atomic_write_bytes
from zsas_gui.state.demo import annotate, make_synthetic_folder
from zsas_gui.state.project import Project

#: (step, errno name, words expected in the message)
FAULT_CASES = [
    ("write", "ENOSPC", "No space left on device"),
    ("fsync", "ENOSPC", "No space left on device"),
    ("fsync", "EIO", "Input/output error"),
    ("replace", "EROFS", "Read-only file system"),
    ("create", "EROFS", "Read-only file system"),
    ("create", "EACCES", "Permission denied"),
]
IDS = [f"{s}-{e}" for s, e, _ in FAULT_CASES]
REL = "test/scratch/000.png"


@pytest.mark.parametrize("step, err, words", FAULT_CASES, ids=IDS)
def test_atomic_write_keeps_the_old_file(tmp_path, write_faults, step, err, words):
    target = tmp_path / "dir" / "file.json"
    atomic_write_bytes(target, b"old and good")
    write_faults.arm(step, err)
    with pytest.raises(OutputError) as exc:
        atomic_write_bytes(target, b"new " * 10_000)
    assert str(target) in str(exc.value) and words in str(exc.value)
    write_faults.disarm()
    assert target.read_bytes() == b"old and good"
    assert temp_leftovers(tmp_path) == []


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "parts"
    truth = make_synthetic_folder(root)
    proj = Project.open(root)
    annotate(proj, truth)
    return proj, truth


@pytest.mark.parametrize("step, err, words", FAULT_CASES, ids=IDS)
@pytest.mark.parametrize("target", [".png", ".json"])
def test_autosave_fault_keeps_the_last_good_record(project, write_faults, step, err, words, target):
    proj, truth = project
    before = tree_bytes(proj.root / ".zsas")
    rec = proj.load(REL)
    rec.mask = np.zeros_like(truth[REL])
    rec.mask[:4, :4] = True
    rec.status = "edited"
    write_faults.arm(step, err, match=target)
    with pytest.raises(OutputError) as exc:
        proj.save(rec)
    assert words in str(exc.value) and REL.rsplit("/", 1)[-1] in str(exc.value)
    write_faults.disarm()
    after = tree_bytes(proj.root / ".zsas")
    # nothing changed but, at most, the new mask file written before the record failed
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert changed <= {k for k in after if k.startswith("masks/") and k not in before}
    assert temp_leftovers(proj.root) == []
    reopened = Project.open(proj.root)
    last = reopened.load(REL)
    assert reopened.problems == [] and last.status == "accepted"
    assert np.array_equal(last.mask, truth[REL])
    reopened.save(rec)                                # the disk is back: the edit saves
    assert Project.open(proj.root).load(REL).status == "edited"


@pytest.mark.parametrize("fmt", ["mvtec", "coco", "labelme", "yolo", "png", "folder"])
@pytest.mark.parametrize("step, err", [("write", "ENOSPC"), ("create", "EROFS")])
def test_export_fault_leaves_the_previous_export_whole(project, tmp_path, write_faults, fmt, step, err):
    proj, _ = project
    items = proj.export_items(("accepted", "edited", "good"))
    out = tmp_path / "export"
    export(items, fmt, out, ExportOptions(protect=proj.root))
    before = tree_bytes(out)
    write_faults.arm(step, err, after=3)
    with pytest.raises(OutputError) as exc:
        export(items, fmt, out, ExportOptions(overwrite=True, protect=proj.root))
    assert os.strerror(getattr(errno, err)) in str(exc.value)
    assert write_faults.failed and write_faults.failed[0] in str(exc.value)
    write_faults.disarm()
    assert tree_bytes(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "parts"]


def test_export_into_a_read_only_parent_is_a_clear_error(project, tmp_path, monkeypatch, capsys):
    """The export folder cannot even be created: one line naming it, no traceback."""
    proj, _ = project
    ro = tmp_path / "ro"
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):
        if str(path).startswith(str(ro)):
            raise os_error("EROFS", path)
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    rc = main(["export", str(proj.root), "--format", "png", "-o", str(ro / "out")])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    assert "Read-only file system" in err and str(ro) in err
    assert not ro.exists()


def test_export_source_image_vanishing_mid_export(project, tmp_path, monkeypatch):
    """An image deleted after validation: the export stops with a message naming it."""
    from zsas_gui.core.export import common

    proj, _ = project
    items = proj.export_items(("accepted", "edited", "good"))
    real = common.Path.read_bytes
    victim = items[2].image_path

    def read_bytes(self):
        if self == victim:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(self))
        return real(self)

    monkeypatch.setattr(common.Path, "read_bytes", read_bytes)
    with pytest.raises(OutputError, match=str(victim)):
        export(items, "coco", tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob("out.tmp-*"))


@pytest.fixture
def images(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(4):
        Image.fromarray(blob_image((40, 48), [(10 + 8 * i, 20)], seed=i)).save(src / f"{i}.png")
    return src


def test_segment_disk_full_mid_run_stops_with_the_file_name(images, tmp_path, tiny_models, write_faults,
                                                            capsys):
    clip, sam = tiny_models
    out = tmp_path / "out"
    args = ["segment", str(images), "-o", str(out), "--clip", str(clip), "--sam", str(sam), "--device", "cpu"]
    assert main(args) == 0
    before = tree_bytes(out)
    capsys.readouterr()
    write_faults.arm("write", "ENOSPC", after=6, match=str(out))
    rc = main(args)
    err = capsys.readouterr().err
    write_faults.disarm()
    assert rc == 1 and "Traceback" not in err
    assert f"zsas: error: cannot write {write_faults.failed[0]}: No space left on device" in err
    assert len(write_faults.failed) == 1, "the run must stop at the first failed write"
    after = tree_bytes(out)
    assert set(after) == set(before) and temp_leftovers(out) == []
    for rel, data in after.items():                 # each file is the old one or a whole new one
        if rel.endswith(".png"):
            with Image.open(out / rel) as im:
                im.load()
        elif rel.endswith(".json"):
            json.loads(data)


def test_label_disk_full_stops_keeps_records_and_resumes(images, tiny_models, write_faults, capsys):
    clip, sam = tiny_models
    args = ["label", str(images), "--clip", str(clip), "--sam", str(sam), "--device", "cpu"]
    Project.open(images)                              # the sidecar exists before the fault
    write_faults.arm("write", "ENOSPC", after=4, match=".zsas")   # 2 images = 2 masks + 2 records
    rc = main(args)
    err = capsys.readouterr().err
    write_faults.disarm()
    assert rc == 1 and "No space left on device" in err and "Traceback" not in err
    assert write_faults.failed[0] in err
    proj = Project.open(images)
    assert proj.problems == [] and temp_leftovers(images) == []
    done = [e.rel for e in proj.images if proj.has_mask(e.rel)]
    assert done == ["0.png", "1.png"]
    assert main(args) == 0                            # resumes with the other two
    assert "2/2 images pre-labelled" in capsys.readouterr().out
