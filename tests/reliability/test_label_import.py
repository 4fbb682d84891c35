"""Imported labels. The only import path is a folder of masks (``zsas label --from-masks``;
MVTec ``ground_truth/`` or PNG masks mirroring the images): no COCO or labelme file is ever read
(the export modules' ``read`` functions are test helpers for our own exports, reachable from no
command or window). Masks are found by names derived from the project's own image paths, so no
path written inside a label file is followed; the one exception is a zsas export's own
``zsas_export.json``, whose mask paths are followed only inside the masks folder
(tests/core/test_export_roundtrip.py). Every bad mask is reported by name; the rest import.
"""

from __future__ import annotations

import builtins
import io
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from reliability_helpers import encoded, mask_png, png_header_only, watching

from zsas_gui.cli import main
from zsas_gui.core.errors import ImageReadError
from zsas_gui.core.export.common import image_hw
from zsas_gui.core.io.imageio import load_image, load_mask, save_mask
from zsas_gui.state.demo import make_synthetic_folder
from zsas_gui.state.importer import import_masks
from zsas_gui.state.project import Project

PROPERTY = settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.too_slow],
                    derandomize=True)
#: Pillow warns (UserWarning, e.g. "Corrupt EXIF data") about damaged files it can still read; a
#: warning is not a failure for a user, so the fuzz tests let Pillow's warnings through.
PIL_WARNINGS = pytest.mark.filterwarnings("ignore::UserWarning:PIL")


@pytest.fixture
def project_and_masks(tmp_path):
    root = tmp_path / "parts"
    truth = make_synthetic_folder(root)
    masks = tmp_path / "masks"
    for rel, m in truth.items():
        if m is not None:
            save_mask(masks / rel, m)
    return root, masks, truth


def test_every_bad_mask_is_reported_and_the_rest_import(project_and_masks, monkeypatch):
    root, masks, truth = project_and_masks
    defects = sorted(r for r, m in truth.items() if m is not None)
    bad = {defects[0]: b"", defects[1]: png_header_only(20000, 10000), defects[2]: b"not a png"}
    for rel, data in bad.items():
        (masks / rel).write_bytes(data)
    folder_mask = masks / defects[3]
    folder_mask.unlink()
    folder_mask.mkdir()                            # a folder where the mask should be: not matched
    locked = masks / "train" / "good" / "000.png"  # a mask for a good image the OS refuses to open
    save_mask(locked, np.zeros(truth["train/good/000.png"].shape if truth["train/good/000.png"] is not None
                               else (48, 64), bool))
    real_open = builtins.open

    def refusing_open(file, *args, **kwargs):
        if str(file) == str(locked):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing_open)
    proj = Project.open(root)
    report = import_masks(proj, masks, missing_good=True)
    failed = {line.split(":", 1)[0]: line for line in report.failed}
    assert sorted(failed) == sorted([*bad, "train/good/000.png"])
    assert "permission denied" in failed["train/good/000.png"]
    assert all(str(masks / rel) in failed[rel] for rel in bad)
    assert defects[3] in report.marked_good     # no mask file found for it
    assert Project.open(root).problems == []


def test_label_files_in_the_masks_folder_are_not_followed(project_and_masks, tmp_path, capsys):
    """COCO and labelme files whose image paths point outside the project sit in the masks
    folder: the import reads none of them and opens nothing outside the two folders."""
    root, masks, truth = project_and_masks
    secret = tmp_path / "outside" / "secret.png"
    secret.parent.mkdir()
    secret.write_bytes(mask_png())
    (masks / "annotations.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "../../outside/secret.png", "width": 48, "height": 40}],
        "annotations": [], "categories": []}))
    (masks / "test" / "scratch" / "000.json").write_text(json.dumps({
        "version": "5.3.1", "shapes": [], "imagePath": str(secret), "imageData": None,
        "imageHeight": 40, "imageWidth": 48}))
    with watching() as seen:
        rc = main(["label", str(root), "--from-masks", str(masks)])
    assert rc == 0, capsys.readouterr().err
    opened = {p for p, _, _ in seen.opens}
    assert str(secret) not in opened and not any("outside" in p for p in opened)
    assert not any(p.endswith((".json",)) and str(masks) in p for p in opened)
    written = seen.written_paths()
    assert written and all(p.startswith(str(root / ".zsas")) for p in written)
    n_defects = sum(m is not None for m in truth.values())
    assert f"{n_defects} masks imported" in capsys.readouterr().out


def test_import_never_writes_outside_the_sidecar(project_and_masks):
    root, masks, _ = project_and_masks
    with watching() as seen:
        import_masks(Project.open(root), masks, missing_good=True)
    assert all(p.startswith(str(root / ".zsas")) for p in seen.written_paths())


# --------------------------------------------------------------------------- properties

BASES = {
    "png-mask": mask_png(),
    "png": encoded("PNG"),
    "jpeg": encoded("JPEG"),
    "tiff": encoded("TIFF", compression="tiff_lzw"),
    "gif": encoded("GIF"),
    "bmp": encoded("BMP"),
    "webp": encoded("WEBP"),
}


@st.composite
def damaged_image_bytes(draw):
    base = bytearray(BASES[draw(st.sampled_from(sorted(BASES)))])
    how = draw(st.sampled_from(["truncate", "flip", "flip", "header", "random"]))
    if how == "truncate":
        return bytes(base[: draw(st.integers(0, len(base)))])
    if how == "flip":
        for _ in range(draw(st.integers(1, 10))):
            base[draw(st.integers(0, len(base) - 1))] = draw(st.integers(0, 255))
        return bytes(base)
    if how == "header":                         # damage where the sizes and offsets live
        for _ in range(draw(st.integers(1, 4))):
            base[draw(st.integers(0, min(63, len(base) - 1)))] = draw(st.integers(0, 255))
        return bytes(base)
    return draw(st.binary(max_size=512))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz-images")


@PIL_WARNINGS
@PROPERTY
@given(data=damaged_image_bytes())
def test_any_bytes_as_a_mask_give_a_mask_or_an_image_read_error(scratch, data):
    path = scratch / "m.png"
    path.write_bytes(data)
    try:
        m = load_mask(path)
    except ImageReadError as exc:
        assert str(path) in str(exc)
    else:
        assert m.dtype == bool and m.ndim == 2 and m.size > 0


@PIL_WARNINGS
@PROPERTY
@given(data=damaged_image_bytes())
def test_any_bytes_as_an_image_give_rgb_or_an_image_read_error(scratch, data):
    path = scratch / "i.img"
    path.write_bytes(data)
    for reader in (load_image, image_hw):
        try:
            out = reader(path)
        except ImageReadError as exc:
            assert str(path) in str(exc)
        else:
            if reader is load_image:
                assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
            else:
                assert len(out) == 2 and min(out) > 0


def test_damaged_bases_are_real_images():
    """The fuzzing above starts from valid files of each format (else it would test nothing)."""
    for name, data in BASES.items():
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            assert im.size == (48, 40), name
