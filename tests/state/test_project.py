"""Project store: reopen restores everything, crash safety, corrupt records, orphans, renames."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from zsas_gui.core.errors import OutputError, RecordError
from zsas_gui.core.io import atomic
from zsas_gui.core.io.imageio import save_mask
from zsas_gui.core.types import MethodParams, Prompts, TextPrompts
from zsas_gui.state.demo import annotate, make_synthetic_folder
from zsas_gui.state.project import Project
from zsas_gui.state.record import SCHEMA_VERSION, NewerSchemaError

REL = "test/scratch/000.png"


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "parts"
    truth = make_synthetic_folder(root)
    return root, truth


def test_open_lists_images_sorted_and_creates_the_sidecar(folder):
    root, truth = folder
    proj = Project.open(root)
    assert [e.rel for e in proj.images] == sorted(truth)
    assert all(e.path == root / e.rel for e in proj.images)
    meta = json.loads((root / ".zsas" / "project.json").read_text())
    assert meta["schema_version"] == SCHEMA_VERSION
    assert proj.summary() == {"unreviewed": len(truth), "accepted": 0, "edited": 0, "rejected": 0, "good": 0}
    assert proj.problems == [] and proj.orphans == []


def test_open_missing_folder_is_a_user_error(tmp_path):
    with pytest.raises(OutputError, match="not a folder"):
        Project.open(tmp_path / "nope")


def test_ground_truth_folder_is_not_scanned(folder):
    root, truth = folder
    (root / "ground_truth" / "scratch").mkdir(parents=True)
    save_mask(root / "ground_truth" / "scratch" / "000_mask.png", truth[REL])
    assert "ground_truth/scratch/000_mask.png" not in [e.rel for e in Project.open(root).images]


def test_reopen_restores_everything(folder):
    root, truth = folder
    proj = Project.open(root)
    rec = proj.load(REL)
    assert rec.status == "unreviewed" and rec.defect_class == "scratch" and rec.mask is None
    rec.mask = truth[REL]
    rec.status = "edited"
    rec.defect_class = "deep scratch"
    rec.prompts = Prompts(np.array([[10.5, 12.25]]), np.array([1]), np.array([0.8]))
    rec.params = MethodParams(tau=0.42, k_pos=5, gate=0.3)
    rec.text_prompts = TextPrompts(object_name="tile")
    rec.image_score = 0.61
    rec.provenance = {"mask_source": "edited", "models": {"clip": "tiny", "sam": "tiny"}}
    proj.save(rec)

    again = Project.open(root).load(REL)
    assert np.array_equal(again.mask, truth[REL]) and again.mask.dtype == bool
    assert (again.status, again.defect_class, again.image_score) == ("edited", "deep scratch", 0.61)
    assert again.params == rec.params and again.text_prompts == rec.text_prompts
    assert np.array_equal(again.prompts.points, rec.prompts.points)
    assert again.provenance == rec.provenance
    assert again.created == rec.created and again.updated == rec.updated
    assert again.image_size == truth[REL].shape and len(again.image_hash) == 64


def test_mask_on_disk_is_0_255_and_summary_counts(folder):
    root, truth = folder
    proj = Project.open(root)
    annotate(proj, truth)
    masks = list((root / ".zsas" / "masks").rglob("*.png"))
    assert len(masks) == sum(m is not None for m in truth.values())
    from PIL import Image
    for m in masks:
        with Image.open(m) as im:
            assert set(np.unique(np.asarray(im)).tolist()) == {0, 255}
    assert Project.open(root).summary() == {"unreviewed": 0, "accepted": 4, "edited": 0, "rejected": 0,
                                            "good": 3}


def test_updated_changes_created_stays(folder):
    root, _ = folder
    proj = Project.open(root)
    rec = proj.load(REL)
    proj.save(rec)
    first = proj.load(REL)
    first.status = "rejected"
    proj.save(first)
    second = Project.open(root).load(REL)
    assert second.created == first.created and second.updated >= first.created
    assert second.status == "rejected"


def _saved(root, truth):
    proj = Project.open(root)
    rec = proj.load(REL)
    rec.mask, rec.status = truth[REL], "accepted"
    proj.save(rec)
    return proj


@pytest.mark.parametrize("fail_on", [".png", ".json"])
def test_failed_write_leaves_the_last_good_record(folder, monkeypatch, fail_on):
    root, truth = folder
    proj = _saved(root, truth)
    real = atomic.atomic_write_bytes

    def flaky(path, data):
        if str(path).endswith(fail_on):
            # what a full disk does: part of the temp file written, then an error
            tmp = os.path.join(os.path.dirname(path), ".partial.tmp")
            with open(tmp, "wb") as fh:
                fh.write(data[: len(data) // 2])
            raise OutputError(f"cannot write {path}: No space left on device")
        return real(path, data)

    rec = proj.load(REL)
    rec.mask = np.zeros_like(truth[REL])
    rec.mask[:5, :5] = True
    rec.status = "edited"
    monkeypatch.setattr(atomic, "atomic_write_bytes", flaky)
    with pytest.raises(OutputError, match="No space"):
        proj.save(rec)
    monkeypatch.setattr(atomic, "atomic_write_bytes", real)

    reopened = Project.open(root)
    last = reopened.load(REL)
    assert reopened.problems == []
    assert last.status == "accepted" and np.array_equal(last.mask, truth[REL])
    # the next successful save cleans up the mask the failed save left behind
    reopened.save(rec)
    masks = [p.name for p in (root / ".zsas" / "masks" / "test" / "scratch").glob("000.png.*.png")]
    assert len(masks) == 1
    assert np.array_equal(Project.open(root).load(REL).mask, rec.mask)


def test_corrupt_record_is_reported_kept_then_moved_aside(folder):
    root, truth = folder
    _saved(root, truth)
    path = root / ".zsas" / "records" / f"{REL}.json"
    path.write_text('{"schema_version": 1, "image": "test/scratch/000.png", "status": ')
    garbage = path.read_bytes()

    proj = Project.open(root)
    assert len(proj.problems) == 1 and str(path) in proj.problems[0]
    assert proj.problem_for(REL) is not None
    assert path.read_bytes() == garbage                     # reported, untouched
    rec = proj.load(REL)
    assert rec.status == "unreviewed" and rec.mask is None  # a fresh record to work on
    assert path.read_bytes() == garbage

    rec.status = "good"
    proj.save(rec)
    aside = list(path.parent.glob("000.png.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == garbage
    assert "moved aside" in proj.problems[-1]
    reopened = Project.open(root)
    assert reopened.problems == [] and reopened.load(REL).status == "good"


def test_bad_field_and_missing_mask_are_problems(folder):
    root, truth = folder
    proj = Project.open(root)
    annotate(proj, truth)
    rec_path = root / ".zsas" / "records" / "test" / "hole" / "000.png.json"
    d = json.loads(rec_path.read_text())
    d["status"] = "maybe"
    rec_path.write_text(json.dumps(d))
    for m in (root / ".zsas" / "masks" / "test" / "scratch").glob("001.png.*.png"):
        m.unlink()
    proj = Project.open(root)
    assert any("field 'status'" in p and str(rec_path) in p for p in proj.problems)
    assert proj.load("test/scratch/001.png").mask is None
    assert any("001.png" in p and "mask" in p for p in proj.problems)
    assert proj.summary()["accepted"] == 2


def test_newer_project_schema_refused(folder):
    root, _ = folder
    Project.open(root)
    (root / ".zsas" / "project.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(NewerSchemaError, match="newer zsas-gui"):
        Project.open(root)


def test_corrupt_project_file_refused_not_overwritten(folder):
    root, _ = folder
    Project.open(root)
    pf = root / ".zsas" / "project.json"
    pf.write_text("{not json")
    with pytest.raises(RecordError, match="project.json"):
        Project.open(root)
    assert pf.read_text() == "{not json"


def test_newer_record_is_never_overwritten(folder):
    root, truth = folder
    _saved(root, truth)
    path = root / ".zsas" / "records" / f"{REL}.json"
    d = json.loads(path.read_text())
    d["schema_version"] = SCHEMA_VERSION + 1
    path.write_text(json.dumps(d))
    proj = Project.open(root)
    assert any("newer" in p for p in proj.problems)
    with pytest.raises(NewerSchemaError):
        proj.save(proj.load(REL))
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION + 1


def test_removed_image_leaves_an_orphan(folder):
    root, truth = folder
    annotate(Project.open(root), truth)
    (root / REL).unlink()
    proj = Project.open(root)
    assert proj.orphans == [REL]
    assert REL not in [e.rel for e in proj.images]
    assert np.array_equal(proj.load(REL).mask, truth[REL])      # kept and readable
    assert sum(proj.summary().values()) == len(truth) - 1


def test_renamed_image_is_relinked_by_content(folder):
    root, truth = folder
    annotate(Project.open(root), truth)
    new = "moved/renamed_scratch.png"
    (root / "moved").mkdir()
    os.replace(root / REL, root / new)
    (root / "test" / "hole" / "000.png").unlink()             # a plain removal stays an orphan

    proj = Project.open(root)
    assert proj.relinked == [(REL, new)]
    assert proj.orphans == ["test/hole/000.png"]
    rec = proj.load(new)
    assert np.array_equal(rec.mask, truth[REL]) and rec.status == "accepted"
    assert rec.defect_class == "scratch" and rec.provenance["renamed_from"] == REL
    assert not (root / ".zsas" / "records" / f"{REL}.json").exists()
    assert not list((root / ".zsas" / "masks" / "test" / "scratch").glob("000.png.*"))
    again = Project.open(root)
    assert again.relinked == [] and again.has_record(new) and again.problems == []


def test_edited_image_bytes_are_not_relinked(folder):
    root, truth = folder
    annotate(Project.open(root), truth)
    data = bytearray((root / REL).read_bytes())
    (root / REL).unlink()
    (root / "other.png").write_bytes(bytes(data[:-1]) + b"\x00")   # same size, other bytes
    proj = Project.open(root)
    assert proj.relinked == [] and REL in proj.orphans and not proj.has_record("other.png")


def test_export_items_follow_statuses(folder):
    root, truth = folder
    proj = Project.open(root)
    annotate(proj, truth)
    rec = proj.load(REL)
    rec.status = "rejected"
    proj.save(rec)
    items = proj.export_items(("accepted", "good"))
    assert REL not in {i.rel for i in items} and len(items) == len(truth) - 1
    assert all(i.mask_path is None for i in items if i.status == "good")
    assert all(i.mask_path.is_file() for i in items if i.status == "accepted")
    with pytest.raises(ValueError, match="unknown status"):
        proj.export_items(("done",))


def test_mvtec_dataset_root_lists_no_ground_truth_masks(tmp_path):
    """Opened at a dataset root (categories as subfolders), every category's ground_truth/ is
    left out; a folder merely named ground_truth elsewhere is kept."""
    import numpy as np
    from PIL import Image

    from zsas_gui.state.project import Project

    img = Image.fromarray(np.zeros((40, 40, 3), np.uint8))
    for rel in ("bottle/test/crack/000.png", "bottle/ground_truth/crack/000_mask.png",
                "bottle/train/good/000.png", "misc/ground_truth/keep.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        img.save(tmp_path / rel)
    rels = [e.rel for e in Project.open(tmp_path).images]
    assert rels == ["bottle/test/crack/000.png", "bottle/train/good/000.png", "misc/ground_truth/keep.png"]


def test_load_sees_a_record_another_process_wrote_after_open(folder):
    """Two writers (``zsas label --ray``'s actors, the app): a record saved by one after the other
    opened the project is loaded, not replaced by a fresh one; a pre-label never overwrites it."""
    from types import SimpleNamespace

    from zsas_gui.state.prelabel import save_prelabel

    root, _ = folder
    mine, theirs = Project.open(root), Project.open(root)
    rec = theirs.load(REL)
    rec.mask = np.zeros((8, 8), bool)
    rec.status = "accepted"
    theirs.save(rec)
    stored = theirs.store.record_path(REL).read_bytes()
    result = SimpleNamespace(pred_mask=np.ones((8, 8), bool), prompts=Prompts.empty(), gated=False,
                             anomaly=SimpleNamespace(image_score=0.5), provenance={})
    assert save_prelabel(mine, REL, result, MethodParams(), TextPrompts()) is False
    assert theirs.store.record_path(REL).read_bytes() == stored
    assert mine.load(REL).status == "accepted"
