"""Exports imported back (issue 15, items 5 and 6): ``zsas label --from-masks OUT`` finds each
mask through ``OUT/zsas_export.json`` even where the export renamed the files, restores the
classes, and fails loudly on masks that match no image."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from zsas_gui.cli import main
from zsas_gui.core.errors import ZsasError
from zsas_gui.core.io.imageio import save_mask
from zsas_gui.core.io.label_import import match_masks
from zsas_gui.state.importer import import_masks
from zsas_gui.state.project import Project

RELS = ("scratch deep/a b.jpg", "傷.png", "ok/plain.png")


def _masks(hw=(40, 48)) -> dict[str, np.ndarray | None]:
    a = np.zeros(hw, bool)
    a[5:12, 8:20] = True
    b = np.zeros(hw, bool)
    b[20:25, 2:6] = True
    b[1, 1] = True
    return {RELS[0]: a, RELS[1]: b, RELS[2]: None}


def _images(root, hw=(40, 48)):
    rng = np.random.default_rng(0)
    for rel in RELS:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(100, 160, (*hw, 3), dtype=np.uint8)).save(path)


@pytest.fixture
def exported_project(tmp_path):
    root = tmp_path / "src"
    _images(root)
    proj = Project.open(root)
    for rel, mask in _masks().items():
        rec = proj.load(rel)
        rec.mask, rec.status = mask, "accepted" if mask is not None else "good"
        proj.save(rec)
    rec = proj.load(RELS[1])
    rec.defect_class = "crack / hairline"       # not the folder's name: only the manifest knows it
    proj.save(rec)
    return proj


def _fresh_copy(tmp_path, name="copy"):
    root = tmp_path / name
    _images(root)
    return root


@pytest.mark.parametrize("fmt", ["png", "mvtec", "folder"])
def test_round_trip_through_renamed_files(exported_project, tmp_path, capsys, fmt):
    out = tmp_path / f"out-{fmt}"
    assert main(["export", str(exported_project.root), "-f", fmt, "-o", str(out)]) == 0
    assert not (out / "傷.png").exists()                    # the export did rename it
    copy = _fresh_copy(tmp_path)
    capsys.readouterr()
    rc = main(["label", str(copy), "--from-masks", str(out), "--import-status", "accepted",
               "--missing-good"])
    text = capsys.readouterr()
    assert rc == 0, text
    n_masks = 3 if fmt == "png" else 2         # png writes an all-zero mask for the good image
    assert f"{n_masks} masks imported" in text.out and "0 mask files matched no image" in text.out
    proj = Project.open(copy)
    for rel, want in _masks().items():
        rec = proj.load(rel)
        if want is None:
            assert rec.status == "good"
        else:
            assert rec.status == "accepted" and np.array_equal(rec.mask, want), rel
    assert proj.load(RELS[1]).defect_class == "crack / hairline"
    assert proj.load(RELS[0]).defect_class == "scratch deep"


def test_manifest_paths_may_not_leave_the_masks_folder(exported_project, tmp_path):
    out = tmp_path / "out"
    assert main(["export", str(exported_project.root), "-f", "png", "-o", str(out)]) == 0
    outside = tmp_path / "outside.png"
    save_mask(outside, _masks()[RELS[0]])
    manifest = json.loads((out / "zsas_export.json").read_text())
    manifest["items"][0]["mask"] = "../outside.png"
    (out / "zsas_export.json").write_text(json.dumps(manifest))
    match = match_masks(_fresh_copy(tmp_path), masks_root=out)
    assert all(p.resolve().is_relative_to(out.resolve()) for p in match.masks.values())
    assert any("outside the masks folder" in p for p in match.problems)


def test_unmatched_masks_fail_unless_allowed(tmp_path, capsys):
    root = _fresh_copy(tmp_path)
    masks = tmp_path / "masks"
    save_mask(masks / "scratch deep" / "a b.png", _masks()[RELS[0]])
    save_mask(masks / "scratch deep" / "typo.png", _masks()[RELS[0]])    # no image of that name
    rc = main(["label", str(root), "--from-masks", str(masks)])
    err = capsys.readouterr().err
    assert rc == 1 and "typo.png" in err and "--allow-unmatched" in err
    assert Project.open(root).summary()["unreviewed"] == 3 and not Project.open(root).has_mask(RELS[0])
    assert main(["label", str(root), "--from-masks", str(masks), "--allow-unmatched"]) == 0
    assert "1 mask files matched no image" in capsys.readouterr().out
    assert Project.open(root).has_mask(RELS[0])


def test_import_masks_refuses_unmatched_before_writing(tmp_path):
    root = _fresh_copy(tmp_path)
    masks = tmp_path / "masks"
    save_mask(masks / "elsewhere.png", _masks()[RELS[0]])
    with pytest.raises(ZsasError, match="matched no image"):
        import_masks(Project.open(root), masks)
    assert not (root / ".zsas" / "records").exists() or not any((root / ".zsas" / "records").rglob("*.json"))
    report = import_masks(Project.open(root), masks, allow_unmatched=True)
    assert [p.name for p in report.unmatched] == ["elsewhere.png"]


def test_manifest_sources_missing_from_the_project_are_unmatched(exported_project, tmp_path, capsys):
    """A manifest is used alone: masks whose source is no image of the project are unmatched."""
    out = tmp_path / "out"
    assert main(["export", str(exported_project.root), "-f", "png", "-o", str(out)]) == 0
    other = tmp_path / "other"
    (other / "x").mkdir(parents=True)
    shutil.copy(exported_project.root / RELS[2], other / "x" / "plain.png")
    capsys.readouterr()
    assert main(["label", str(other), "--from-masks", str(out)]) == 1
    assert "matched no image" in capsys.readouterr().err
