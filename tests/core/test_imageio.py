"""Image reading: every odd file gives RGB uint8 or a clear error naming the file."""

import numpy as np
import pytest
from PIL import Image

from zsas_gui.core.errors import ImageReadError
from zsas_gui.core.io.imageio import content_hash, find_images, load_image, load_mask, save_mask


def test_grey_rgba_16bit_are_converted(tmp_path):
    Image.fromarray(np.full((40, 50), 77, np.uint8)).save(tmp_path / "g.png")
    rgba = np.zeros((40, 50, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 10
    Image.fromarray(rgba).save(tmp_path / "a.png")
    Image.fromarray(np.linspace(0, 4000, 40 * 50).astype(np.uint16).reshape(40, 50)).save(tmp_path / "d.png")
    g, a, d = (load_image(tmp_path / n) for n in ("g.png", "a.png", "d.png"))
    for arr in (g, a, d):
        assert arr.shape == (40, 50, 3) and arr.dtype == np.uint8
    assert (g == 77).all()
    assert (a[..., 0] == 200).all() and (a[..., 1] == 0).all()
    assert d.min() == 0 and d.max() == 255          # 16-bit stretched to the full 8-bit range


def test_exif_rotation_applied(tmp_path):
    img = Image.fromarray(np.zeros((40, 60, 3), np.uint8))
    exif = img.getexif()
    exif[0x0112] = 6                                  # rotate 90 CW on display
    img.save(tmp_path / "r.jpg", exif=exif)
    assert load_image(tmp_path / "r.jpg").shape == (60, 40, 3)


def test_cmyk_and_palette_and_first_gif_frame(tmp_path):
    Image.new("CMYK", (40, 40), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    Image.new("P", (40, 40), 3).save(tmp_path / "p.png")
    frames = [Image.new("RGB", (40, 40), c) for c in ((255, 0, 0), (0, 255, 0))]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    c = load_image(tmp_path / "c.jpg")
    assert c[..., 0].mean() > 200 and c[..., 1].mean() < 50
    assert load_image(tmp_path / "p.png").shape == (40, 40, 3)
    g = load_image(tmp_path / "a.gif")
    assert g[..., 0].mean() > 200


@pytest.mark.parametrize("name,data,match", [
    ("empty.png", b"", "not an image|corrupt"),
    ("text.png", b"hello, I am not a PNG", "not an image"),
])
def test_not_images(tmp_path, name, data, match):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(ImageReadError, match=match) as err:
        load_image(tmp_path / name)
    assert name in str(err.value)


def test_truncated_png_names_the_file(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), np.uint8)).save(tmp_path / "t.png")
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="t.png.*(corrupt|truncated)"):
        load_image(tmp_path / "t.png")


def test_tiny_image_refused_and_huge_accepted(tmp_path):
    Image.fromarray(np.zeros((20, 100), np.uint8)).save(tmp_path / "tiny.png")
    with pytest.raises(ImageReadError, match="tiny.png.*100x20 px.*at least 32"):
        load_image(tmp_path / "tiny.png")
    Image.fromarray(np.zeros((64, 8200), np.uint8)).save(tmp_path / "huge.png")
    assert load_image(tmp_path / "huge.png").shape == (64, 8200, 3)


def test_missing_and_folder(tmp_path):
    with pytest.raises(ImageReadError, match="not found"):
        load_image(tmp_path / "nope.png")
    (tmp_path / "d.png").mkdir()
    with pytest.raises(ImageReadError, match="folder"):
        load_image(tmp_path / "d.png")


def test_permission_denied(tmp_path, monkeypatch):
    # tests run as root in CI, where chmod 0 does not stop reads: simulate the OS refusal
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "x.png")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "x.png"))

    monkeypatch.setattr(Image, "open", refuse)
    with pytest.raises(ImageReadError, match="x.png: permission denied"):
        load_image(tmp_path / "x.png")


def test_mask_round_trip_is_0_255(tmp_path):
    m = np.zeros((33, 47), bool)
    m[3:9, 4:20] = True
    save_mask(tmp_path / "m.png", m)
    raw = np.asarray(Image.open(tmp_path / "m.png"))
    assert raw.dtype == np.uint8 and set(np.unique(raw)) == {0, 255}
    np.testing.assert_array_equal(load_mask(tmp_path / "m.png"), m)


def test_find_images_sorted_recursive_skips_hidden(tmp_path):
    for rel in ("b/2.png", "a/1.JPG", ".zsas/x.png", "c/readme.txt", "a/.hidden.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    assert [p.relative_to(tmp_path).as_posix() for p in find_images(tmp_path)] == ["a/1.JPG", "b/2.png"]


def test_content_hash_depends_on_pixels():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 1
    assert content_hash(a) == content_hash(a.copy()) != content_hash(b)
