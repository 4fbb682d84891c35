"""Exports other tools load as they are (issue 15): the failures found by loading every format
with pycocotools, datumaro, labelme, ultralytics and anomalib, each reproduced here without
those tools (tools/interop_check.py runs the tools themselves)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from zsas_gui.cli import main
from zsas_gui.core.export import ExportOptions, ExportValidationError, export, format_module, read_manifest
from zsas_gui.core.export.geometry import boundary_polygons
from zsas_gui.core.io.imageio import save_png
from zsas_gui.state.demo import annotate, make_synthetic_folder
from zsas_gui.state.project import Project

PYCOCO_NUMPY2 = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


def _project(tmp_path, n_good=3, **kw):
    root = tmp_path / "parts"
    truth = make_synthetic_folder(root, n_good=n_good, **kw)
    proj = Project.open(root)
    annotate(proj, truth)
    return proj, truth


def _items(proj, include=("accepted", "edited", "good")):
    return proj.export_items(include)


# -- 1. no good images: the anomaly layouts refuse, or say they are test-only ------------------
@pytest.mark.parametrize("fmt", ["mvtec", "folder"])
def test_anomaly_layout_without_good_images_is_refused(tmp_path, fmt):
    proj, _ = _project(tmp_path, n_good=0)
    with pytest.raises(ExportValidationError, match="anomalib trains on normal images") as err:
        export(_items(proj), fmt, tmp_path / "out", ExportOptions(protect=proj.root))
    assert "--good-from DIR" in str(err.value) and "--test-only" in str(err.value)
    assert "mark some images good" in str(err.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("fmt", ["coco", "yolo", "labelme", "png"])
def test_other_layouts_do_not_need_good_images(tmp_path, fmt):
    proj, _ = _project(tmp_path, n_good=0)
    report = export(_items(proj), fmt, tmp_path / "out", ExportOptions(protect=proj.root))
    assert report.n_normal == 0 and report.n_abnormal == 4


def test_test_only_opt_in_says_so_in_the_snippet(tmp_path):
    yaml = pytest.importorskip("yaml")
    proj, _ = _project(tmp_path, n_good=0)
    out = tmp_path / "mvtec"
    report = export(_items(proj), "mvtec", out, ExportOptions(category="parts", protect=proj.root, test_only=True))
    text = (out / "datamodule.yaml").read_text()
    assert "TEST-ONLY" in text and "cannot train" in text
    assert yaml.safe_load(text)["data"]["init_args"] == {"root": ".", "category": "parts"}
    assert read_manifest(out)["test_only"] is True
    assert any("test-only" in n for n in report.notes)
    assert not (out / "parts" / "train").exists()


def test_folder_has_no_test_only_export(tmp_path):
    """anomalib's Folder refuses an empty normal_dir even for testing (checked with anomalib 2.7)."""
    proj, _ = _project(tmp_path, n_good=0)
    with pytest.raises(ExportValidationError, match="--format mvtec --test-only"):
        export(_items(proj), "folder", tmp_path / "out", ExportOptions(protect=proj.root, test_only=True))


def test_good_from_adds_normal_images(tmp_path, capsys):
    proj, _ = _project(tmp_path, n_good=0)
    goods = tmp_path / "ok_parts"
    rng = np.random.default_rng(1)
    for i in range(2):
        save_png(goods / "lot1" / f"{i}.png", rng.integers(120, 160, (48, 64, 3), dtype=np.uint8))
    out = tmp_path / "out"
    assert main(["export", str(proj.root), "-f", "mvtec", "-o", str(out), "--category", "parts",
                 "--good-from", str(goods)]) == 0
    assert sorted(p.name for p in (out / "parts" / "train" / "good").iterdir()) == ["000.png", "001.png"]
    entries = [e for e in read_manifest(out)["items"] if not e["abnormal"]]
    assert [e["provenance"]["good_from"] for e in entries] == [str(goods / "lot1" / f"{i}.png") for i in range(2)]
    assert "4 with defects, 2 good" in capsys.readouterr().out


