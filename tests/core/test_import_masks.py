"""Finding existing ground truth: MVTec layout and plain PNG mask folders."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from zsas_gui.core.io.imageio import load_mask, save_mask, save_png
from zsas_gui.core.io.label_import import image_rels, load_ground_truth, match_masks


def _img(path, hw=(40, 40)):
    save_png(path, np.full((*hw, 3), 128, np.uint8))


def test_mvtec_layout(tmp_path):
    for rel in ("train/good/000.png", "test/good/000.png", "test/crack/000.png", "test/crack/001.jpg"):
        _img(tmp_path / rel)
    save_mask(tmp_path / "ground_truth/crack/000_mask.png", np.eye(40, dtype=bool))
    save_mask(tmp_path / "ground_truth/crack/001_mask.png", np.eye(40, dtype=bool))
    save_mask(tmp_path / "ground_truth/crack/009_mask.png", np.eye(40, dtype=bool))
    match = match_masks(tmp_path)
    assert match.layout == "mvtec"
    assert match.masks == {"test/crack/000.png": tmp_path / "ground_truth/crack/000_mask.png",
                           "test/crack/001.jpg": tmp_path / "ground_truth/crack/001_mask.png"}
    assert match.unmatched == [tmp_path / "ground_truth/crack/009_mask.png"]
    assert "ground_truth/crack/000_mask.png" not in image_rels(tmp_path)
    assert load_ground_truth(tmp_path) == match.masks


def test_mvtec_dataset_imported_into_a_copy_of_its_images(tmp_path):
    """--from-masks DATA where DATA is a whole MVTec dataset (images beside ground_truth/) and
    the project a copy of its images: the good images of DATA are not taken as masks."""
    data, proj = tmp_path / "data", tmp_path / "proj"
    for rel in ("train/good/000.png", "test/good/000.png", "test/crack/000.png"):
        _img(data / rel)
        _img(proj / rel)
    save_mask(data / "ground_truth/crack/000_mask.png", np.eye(40, dtype=bool))
    match = match_masks(proj, masks_root=data)
    assert match.masks == {"test/crack/000.png": data / "ground_truth/crack/000_mask.png"}
    assert match.unmatched == []


def test_plain_masks_in_a_separate_mirrored_folder(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    for rel in ("a/x.png", "a/y.jpg", "z.png"):
        _img(images / rel)
    save_mask(masks / "a/x.png", np.eye(40, dtype=bool))
    save_mask(masks / "a/y_mask.png", np.eye(40, dtype=bool))
    save_mask(masks / "b/stray.png", np.eye(40, dtype=bool))
    gt = load_ground_truth(masks, images_root=images)
    assert gt == {"a/x.png": masks / "a/x.png", "a/y.jpg": masks / "a/y_mask.png"}
    assert match_masks(images, masks_root=masks).unmatched == [masks / "b/stray.png"]


def test_masks_beside_images(tmp_path):
    _img(tmp_path / "p/1.png")
    _img(tmp_path / "p/2.png")
    save_mask(tmp_path / "p/1_mask.png", np.eye(40, dtype=bool))
    assert image_rels(tmp_path) == ["p/1.png", "p/2.png"]
    assert load_ground_truth(tmp_path) == {"p/1.png": tmp_path / "p/1_mask.png"}


def test_magnetic_tile_ground_truth(shared_data, tmp_path):
    src = shared_data / "magnetic_tile"
    if not src.is_dir():
        pytest.skip(f"{src} not present")
    gt = load_ground_truth(src)
    assert len(gt) == 40 and all(rel.startswith("test/") and "/good/" not in rel for rel in gt)
    assert gt["test/crack/003.png"] == src / "ground_truth/crack/003_mask.png"
    assert match_masks(src).unmatched == []
    # also when the masks are copied out into their own folder next to a copy of the images
    shutil.copytree(src / "ground_truth", tmp_path / "gt" / "ground_truth")
    assert len(load_ground_truth(tmp_path / "gt", images_root=src)) == 40
    assert load_mask(gt["test/crack/003.png"]).any()
