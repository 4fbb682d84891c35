"""Existing masks imported as starting annotations of a project."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from zsas_gui.cli import main
from zsas_gui.core.io.imageio import load_mask, save_mask
from zsas_gui.state.demo import make_synthetic_folder
from zsas_gui.state.importer import import_masks
from zsas_gui.state.project import Project


def test_import_plain_masks_keeps_reviewed_images(tmp_path):
    root = tmp_path / "parts"
    truth = make_synthetic_folder(root)
    masks = tmp_path / "masks"
    for rel, m in truth.items():
        if m is not None:
            save_mask(masks / rel, m)
    save_mask(masks / "test/hole/001.png", np.ones((5, 5), bool))      # wrong size
    proj = Project.open(root)
    reviewed = proj.load("test/scratch/001.png")
    reviewed.status = "rejected"
    proj.save(reviewed)

    report = import_masks(proj, masks, missing_good=True)
    assert sorted(report.imported) == ["test/hole/000.png", "test/scratch/000.png"]
    assert report.skipped_reviewed == ["test/scratch/001.png"]
    assert len(report.failed) == 1 and report.failed[0].startswith("test/hole/001.png:")
    assert sorted(report.marked_good) == [r for r in sorted(truth) if truth[r] is None]
    again = Project.open(root)
    rec = again.load("test/scratch/000.png")
    assert np.array_equal(rec.mask, truth["test/scratch/000.png"]) and rec.status == "unreviewed"
    assert rec.provenance["mask_source"] == "imported"
    assert again.load("test/scratch/001.png").status == "rejected"


def test_cli_imports_magnetic_tile_ground_truth(shared_data, tmp_path, capsys):
    src = shared_data / "magnetic_tile"
    if not src.is_dir():
        pytest.skip(f"{src} not present")
    root = tmp_path / "mt"
    shutil.copytree(src, root)
    assert main(["label", str(root), "--from-masks", str(root), "--missing-good",
                 "--import-status", "accepted"]) == 0
    assert "40 masks imported, 30 images marked good" in capsys.readouterr().out
    proj = Project.open(root)
    assert proj.summary()["accepted"] == 40 and proj.summary()["good"] == 30
    rec = proj.load("test/fray/002.png")
    assert rec.defect_class == "fray"
    assert np.array_equal(rec.mask, load_mask(src / "ground_truth/fray/002_mask.png"))
