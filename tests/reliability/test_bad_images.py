"""Bad image input: every odd file gives RGB uint8 or an ImageReadError naming the file, and a bad
file never stops a `zsas segment` / `zsas label` batch. (Cases already in tests/core/test_imageio.py
are not repeated: grey/RGBA/16-bit, EXIF rotation, CMYK JPEG, palette, GIF first frame, empty and
text .png, truncated PNG, tiny images, missing file, folder, permission denied in load_image.)"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from reliability_helpers import encoded, png_header_only
from synthetic import blob_image

from zsas_gui.cli import main
from zsas_gui.core.errors import ImageReadError
from zsas_gui.core.export.common import image_hw, read_mask_checked
from zsas_gui.core.io.imageio import find_images, load_image, load_mask, save_mask
from zsas_gui.state.project import Project

#: A folder and file name with spaces, accents, CJK and brackets.
ODD_DIR = "Prüfteile mit Leerzeichen/日本語 ä"
ODD_NAME = "Bild (1) ü 傷.png"


def test_multipage_tiff_gives_its_first_page(tmp_path):
    pages = [Image.new("RGB", (40, 36), c) for c in ((250, 0, 0), (0, 250, 0), (0, 0, 250))]
    pages[0].save(tmp_path / "p.tif", save_all=True, append_images=pages[1:])
    with Image.open(tmp_path / "p.tif") as im:
        assert im.n_frames == 3
    img = load_image(tmp_path / "p.tif")
    assert img.shape == (36, 40, 3) and img[..., 0].min() > 200 and img[..., 1].max() < 50


def test_animated_gif_mask_reads_its_first_frame(tmp_path):
    first = Image.new("L", (40, 40), 0)
    first.paste(255, (0, 0, 10, 10))
    second = Image.new("L", (40, 40), 255)
    first.save(tmp_path / "m.gif", save_all=True, append_images=[second])
    m = load_mask(tmp_path / "m.gif")
    assert m.shape == (40, 40) and m.sum() == 100


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif", ".gif", ".bmp", ".webp"])
def test_zero_byte_files_of_every_extension(tmp_path, ext):
    path = tmp_path / f"empty{ext}"
    path.write_bytes(b"")
    for reader in (load_image, load_mask, image_hw):
        with pytest.raises(ImageReadError) as err:
            reader(path)
        assert path.name in str(err.value)


@pytest.mark.parametrize("w, h", [(20000, 10000), (10000, 10000)])
def test_decompression_bomb_header_is_a_clear_error_without_warnings(tmp_path, w, h):
    """A 60-byte PNG claiming 100-200 Mpx: Pillow warns (>89 Mpx) or raises its own
    DecompressionBombError (>179 Mpx, not an OSError); both must become ImageReadError
    naming the file, and no warning may escape (pytest runs with warnings as errors)."""
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(w, h))
    for reader in (load_image, load_mask, image_hw):
        with pytest.raises(ImageReadError, match="bomb.png") as err:
            reader(path)
        if w * h > 179_000_000:
            assert "too large" in str(err.value)
    with pytest.raises(ImageReadError, match="bomb.png"):
        read_mask_checked(path)               # any damage, named (issue 14: it let OSError out)


@pytest.mark.parametrize("reader", [load_image, load_mask, image_hw])
def test_permission_denied_names_the_file(tmp_path, monkeypatch, reader):
    """Tests run as root (chmod 000 does not stop root): make the OS refuse the open."""
    import builtins

    path = tmp_path / "locked.png"
    path.write_bytes(encoded("PNG"))
    real_open = builtins.open

    def refusing_open(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing_open)
    with pytest.raises(ImageReadError, match="locked.png.*(permission denied|Permission denied)"):
        reader(path)


def test_folder_named_like_a_mask(tmp_path):
    (tmp_path / "m.png").mkdir()
    with pytest.raises(ImageReadError, match="m.png.*folder"):
        load_mask(tmp_path / "m.png")


def test_spaces_and_non_ascii_paths_round_trip(tmp_path):
    folder = tmp_path / ODD_DIR
    folder.mkdir(parents=True)
    image = blob_image((40, 50), [(20, 20)])
    Image.fromarray(image).save(folder / ODD_NAME)
    assert [p.name for p in find_images(tmp_path)] == [ODD_NAME]
    np.testing.assert_array_equal(load_image(folder / ODD_NAME), image)
    mask = image[..., 0] > 200
    save_mask(folder / f"Maske {ODD_NAME}", mask)
    np.testing.assert_array_equal(load_mask(folder / f"Maske {ODD_NAME}"), mask)
    assert image_hw(folder / ODD_NAME) == (40, 50)


@pytest.fixture
def bad_folder(tmp_path, monkeypatch):
    """A folder mixing odd-but-valid images with bad files; one file the OS refuses to open."""
    import builtins

    src = tmp_path / "in"
    (src / ODD_DIR).mkdir(parents=True)
    Image.fromarray(blob_image((48, 64), [(20, 20)])).save(src / ODD_DIR / ODD_NAME)
    Image.fromarray(blob_image((48, 48), [(20, 20)])).convert("CMYK").save(src / "cmyk.jpg")
    pages = [Image.fromarray(blob_image((40, 40), [(10, 10)], seed=s)) for s in (1, 2)]
    pages[0].save(src / "pages.tif", save_all=True, append_images=pages[1:])
    pages[0].convert("P").save(src / "anim.gif", save_all=True, append_images=[pages[1].convert("P")])
    (src / "zero.png").write_bytes(b"")
    (src / "bomb.png").write_bytes(png_header_only(20000, 10000))
    (src / "notes.jpg").write_bytes(b"just some text, not a JPEG")
    full = encoded("PNG", hw=(64, 64))
    (src / "cut.png").write_bytes(full[: len(full) // 2])
    (src / "locked.png").write_bytes(encoded("PNG"))
    locked = str(src / "locked.png")
    real_open = builtins.open

    def refusing_open(file, *args, **kwargs):
        if str(file) == locked:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing_open)
    good = {f"{ODD_DIR}/{ODD_NAME}": (48, 64), "cmyk.jpg": (48, 48), "pages.tif": (40, 40),
            "anim.gif": (40, 40)}
    bad = ["zero.png", "bomb.png", "notes.jpg", "cut.png", "locked.png"]
    return src, good, bad


def test_segment_skips_bad_files_by_name_and_keeps_odd_names(bad_folder, tmp_path, tiny_models, capsys):
    src, good, bad = bad_folder
    clip, sam = tiny_models
    out = tmp_path / "out put ü"
    rc = main(["segment", str(src), "-o", str(out), "--clip", str(clip), "--sam", str(sam),
               "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 3 and "Traceback" not in err
    for name in bad:
        assert name in err, name
    for rel, hw in good.items():
        stem = rel.rsplit(".", 1)[0]
        with Image.open(out / "masks" / f"{stem}.png") as m:
            assert m.size[::-1] == hw
        assert json.loads((out / "records" / f"{stem}.json").read_text(encoding="utf-8"))["size"] == list(hw[::-1])
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert (summary["succeeded"], summary["failed"]) == (len(good), len(bad))
    failed = {e["rel"]: e["error"] for e in summary["entries"] if not e["ok"]}
    assert sorted(failed) == sorted(n.rsplit(".", 1)[0] for n in bad)
    assert all(name in failed[name.rsplit(".", 1)[0]] for name in bad)


def test_label_skips_bad_files_and_the_project_stays_usable(bad_folder, tiny_models, capsys):
    src, good, bad = bad_folder
    clip, sam = tiny_models
    rc = main(["label", str(src), "--clip", str(clip), "--sam", str(sam), "--device", "cpu"])
    captured = capsys.readouterr()
    assert rc == 3 and "Traceback" not in captured.err
    assert all(name in captured.err for name in bad)
    assert f"{len(good)}/{len(good) + len(bad)} images pre-labelled" in captured.out
    proj = Project.open(src)
    assert proj.problems == []
    for rel, hw in good.items():
        rec = proj.load(rel)
        assert rec.mask is not None and rec.mask.shape == hw and rec.provenance["mask_source"] == "auto"
    for name in bad:
        assert not proj.has_record(name)
