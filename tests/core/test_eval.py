"""`zsas eval` end to end with tiny models: layout discovery, problems reported by file name,
every output file, and the cps numbers agreeing with `zsas segment --save-scores` outputs."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from synthetic import blob_image

from zsas_gui.cli import main
from zsas_gui.core.errors import ZsasError
from zsas_gui.core.evaluation import PREDICTORS, category_object_name, discover
from zsas_gui.core.metrics import iou, pixel_metrics

METRIC_KEYS = {"pixel_auroc", "pixel_ap", "pixel_f1_max", "aupro", "mean_iou", "image_auroc"}


def make_category(root: Path, name="widget", n_good=2, n_bad=2, hw=(48, 64)) -> Path:
    """An MVTec-layout category: test/good, test/scratch (+ masks), test/dent with one image
    whose mask is missing and one whose mask has the wrong size."""
    cat = root / name
    for d in ("test/good", "test/scratch", "test/dent", "ground_truth/scratch", "ground_truth/dent"):
        (cat / d).mkdir(parents=True, exist_ok=True)
    for i in range(n_good):
        Image.fromarray(blob_image(hw, centers=(), seed=i)).save(cat / f"test/good/{i:03d}.png")
    for i in range(n_bad):
        c = (12 + 20 * i, 20)
        Image.fromarray(blob_image(hw, centers=[c], radius=6, seed=10 + i)).save(cat / f"test/scratch/{i:03d}.png")
        mask = np.zeros(hw, np.uint8)
        yy, xx = np.mgrid[: hw[0], : hw[1]]
        mask[(xx - c[0]) ** 2 + (yy - c[1]) ** 2 <= 36] = 255
        Image.fromarray(mask).save(cat / f"ground_truth/scratch/{i:03d}_mask.png")
    Image.fromarray(blob_image(hw, seed=20)).save(cat / "test/dent/000.png")      # no mask at all
    Image.fromarray(blob_image(hw, seed=21)).save(cat / "test/dent/001.png")
    Image.fromarray(np.zeros((hw[0] + 1, hw[1]), np.uint8)).save(cat / "ground_truth/dent/001_mask.png")
    return cat


def run_eval(args, tiny_models) -> int:
    clip, sam = tiny_models
    return main(["eval", *map(str, args), "--clip", str(clip), "--sam", str(sam), "--device", "cpu"])


def cps_agrees_with_segment(tmp_path, tiny_models, test_dir: Path, gt_dir: Path, out_eval: Path,
                            block: dict, obj: str) -> None:
    """Segment the same images with `zsas segment --save-scores` and recompute cps metrics exactly."""
    clip, sam = tiny_models
    rows = list(csv.DictReader(io.StringIO((out_eval / "per_image.csv").read_text())))
    links = tmp_path / "seg_in"          # the evaluated images only, as CLASS/NAME links
    for r in rows:
        name = Path(r["image"]).name + ".png"
        (links / r["defect_class"]).mkdir(parents=True, exist_ok=True)
        (links / r["defect_class"] / name).symlink_to(test_dir / r["defect_class"] / name)
    seg = tmp_path / "seg"
    assert main(["segment", str(links), "-o", str(seg), "--clip", str(clip), "--sam", str(sam),
                 "--device", "cpu", "--save-scores", "--object", obj]) == 0
    maps, masks = [], []
    for r in rows:
        rel = f"{r['defect_class']}/{Path(r['image']).name}"
        maps.append(np.load(seg / "scores" / f"{rel}.npy"))
        if r["defect_class"] == "good":
            gt = np.zeros(maps[-1].shape, bool)
        else:
            gt = np.asarray(Image.open(gt_dir / f"{rel}_mask.png")) > 0
        masks.append(gt)
        pred = np.asarray(Image.open(seg / "masks" / f"{rel}.png")) > 0
        assert float(r["iou_cps"]) == pytest.approx(iou(pred, gt), abs=1e-6)
    exact = pixel_metrics(maps, masks)
    cps = block["predictors"]["cps"]
    for key, attr in (("pixel_auroc", "auroc"), ("pixel_ap", "ap"), ("pixel_f1_max", "f1_max"), ("aupro", "aupro")):
        assert abs(cps[key] - getattr(exact, attr)) <= cps["bounds"][key] + 2e-6, key


def test_eval_synthetic_category_writes_everything(tmp_path, tiny_models, capsys):
    cat = make_category(tmp_path / "data")
    out = tmp_path / "out"
    assert run_eval([cat, "-o", out, "--object", "widget"], tiny_models) == 3   # two images skipped
    captured = capsys.readouterr()
    err = captured.err
    assert "dent/000.png" in err and "no ground-truth mask" in err
    assert "dent/001_mask.png" in err and "64x49" in err and "Traceback" not in err
    assert "scratch" in captured.out and "cps" in captured.out            # the table

    data = json.loads((out / "metrics.json").read_text())
    assert data["n_images"] == 4 and data["n_failed"] == 2
    assert {f["image"].split("/")[-1] for f in data["failed"]} == {"000.png", "001.png"}
    blocks = data["categories"]["widget"]
    assert set(blocks["classes"]) == {"good", "scratch"}
    scratch = blocks["classes"]["scratch"]
    assert scratch["n_images"] == 4 and scratch["n_anomalous_images"] == 2   # pooled with good
    assert blocks["classes"]["good"]["predictors"]["cps"]["pixel_auroc"] is None   # no positives
    for block in (scratch, blocks["all"]):
        assert set(block["predictors"]) == set(PREDICTORS)
        for p, m in block["predictors"].items():
            assert METRIC_KEYS <= set(m)
            assert 0 <= m["pixel_auroc"] <= 1 and 0 <= m["aupro"] <= 1 and 0 <= m["image_auroc"] <= 1
            assert (m["mean_iou"] is None) == (p == "heatmap")
            assert max(m["bounds"].values()) < 1e-3
    assert data["object_names"] == {"widget": "widget"}

    rows = list(csv.DictReader(io.StringIO((out / "per_image.csv").read_text())))
    assert [r["defect_class"] for r in rows] == ["good", "good", "scratch", "scratch"]
    assert all(0 <= float(r["iou_cps"]) <= 1 for r in rows)
    for kind in ("roc", "pr", "pro"):
        png = np.asarray(Image.open(out / "plots" / f"widget_{kind}.png"))
        assert png.shape == (520, 640, 3) and png.std() > 10
    cps_agrees_with_segment(tmp_path, tiny_models, cat / "test", cat / "ground_truth", out,
                            blocks["all"], "widget")


def test_discovery_selection_and_errors(tmp_path):
    root = tmp_path / "ds"
    make_category(root, "metal_nut")
    make_category(root, "bottle", n_good=3)
    items, problems = discover(root)
    assert {i.category for i in items} == {"bottle", "metal_nut"} and len(problems) == 2
    assert [i.rel for i in items][:3] == ["bottle/dent/001", "bottle/good/000", "bottle/good/001"]
    assert all(p[0].endswith("dent/000.png") for p in problems)    # mask missing: left out early
    items, _ = discover(root, category="bottle", classes=["good"], limit=1)
    assert [i.rel for i in items] == ["bottle/good/000"] and items[0].mask is None
    items, _ = discover(root, categories=["metal_nut"], classes=["scratch"])
    assert all(i.mask.name.endswith("_mask.png") for i in items) and len(items) == 2
    assert discover(root / "bottle")[0][0].category == "bottle"           # ROOT = one category
    with pytest.raises(ZsasError, match="unknown category carpet.*available: bottle, metal_nut"):
        discover(root, category="carpet")
    with pytest.raises(ZsasError, match="no test/ class crack"):
        discover(root, classes=["crack"])
    with pytest.raises(ZsasError, match="no MVTec AD layout"):
        discover(tmp_path)
    with pytest.raises(ZsasError, match="single category"):
        discover(root / "bottle", category="metal_nut")
    assert category_object_name("metal_nut") == "metal nut"


def test_eval_dataset_of_categories_and_user_errors(tmp_path, tiny_models, capsys):
    root = tmp_path / "ds"
    make_category(root, "metal_nut", n_good=1, n_bad=1)
    make_category(root, "bottle", n_good=1, n_bad=1)
    out = tmp_path / "out"
    assert run_eval([root, "-o", out, "--classes", "good,scratch", "--no-plots"], tiny_models) == 0
    data = json.loads((out / "metrics.json").read_text())
    assert set(data["categories"]) == {"bottle", "metal_nut"}
    assert data["object_names"] == {"bottle": "bottle", "metal_nut": "metal nut"}
    assert data["overall"]["n_images"] == 4
    mean = data["category_mean"]["cps"]["pixel_auroc"]
    per_cat = [data["categories"][c]["all"]["predictors"]["cps"]["pixel_auroc"] for c in ("bottle", "metal_nut")]
    assert mean == pytest.approx(np.mean(per_cat), abs=1e-6)
    assert not (out / "plots").exists()
    assert "category mean" in capsys.readouterr().out

    assert run_eval([root, "-o", tmp_path / "o2", "--category", "carpet"], tiny_models) == 1
    assert "unknown category carpet" in capsys.readouterr().err
    assert run_eval([root, "-o", tmp_path / "o3", "--limit", "0"], tiny_models) == 1
    assert "--limit" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert run_eval([root, "-o", tmp_path / "file"], tiny_models) == 1
    assert "not a folder" in capsys.readouterr().err


def test_eval_magnetic_tile_real_data(shared_data, tmp_path, tiny_models):
    """The issue's command on the real data (one image per class to stay fast), cps numbers
    checked against `zsas segment --save-scores` outputs of the same images."""
    root = shared_data / "magnetic_tile"
    out = tmp_path / "ev"
    assert run_eval([root, "-o", out, "--limit", "1"], tiny_models) == 0
    data = json.loads((out / "metrics.json").read_text())
    assert data["n_images"] == 6 and data["object_names"] == {"magnetic_tile": "magnetic tile"}
    blocks = data["categories"]["magnetic_tile"]
    assert set(blocks["classes"]) == {"blowhole", "break", "crack", "fray", "good", "uneven"}
    for kind in ("roc", "pr", "pro"):
        assert (out / "plots" / f"magnetic_tile_{kind}.png").is_file()
    cps_agrees_with_segment(tmp_path, tiny_models, root / "test", root / "ground_truth", out,
                            blocks["all"], "magnetic tile")