def test_cli_without_good_images_names_the_fix(tmp_path, capsys):
    proj, _ = _project(tmp_path, n_good=0)
    assert main(["export", str(proj.root), "-f", "folder", "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "mark some images good, or pass --good-from DIR" in err


# -- 2. exports can be moved -------------------------------------------------------------------
def test_config_files_hold_no_absolute_path(tmp_path):
    yaml = pytest.importorskip("yaml")
    proj, _ = _project(tmp_path)
    for fmt, name in (("yolo", "data.yaml"), ("folder", "datamodule.yaml"), ("mvtec", "datamodule.yaml")):
        out = tmp_path / fmt
        export(_items(proj), fmt, out, ExportOptions(category="parts", protect=proj.root))
        text = (out / name).read_text()
        assert str(tmp_path) not in text, (fmt, text)
        data = yaml.safe_load(text)
        if fmt == "yolo":      # no path: ultralytics then uses the yaml's own folder as the root
            assert "path" not in data and data["train"] == "images"
        else:
            assert data["data"]["init_args"]["root"] == ("parts" if fmt == "folder" else ".")
            assert "cd " in text     # the snippet says which working directory the root is for


def test_moved_export_reads_the_same(tmp_path):
    proj, _ = _project(tmp_path)
    for fmt in ("yolo", "folder", "coco", "labelme", "mvtec"):
        out = tmp_path / "a" / fmt
        export(_items(proj), fmt, out, ExportOptions(category="parts", protect=proj.root))
        before = format_module(fmt).read(out)
        moved = tmp_path / "b" / fmt
        moved.parent.mkdir(exist_ok=True)
        shutil.move(out, moved)
        after = format_module(fmt).read(moved)
        assert before.keys() == after.keys()
        assert all(np.array_equal(before[k], after[k]) for k in before)


# -- 3. COCO in the layout datumaro, CVAT and fiftyone import ----------------------------------
def test_coco_uses_the_datumaro_cvat_layout(tmp_path):
    proj, _ = _project(tmp_path)
    out = tmp_path / "out"
    export(_items(proj), "coco", out, ExportOptions(protect=proj.root))
    data = json.loads((out / "annotations" / "instances_default.json").read_text())
    for im in data["images"]:
        assert (out / "images" / "default" / im["file_name"]).is_file()
    assert not (out / "annotations.json").exists()
    assert all(e["image"].startswith("images/default/") for e in read_manifest(out)["items"])


# -- 4. COCO polygons trace the pixel boundary: exact in pycocotools ---------------------------
def _thin_crack_and_blob() -> np.ndarray:
    m = np.zeros((40, 50), bool)
    for i in range(25):                       # a one-pixel-wide diagonal crack
        m[5 + i, 10 + i] = True
    m[30, 3:5] = True                         # a two-pixel blob
    m[2, 45] = True                           # a single pixel
    m[20:30, 40:48] = True                    # an L-shape with a notch
    m[20:24, 40:44] = False
    return m


def _pycoco_raster(polys, hw):
    mask_api = pytest.importorskip("pycocotools.mask")
    rle = mask_api.merge(mask_api.frPyObjects([list(map(float, p.ravel())) for p in polys], *hw))
    return mask_api.decode(rle).astype(bool)


@PYCOCO_NUMPY2
def test_boundary_polygons_rasterise_exactly_in_pycocotools():
    m = _thin_crack_and_blob()
    import cv2

    n, labels = cv2.connectedComponents(m.astype(np.uint8), connectivity=8)
    for i in range(1, n):
        comp = labels == i
        polys = boundary_polygons(comp)
        assert all(len(p) >= 4 for p in polys)
        assert np.array_equal(_pycoco_raster(polys, comp.shape), comp), i


@PYCOCO_NUMPY2
def test_boundary_polygons_exact_on_random_hole_free_masks():
    from scipy.ndimage import binary_fill_holes

    rng = np.random.default_rng(7)
    for _ in range(60):
        h, w = rng.integers(3, 30, 2)
        m = binary_fill_holes(rng.random((h, w)) < rng.uniform(0.2, 0.7))
        if not m.any():
            continue
        assert np.array_equal(_pycoco_raster(boundary_polygons(m), m.shape), m)


@PYCOCO_NUMPY2
def test_coco_polygon_export_is_exact_and_reports_lost_holes(tmp_path):
    proj, truth = _project(tmp_path)
    crack = tmp_path / "parts" / "test" / "crack" / "000.png"
    save_png(crack, np.full((40, 50, 3), 140, np.uint8))
    rec = Project.open(proj.root).load("test/crack/000.png")
    rec.mask, rec.status = _thin_crack_and_blob(), "accepted"
    proj = Project.open(proj.root)
    proj.save(rec)
    out = tmp_path / "out"
    report = export(_items(proj), "coco", out, ExportOptions(protect=proj.root, polygons=True))
    data = json.loads((out / "annotations" / "instances_default.json").read_text())
    files = {im["id"]: im for im in data["images"]}
    union = {}
    for ann in data["annotations"]:
        im = files[ann["image_id"]]
        polys = [np.asarray(s).reshape(-1, 2) for s in ann["segmentation"]]
        m = _pycoco_raster(polys, (im["height"], im["width"]))
        assert int(m.sum()) == ann["area"] or im["file_name"].startswith("test/scratch/")
        union[im["file_name"]] = union.get(im["file_name"], np.zeros_like(m)) | m
    assert np.array_equal(union["test/crack/000.png"], _thin_crack_and_blob())
    assert np.array_equal(union["test/hole/000.png"], truth["test/hole/000.png"])
    got = format_module("coco").read(out)      # our reader agrees with pycocotools
    assert np.array_equal(got["images/default/test/crack/000.png"], _thin_crack_and_blob())
    assert any("hole" in n and "filled" in n for n in report.notes), report.notes


@pytest.mark.parametrize("fmt", ["yolo", "labelme"])
def test_one_pixel_wide_shapes_are_kept_exact_and_reported(tmp_path, fmt):
    proj, _ = _project(tmp_path)
    save_png(tmp_path / "parts" / "test" / "crack" / "000.png", np.full((40, 50, 3), 140, np.uint8))
    proj = Project.open(proj.root)
    rec = proj.load("test/crack/000.png")
    rec.mask, rec.status = _thin_crack_and_blob(), "accepted"
    proj.save(rec)
    out = tmp_path / "out"
    report = export(_items(proj), fmt, out, ExportOptions(protect=proj.root, polygons=True))
    key = "images/test/crack/000.png" if fmt == "yolo" else "test/crack/000.png"
    assert np.array_equal(format_module(fmt).read(out)[key], _thin_crack_and_blob())
    entry = next(e for e in read_manifest(out)["items"] if e["source"] == "test/crack/000.png")
    assert entry["zero_area_polygons"] == 3         # the crack, the 2-pixel blob, the single pixel
    total = sum(e.get("zero_area_polygons", 0) for e in read_manifest(out)["items"])
    assert total == 3 + 2                           # + the one-pixel corner spot of each "spots" mask
    assert any(f"{total} one-pixel-wide shapes" in n for n in report.notes), report.notes


# -- 6. classes: good folders, sanitised the same everywhere -----------------------------------
def test_unreviewed_prelabels_in_good_folders_are_good_candidates(tmp_path):
    proj, _ = _project(tmp_path)
    for name in ("train/good/000.png",):
        rec = proj.load(name)
        rec.status, rec.mask = "unreviewed", np.zeros((48, 64), bool)
        rec.mask[3:9, 3:9] = True           # a false positive of the method on a good image
        proj.save(rec)
    ok = tmp_path / "parts" / "OK" / "a.png"
    save_png(ok, np.full((48, 64, 3), 140, np.uint8))
    proj = Project.open(proj.root)
    rec = proj.load("OK/a.png")
    rec.mask = np.zeros((48, 64), bool)
    rec.mask[10:20, 10:20] = True
    proj.save(rec)
    report = export(_items(proj, ("accepted", "edited", "good", "unreviewed")), "coco", tmp_path / "out",
                    ExportOptions(protect=proj.root))
    data = json.loads((tmp_path / "out" / "annotations" / "instances_default.json").read_text())
    assert [c["name"] for c in data["categories"]] == ["hole", "scratch"]     # no "defect"
    assert report.n_normal == 4 and report.classes == ["hole", "scratch"]
    assert any("2 unreviewed" in n and "good" in n for n in report.notes), report.notes


def test_coco_and_yolo_class_names_are_sanitised_like_folders(tmp_path):
    yaml = pytest.importorskip("yaml")
    proj, _ = _project(tmp_path)
    for rel in ("test/scratch/000.png", "test/scratch/001.png"):
        rec = proj.load(rel)
        rec.defect_class = "scratch / deep"
        proj.save(rec)
    export(_items(proj), "coco", tmp_path / "coco", ExportOptions(protect=proj.root))
    export(_items(proj), "yolo", tmp_path / "yolo", ExportOptions(protect=proj.root))
    export(_items(proj), "mvtec", tmp_path / "mvtec", ExportOptions(category="c", protect=proj.root))
    data = json.loads((tmp_path / "coco" / "annotations" / "instances_default.json").read_text())
    folders = sorted(p.name for p in (tmp_path / "mvtec" / "c" / "test").iterdir())
    assert sorted(c["name"] for c in data["categories"]) == folders == ["hole", "scratch_deep"]
    names = yaml.safe_load((tmp_path / "yolo" / "data.yaml").read_text())["names"]
    assert sorted(names.values()) == ["hole", "scratch_deep"]
    assert {e["defect_class"] for e in read_manifest(tmp_path / "coco")["items"] if e["abnormal"]} == {
        "scratch / deep", "hole"}      # the manifest keeps the original name


# -- 7. what the default --include left out ----------------------------------------------------
def test_summary_says_what_the_default_include_left_out(tmp_path, capsys):
    proj, _ = _project(tmp_path)
    for rel in ("test/hole/000.png", "test/hole/001.png"):
        rec = proj.load(rel)
        rec.status = "unreviewed"
        proj.save(rec)
    rec = proj.load("test/scratch/000.png")
    rec.status = "rejected"
    proj.save(rec)
    assert main(["export", str(proj.root), "-f", "png", "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "exported 4 images" in out
    assert "left out 3 of 7 images: 2 unreviewed, 1 rejected" in out
    assert "--include" in out
