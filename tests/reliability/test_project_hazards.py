"""Project hazards found by hostile use (issue 14, items 2, 3 and 7): stale labels exported
silently, writes escaping ``.zsas`` through links, a read-only project that cannot be exported,
folders left by killed exports, an unlistable folder skipped silently, mask files taken for
images, a record with 200k prompt points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from synthetic import blob_image

from zsas_gui.cli import main
from zsas_gui.core.errors import OutputError
from zsas_gui.core.export.staging import sweep_leftovers
from zsas_gui.core.io.imageio import save_mask, save_png
from zsas_gui.state.project import MAX_PROMPT_POINTS, Project


def _bmp(path: Path, seed: int) -> None:
    """A 48x64 BMP: every one has the same byte size, whatever its pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(blob_image((48, 64), [(20, 24)], radius=6, seed=seed)).save(path, format="BMP")


def _accept(root: Path, rel: str) -> None:
    proj = Project.open(root)
    rec = proj.load(rel)
    rec.status, rec.mask = "accepted", np.pad(np.ones((8, 8), bool), ((10, 30), (10, 46)))
    proj.save(rec)


# -- item 2 ------------------------------------------------------------------------------------
def test_an_image_replaced_after_review_is_flagged_and_left_out_until_reviewed_again(tmp_path, capsys):
    root = tmp_path / "p"
    for name, seed in (("a.bmp", 1), ("b.bmp", 2), ("c.bmp", 3)):
        _bmp(root / name, seed)
        _accept(root, name)
    size = (root / "a.bmp").stat().st_size
    _bmp(root / "a.bmp", 7)                                   # other pixels, same size in bytes
    assert (root / "a.bmp").stat().st_size == size
    data = (root / "c.bmp").read_bytes()
    (root / "c.bmp").write_bytes(data)                        # the same bytes written again: a new time
    os.utime(root / "c.bmp", ns=(1, 10**18))
    proj = Project.open(root, create=False)
    assert proj.image_changed("a.bmp") and not proj.image_changed("b.bmp") and not proj.image_changed("c.bmp")
    # --test-only: the project has no good image (an mvtec export needs them to train)
    assert main(["export", str(root), "-f", "mvtec", "--test-only", "-o", str(tmp_path / "x")]) == 0
    err = capsys.readouterr().err
    assert "a.bmp: image changed since review" in err
    sources = [e["source"] for e in json.loads((tmp_path / "x" / "zsas_export.json").read_text())["items"]]
    assert sorted(sources) == ["b.bmp", "c.bmp"]
    _accept(root, "a.bmp")                                   # reviewed again: exported again
    assert not Project.open(root).image_changed("a.bmp")
    assert main(["export", str(root), "-f", "mvtec", "--test-only", "-o", str(tmp_path / "y")]) == 0
    assert "changed since review" not in capsys.readouterr().err


# -- item 3 ------------------------------------------------------------------------------------
@pytest.mark.parametrize("linked", ["records/test", "masks"])
def test_a_link_in_the_sidecar_that_leads_out_is_refused(tmp_path, linked, capsys):
    root = tmp_path / "p"
    save_png(root / "test" / "a.png", blob_image((48, 64), [(20, 24)], radius=6, seed=1))
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("a.png.json", "a.png.0123456789abcdef.png", "test/a.png.0123456789abcdef.png"):
        (outside / name).parent.mkdir(parents=True, exist_ok=True)
        (outside / name).write_text("precious")

    def tree():
        return sorted((p.relative_to(outside).as_posix(), p.read_text()) for p in outside.rglob("*") if p.is_file())

    before = tree()
    link = root / ".zsas" / linked
    link.parent.mkdir(parents=True)
    link.symlink_to(outside, target_is_directory=True)
    proj = Project.open(root)
    rec = proj.load("test/a.png")
    rec.status, rec.mask = "accepted", np.ones((48, 64), bool)
    with pytest.raises(OutputError, match="symbolic link"):
        proj.save(rec)
    assert tree() == before
    save_mask(tmp_path / "masks" / "test" / "a.png", np.ones((48, 64), bool))
    assert main(["label", str(root), "--from-masks", str(tmp_path / "masks")]) == 1
    assert "symbolic link" in capsys.readouterr().err
    assert tree() == before


