"""``zsas label`` with tiny models on a copy of magnetic_tile, review, ``zsas export --format mvtec``."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from zsas_gui.cli import main
from zsas_gui.core.export import mvtec
from zsas_gui.core.export.validate import check_mvtec_layout
from zsas_gui.core.io.imageio import load_mask
from zsas_gui.state.project import Project

#: A small copy keeps the test fast on a CPU: one image per defect class, two good ones.
PICK = ["test/blowhole/000.png", "test/break/001.png", "test/crack/002.png", "test/fray/003.png",
        "test/uneven/004.png", "test/good/000.png", "train/good/000.png"]


@pytest.fixture
def tile_copy(shared_data, tmp_path):
    src = shared_data / "magnetic_tile"
    if not src.is_dir():
        pytest.skip(f"{src} not present")
    root = tmp_path / "magnetic_tile"
    for rel in PICK:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / rel, root / rel)
        parts = rel.split("/")
        if parts[0] == "test" and parts[1] != "good":
            gt = f"ground_truth/{parts[1]}/{parts[2][:-4]}_mask.png"
            (root / gt).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src / gt, root / gt)
    (root / "test" / "crack" / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root


def _hw(path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size[::-1]


def _pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def test_label_review_export_mvtec(tile_copy, tiny_models, tmp_path, capsys):
    clip_dir, sam_dir = tiny_models
    models = ["--clip", str(clip_dir), "--sam", str(sam_dir), "--device", "cpu"]

    # 1. pre-label: every image but the broken one gets an unreviewed auto annotation
    assert main(["label", str(tile_copy), *models]) == 3
    captured = capsys.readouterr()
    assert "zz_broken.png" in captured.err and "7/8 images pre-labelled" in captured.out
    proj = Project.open(tile_copy)
    assert len(proj.images) == 8                                 # ground_truth/ is not scanned
    assert proj.summary()["unreviewed"] == 8
    for rel in PICK:
        rec = proj.load(rel)
        assert rec.mask is not None and rec.mask.shape == _hw(tile_copy / rel)
        assert rec.provenance["mask_source"] == "auto" and rec.provenance["models"]["sam"]
        assert rec.provenance["anomaly_map"]["depths"] and len(rec.provenance["checkpoints"]["clip"]) == 64
        assert rec.prompts is not None and rec.image_score is not None

    # 2. resumable: a second run only does what is missing
    (tile_copy / ".zsas" / "records" / "test" / "fray" / "003.png.json").unlink()
    assert main(["label", str(tile_copy), *models]) == 3        # the broken image fails again
    assert "1/2 images pre-labelled" in capsys.readouterr().out
    assert Project.open(tile_copy).has_mask("test/fray/003.png")

    # 3. review: defects fixed from ground truth, good images marked good, one rejected
    proj = Project.open(tile_copy)
    for rel in PICK:
        rec = proj.load(rel)
        parts = rel.split("/")
        if parts[1] == "good":
            rec.status, rec.mask = "good", None
        elif parts[1] == "uneven":
            rec.status = "rejected"
        else:
            rec.mask = load_mask(tile_copy / "ground_truth" / parts[1] / f"{parts[2][:-4]}_mask.png")
            rec.status, rec.provenance = "edited", {**rec.provenance, "mask_source": "edited"}
        proj.save(rec)
    before = {rel: proj.load(rel).updated for rel in PICK}
    assert main(["label", str(tile_copy), *models, "--redo"]) == 3   # reviewed images untouched
    capsys.readouterr()
    proj = Project.open(tile_copy)
    assert {rel: proj.load(rel).updated for rel in PICK} == before

    # 4. export as MVTec AD and check anomalib's loader rules
    out = tmp_path / "export"
    assert main(["export", str(tile_copy), "--format", "mvtec", "-o", str(out), "--category", "tile"]) == 0
    assert "4 with defects, 2 good" in capsys.readouterr().out
    cat = out / "tile"
    assert check_mvtec_layout(cat) == []
    masks = sorted(cat.glob("ground_truth/*/*"))
    defects = sorted(cat.glob("test/*/*.png"))
    defects = [d for d in defects if d.parent.name != "good"]
    assert len(masks) == len(defects) == 4                      # one mask per defect image
    for img in defects:
        mask = cat / "ground_truth" / img.parent.name / f"{img.stem}_mask.png"
        assert re.fullmatch(r"\d{3}_mask\.png", mask.name) and mask.is_file()
        arr = _pixels(mask)
        assert arr.ndim == 2 and set(np.unique(arr)) == {0, 255}
        assert arr.shape == _hw(img)
    assert all(p.suffix == ".png" for p in cat.rglob("*") if p.is_file())
    assert {p.parent.name for p in defects} == {"blowhole", "break", "crack", "fray"}
    assert len(list(cat.glob("train/good/*.png"))) == 2
    # masks equal what the review stored, pixel for pixel
    got = mvtec.read(out)
    manifest = json.loads((out / "zsas_export.json").read_text())
    for e in manifest["items"]:
        stored = Project.open(tile_copy).load(e["source"]).mask
        want = np.zeros(e["size"], bool) if e["status"] == "good" else stored
        assert np.array_equal(got[e["image"]], want), e["source"]
    # images are copied byte for byte
    e = next(e for e in manifest["items"] if e["source"] == "test/crack/002.png")
    assert (out / e["image"]).read_bytes() == (tile_copy / "test/crack/002.png").read_bytes()
