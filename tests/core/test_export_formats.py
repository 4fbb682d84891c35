"""Round trip of every export format: export, read back, compare with the stored masks."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest

from zsas_gui.core.export import FORMATS, ExportOptions, export, format_module, read_manifest
from zsas_gui.core.export.geometry import (
    polygons,
    rle_counts,
    rle_decode,
    rle_encode,
    rle_string,
    rle_string_to_counts,
    within_one_pixel,
)
from zsas_gui.state.demo import annotate, make_synthetic_folder
from zsas_gui.state.project import Project

#: pycocotools' Cython decode trips numpy 2's __array__ copy deprecation (not our code).
PYCOCO_NUMPY2 = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
MASK_FORMATS = {"mvtec", "folder", "png", "coco", "labelme"}     # exact without --polygons


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("proj") / "parts"
    truth = make_synthetic_folder(root)
    proj = Project.open(root)
    annotate(proj, truth)
    return proj, truth


def _exported(proj, fmt, out, **kw):
    items = proj.export_items(("accepted", "edited", "good"))
    report = export(items, fmt, out, ExportOptions(category="parts", protect=proj.root, **kw))
    return report, format_module(fmt).read(out), read_manifest(out)


def _pairs(fmt, truth, got, manifest):
    for e in manifest["items"]:
        key = e["mask"] if fmt == "png" else e["image"]
        want = truth[e["source"]]
        yield e, (np.zeros(e["size"], bool) if want is None else want), got[key]


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_masks(project, tmp_path, fmt):
    proj, truth = project
    report, got, manifest = _exported(proj, fmt, tmp_path / "out")
    assert report.n_abnormal == 4 and report.n_normal == 3 and report.classes == ["hole", "scratch"]
    assert len(manifest["items"]) == len(truth) == len(got)
    assert manifest["format"] == fmt
    for e, want, mask in _pairs(fmt, truth, got, manifest):
        assert mask.shape == want.shape, e["source"]
        if fmt in MASK_FORMATS:
            assert np.array_equal(mask, want), e["source"]
        else:   # yolo: polygons, exact for hole-free shapes, holes lost
            assert np.array_equal(mask, want) or e["defect_class"] == "scratch", e["source"]
            if e["defect_class"] == "scratch":
                from scipy.ndimage import binary_fill_holes
                assert np.array_equal(mask, binary_fill_holes(want))
    assert all(e["provenance"].get("mask_source") == "edited" for e in manifest["items"] if e["abnormal"])


@pytest.mark.parametrize("fmt", ["coco", "labelme", "yolo"])
def test_polygons_within_one_pixel_for_hole_free_masks(project, tmp_path, fmt):
    proj, truth = project
    _, got, manifest = _exported(proj, fmt, tmp_path / "out", polygons=True)
    checked = 0
    for e, want, mask in _pairs(fmt, truth, got, manifest):
        if e["defect_class"] == "hole":          # spots: no holes
            assert within_one_pixel(want, mask), e["source"]
            checked += 1
        elif e["defect_class"] == "scratch":     # rings: the hole is filled (documented loss)
            assert mask.sum() > want.sum()
    assert checked == 2


@PYCOCO_NUMPY2
def test_pycocotools_decodes_every_rle_exactly(project, tmp_path):
    mask_api = pytest.importorskip("pycocotools.mask")
    proj, truth = project
    _exported(proj, "coco", tmp_path / "out")
    data = json.loads((tmp_path / "out" / "annotations" / "instances_default.json").read_text())
    by_image = {im["id"]: im for im in data["images"]}
    sources = {e["image"]: e["source"] for e in read_manifest(tmp_path / "out")["items"]}
    union: dict[int, np.ndarray] = {}
    for ann in data["annotations"]:
        im = by_image[ann["image_id"]]
        seg = dict(ann["segmentation"], counts=ann["segmentation"]["counts"].encode())
        m = mask_api.decode(seg).astype(bool)
        assert m.shape == (im["height"], im["width"]) and ann["iscrowd"] == 0
        assert int(mask_api.area(seg)) == ann["area"] == int(m.sum())
        assert [int(v) for v in mask_api.toBbox(seg)] == ann["bbox"]
        union[ann["image_id"]] = union.get(ann["image_id"], np.zeros_like(m)) | m
    assert len(union) == 4
    for image_id, m in union.items():
        want = truth[sources["images/default/" + by_image[image_id]["file_name"]]]
        assert np.array_equal(m, want)
    assert [c["name"] for c in data["categories"]] == ["hole", "scratch"]
    # one annotation per connected component: the "spots" masks have three each
    assert len(data["annotations"]) == 2 * 1 + 2 * 3


@PYCOCO_NUMPY2
def test_rle_matches_pycocotools_encoder_on_random_masks():
    mask_api = pytest.importorskip("pycocotools.mask")
    rng = np.random.default_rng(3)
    for _ in range(50):
        h, w = rng.integers(1, 40, 2)
        m = rng.random((h, w)) < rng.random()
        ref = mask_api.encode(np.asfortranarray(m.astype(np.uint8)))
        ours = rle_encode(m)
        assert ours["counts"] == ref["counts"].decode() and ours["size"] == [h, w]
        assert np.array_equal(rle_decode(ours), m)
        assert rle_string_to_counts(rle_string(rle_counts(m))) == rle_counts(m)


def test_labelme_files_follow_labelme_conventions(project, tmp_path):
    from PIL import Image

    proj, truth = project
    _exported(proj, "labelme", tmp_path / "out")
    doc = json.loads((tmp_path / "out" / "test" / "hole" / "000.json").read_text())
    assert doc["imagePath"] == "000.png" and doc["imageData"] is None
    assert (tmp_path / "out" / "test" / "hole" / doc["imagePath"]).is_file()
    assert (doc["imageHeight"], doc["imageWidth"]) == truth["test/hole/000.png"].shape
    assert {s["shape_type"] for s in doc["shapes"]} == {"mask"} and len(doc["shapes"]) == 3
    for s in doc["shapes"]:
        (x1, y1), (x2, y2) = s["points"]
        with Image.open(io.BytesIO(base64.b64decode(s["mask"]))) as im:
            crop = np.asarray(im)
        assert crop.shape == (y2 - y1 + 1, x2 - x1 + 1) and set(np.unique(crop)) <= {0, 1}
        assert s["label"] == "hole" and s["group_id"] is None
    good = json.loads((tmp_path / "out" / "train" / "good" / "000.json").read_text())
    assert good["shapes"] == []


def test_yolo_lines_and_data_yaml(project, tmp_path):
    yaml = pytest.importorskip("yaml")
    proj, _ = project
    _exported(proj, "yolo", tmp_path / "out")
    data = yaml.safe_load((tmp_path / "out" / "data.yaml").read_text())
    assert data["names"] == {0: "hole", 1: "scratch"} and data["train"] == "images"
    lines = (tmp_path / "out" / "labels" / "test" / "hole" / "000.txt").read_text().splitlines()
    assert len(lines) == 3
    for line in lines:
        cls, *coords = line.split()
        assert cls == "0" and len(coords) % 2 == 0 and len(coords) >= 6
        assert all(0.0 <= float(c) <= 1.0 and len(c.split(".")[1]) == 6 for c in coords)
    assert (tmp_path / "out" / "labels" / "train" / "good" / "000.txt").read_text() == ""
    assert (tmp_path / "out" / "images" / "train" / "good" / "000.png").is_file()


def test_folder_layout_and_datamodule_snippet(project, tmp_path):
    yaml = pytest.importorskip("yaml")
    proj, _ = project
    _exported(proj, "folder", tmp_path / "out")
    cfg = yaml.safe_load((tmp_path / "out" / "datamodule.yaml").read_text())["data"]
    assert cfg["class_path"] == "anomalib.data.Folder"
    args = cfg["init_args"]
    assert args["root"] == "parts"        # relative to the export folder: it can be moved
    assert args["normal_dir"] == "good" and args["abnormal_dir"] == ["hole", "scratch"]
    assert args["mask_dir"] == ["mask/hole", "mask/scratch"]
    root = tmp_path / "out" / "parts"
    for cls in ("hole", "scratch"):    # anomalib pairs sorted images with sorted masks, same stems
        images = sorted(p.name for p in (root / cls).iterdir())
        assert images == sorted(p.name for p in (root / "mask" / cls).iterdir()) == ["000.png", "001.png"]
    assert len(list((root / "good").iterdir())) == 3


def test_mvtec_good_split_is_deterministic(project, tmp_path):
    proj, _ = project
    _exported(proj, "mvtec", tmp_path / "a", good_test_fraction=0.34)
    _exported(proj, "mvtec", tmp_path / "b", good_test_fraction=0.34)
    for out in ("a", "b"):
        assert len(list((tmp_path / out / "parts" / "test" / "good").iterdir())) == 1
        assert len(list((tmp_path / out / "parts" / "train" / "good").iterdir())) == 2
    src = {o: sorted(e["source"] for e in read_manifest(tmp_path / o)["items"] if "/test/good/" in e["image"])
           for o in ("a", "b")}
    assert src["a"] == src["b"]
    _exported(proj, "mvtec", tmp_path / "c")          # default: every good image trains
    assert not (tmp_path / "c" / "parts" / "test" / "good").exists()


def test_polygons_of_a_single_pixel_are_valid():
    m = np.zeros((5, 5), bool)
    m[2, 3] = True
    (poly,) = polygons(m)
    assert poly.shape == (3, 2) and (poly == [3, 2]).all()


@PYCOCO_NUMPY2
def test_pycocotools_rasterises_coco_polygons_exactly(project, tmp_path):
    mask_api = pytest.importorskip("pycocotools.mask")
    proj, truth = project
    _exported(proj, "coco", tmp_path / "out", polygons=True)
    data = json.loads((tmp_path / "out" / "annotations" / "instances_default.json").read_text())
    by_image = {im["id"]: im for im in data["images"]}
    sources = {e["image"]: e["source"] for e in read_manifest(tmp_path / "out")["items"]}
    union: dict[int, np.ndarray] = {}
    for ann in data["annotations"]:
        im = by_image[ann["image_id"]]
        assert all(len(poly) >= 6 for poly in ann["segmentation"])
        rle = mask_api.merge(mask_api.frPyObjects(ann["segmentation"], im["height"], im["width"]))
        m = mask_api.decode(rle).astype(bool)
        union[ann["image_id"]] = union.get(ann["image_id"], np.zeros_like(m)) | m
    for image_id, m in union.items():
        src = sources["images/default/" + by_image[image_id]["file_name"]]
        if src.startswith("test/hole/"):        # hole-free: pixel-edge outlines are exact
            assert np.array_equal(truth[src], m), src