# -- item 7 ------------------------------------------------------------------------------------
def test_a_read_only_project_with_a_renamed_image_exports(tmp_path, monkeypatch):
    root = tmp_path / "p"
    _bmp(root / "a.bmp", 1)
    _accept(root, "a.bmp")
    os.replace(root / "a.bmp", root / "renamed.bmp")
    from zsas_gui.core.io import atomic

    def refuse(*a, **k):
        raise OutputError("read-only file system (simulated)")

    monkeypatch.setattr(atomic, "atomic_write_bytes", refuse)   # every store write fails
    monkeypatch.setattr("zsas_gui.state.store.atomic.atomic_write_bytes", refuse, raising=False)
    proj = Project.open(root, create=False)
    assert proj.relinked == [("a.bmp", "renamed.bmp")] and proj.status("renamed.bmp") == "accepted"
    items = proj.export_items(("accepted",))
    assert [i.rel for i in items] == ["renamed.bmp"] and items[0].mask_path.is_file()
    assert (root / ".zsas" / "records" / "a.bmp.json").is_file()    # nothing moved on disk


def test_folders_left_by_killed_exports_are_cleaned_by_the_next(tmp_path):
    out = tmp_path / "out"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    pid = int(dead.stdout)
    (tmp_path / f"out.tmp-{pid}" / "x").mkdir(parents=True)           # killed while writing
    (tmp_path / f"out.old-{pid}").mkdir()                              # killed between the renames
    (tmp_path / f"out.old-{pid}" / "zsas_export.json").write_text("{}")
    (tmp_path / f"out.tmp-{os.getpid()}").mkdir()                      # a running process's: kept
    done = sweep_leftovers(out)
    assert sorted(p.name for p in done) == [f"out.old-{pid}", f"out.tmp-{pid}"]
    assert (out / "zsas_export.json").is_file()                        # the previous export is back
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", f"out.tmp-{os.getpid()}"]


def test_an_unlistable_folder_is_named(tmp_path, monkeypatch):
    root = tmp_path / "p"
    save_png(root / "ok" / "a.png", blob_image((48, 64), [(20, 24)], radius=6, seed=1))
    save_png(root / "locked" / "b.png", blob_image((48, 64), [(20, 24)], radius=6, seed=2))
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)      # root does not feel chmod: simulate it
    proj = Project.open(root)
    assert [e.rel for e in proj.images] == ["ok/a.png"]
    assert any("locked: cannot list this folder (Permission denied)" in p for p in proj.problems)


@pytest.mark.parametrize("where", ["beside", "subfolder"])
def test_mask_files_inside_the_project_are_not_imported_as_images(tmp_path, where, capsys):
    root = tmp_path / "p"
    mask = np.zeros((48, 64), bool)
    mask[10:20, 10:30] = True
    for i in range(2):
        save_png(root / f"{i}.png", blob_image((48, 64), [(20, 24)], radius=6, seed=i))
        save_mask(root / (f"{i}_mask.png" if where == "beside" else f"masks/{i}.png"), mask)
    masks = root if where == "beside" else root / "masks"
    assert main(["label", str(root), "--from-masks", str(masks), "--missing-good"]) == 0
    out = capsys.readouterr().out
    assert "2 masks imported, 0 images marked good" in out
    proj = Project.open(root)
    assert sorted(r for r in (e.rel for e in proj.images) if proj.has_record(r)) == ["0.png", "1.png"]


def test_a_record_with_200k_prompt_points_is_capped_and_reported(tmp_path):
    root = tmp_path / "p"
    save_png(root / "a.png", blob_image((48, 64), [(20, 24)], radius=6, seed=1))
    _accept(root, "a.png")
    path = root / ".zsas" / "records" / "a.png.json"
    data = json.loads(path.read_text())
    n = 200_000
    data["prompts"] = {"points": [[float(i % 64), float(i % 48)] for i in range(n)], "labels": [1] * n,
                       "scores": None}
    path.write_text(json.dumps(data))
    proj = Project.open(root)
    rec = proj.load("a.png")
    assert len(rec.prompts) == MAX_PROMPT_POINTS and rec.status == "accepted" and rec.mask is not None
    assert any("200000 prompt points" in p for p in proj.problems)
