"""Exports validate everything first, never half overwrite, never write outside OUT."""

from __future__ import annotations

import json

import numpy as np
import pytest

from zsas_gui.core.errors import OutputError
from zsas_gui.core.export import ExportItem, ExportOptions, ExportValidationError, export, read_manifest
from zsas_gui.core.export import png as png_format
from zsas_gui.core.io.imageio import save_mask, save_png
from zsas_gui.state.demo import annotate, make_synthetic_folder
from zsas_gui.state.project import Project


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "parts"
    truth = make_synthetic_folder(root, n_good=1)
    proj = Project.open(root)
    annotate(proj, truth)
    return proj, truth


def items_of(proj):
    return proj.export_items(("accepted", "edited", "good"))


def test_every_problem_is_listed_by_file_and_nothing_written(project, tmp_path):
    proj, _ = project
    items = items_of(proj)
    bad_size = tmp_path / "small.png"
    save_mask(bad_size, np.ones((10, 10), bool))
    grey = tmp_path / "grey.png"
    save_png(grey, np.full((48, 64), 7, np.uint8))            # values 0/7, not 0/255
    items = [ExportItem(i.rel, i.image_path, bad_size, i.defect_class, i.status)
             if i.rel == "test/hole/000.png" else i for i in items]
    items = [ExportItem(i.rel, i.image_path, grey, i.defect_class, i.status)
             if i.rel == "test/hole/001.png" else i for i in items]
    items = [ExportItem(i.rel, i.image_path, None, i.defect_class, "edited")
             if i.rel == "test/scratch/000.png" else i for i in items]
    out = tmp_path / "out"
    with pytest.raises(ExportValidationError) as err:
        export(items, "mvtec", out)
    failures = err.value.failures
    assert any(f.startswith("test/hole/000.png:") and "10x10" in f for f in failures)
    assert any(f.startswith("test/hole/001.png:") and "not 0/255" in f for f in failures)
    assert any(f.startswith("test/scratch/000.png:") and "no mask" in f for f in failures)
    assert len(failures) == 3
    assert not out.exists() and not list(tmp_path.glob("out.tmp-*"))


def test_names_must_pair_and_classes_not_collide(project, tmp_path):
    proj, _ = project
    items = items_of(proj)
    first = next(i for i in items if i.rel == "test/hole/000.png")
    jpg = first.image_path.with_suffix(".jpg")
    from PIL import Image
    with Image.open(first.image_path) as im:
        im.convert("RGB").save(jpg)
    twin = ExportItem("test/hole/000.jpg", jpg, first.mask_path, "hole", "accepted")
    renamed = [ExportItem(i.rel, i.image_path, i.mask_path, "Hole!" if i.rel == "test/hole/001.png"
                          else i.defect_class, i.status) for i in items]
    with pytest.raises(ExportValidationError) as err:
        export(renamed + [twin], "png", tmp_path / "out")
    text = "\n".join(err.value.failures)
    assert "test/hole/000.jpg" in text and "test/hole/000.png, " in text and "same output name" in text
    assert "['Hole!', 'hole']" in text and "share the folder name" in text


@pytest.mark.parametrize("fmt, reserved", [("mvtec", "good"), ("folder", "mask")])
def test_reserved_class_names(project, tmp_path, fmt, reserved):
    proj, _ = project
    items = [ExportItem(i.rel, i.image_path, i.mask_path, reserved if i.mask_path else i.defect_class,
                        i.status) for i in items_of(proj)]
    with pytest.raises(ExportValidationError, match="reserved"):
        export(items, fmt, tmp_path / "out")


def test_class_names_are_sanitised_inside_out(project, tmp_path):
    proj, _ = project
    items = [ExportItem(i.rel, i.image_path, i.mask_path, "../../evil/..", i.status)
             if i.rel.startswith("test/hole/") else i for i in items_of(proj)]
    out = tmp_path / "deep" / "out"
    export(items, "mvtec", out, ExportOptions(category="../cat"))
    written = [p.resolve() for p in out.rglob("*")]
    assert all(out.resolve() in p.parents for p in written)
    assert not (tmp_path / "evil").exists() and not (tmp_path / "deep" / "evil").exists()
    assert (out / "cat" / "test" / "evil").is_dir()


def test_existing_export_needs_overwrite_and_foreign_folders_are_refused(project, tmp_path):
    proj, _ = project
    out = tmp_path / "out"
    export(items_of(proj), "png", out)
    with pytest.raises(OutputError, match="--overwrite"):
        export(items_of(proj), "png", out)
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(OutputError, match="not a zsas export"):
        export(items_of(proj), "png", foreign, ExportOptions(overwrite=True))
    assert (foreign / "holiday.jpg").read_bytes() == b"x"
    empty = tmp_path / "empty"
    empty.mkdir()
    export(items_of(proj), "png", empty)
    assert (empty / "zsas_export.json").is_file()


def test_overwrite_swaps_whole_folders(project, tmp_path):
    proj, _ = project
    out = tmp_path / "out"
    export(items_of(proj), "coco", out)
    (out / "stale.txt").write_text("from the old export")
    export(items_of(proj), "png", out, ExportOptions(overwrite=True))
    assert read_manifest(out)["format"] == "png" and not (out / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "parts"]


def test_failure_mid_export_leaves_the_old_export_whole(project, tmp_path, monkeypatch):
    proj, _ = project
    out = tmp_path / "out"
    export(items_of(proj), "png", out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    calls = {"n": 0}
    real = png_format.put_mask

    def dying(dest, rel, mask):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OutputError("disk full")
        return real(dest, rel, mask)

    monkeypatch.setattr(png_format, "put_mask", dying)
    with pytest.raises(OutputError, match="disk full"):
        export(items_of(proj), "png", out, ExportOptions(overwrite=True))
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "parts"]


def test_output_may_not_overlap_the_project(project, tmp_path):
    proj, _ = project
    for out in (proj.root / "export", proj.root, tmp_path):
        with pytest.raises(OutputError, match="outside the project"):
            export(items_of(proj), "png", out, ExportOptions(protect=proj.root, overwrite=True))
    assert (proj.root / ".zsas").is_dir()


def test_unreviewed_with_empty_mask_counts_as_normal(project, tmp_path):
    proj, _ = project
    rec = proj.load("test/hole/000.png")
    rec.status, rec.mask = "unreviewed", np.zeros_like(rec.mask)
    proj.save(rec)
    report = export(proj.export_items(("unreviewed",)), "mvtec", tmp_path / "out")
    assert (report.n_abnormal, report.n_normal) == (0, 1)
    manifest = json.loads((tmp_path / "out" / "zsas_export.json").read_text())
    assert manifest["items"][0]["image"] == "dataset/train/good/000.png"
