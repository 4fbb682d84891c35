"""Reading images and masks, writing PNGs, finding images in folders.

Every image the product works on is an RGB ``uint8`` array of shape (H, W, 3), row-major
(row = y, col = x). Masks are ``bool`` (H, W) in memory and 0/255 single-channel PNG on disk.
"""

from __future__ import annotations

import hashlib
import os
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import ImageReadError
from .atomic import atomic_write_bytes

#: File extensions treated as images when scanning folders (lower case, with dot).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")
#: Smallest accepted side: below this the CLIP patch grid and SAM's 64x64 embedding carry no detail.
MIN_SIDE_PX = 32
#: Largest accepted image (pixels): the pixel budget. One image goes through the method whole
#: (RGB, map, masks); 13000x13000 (169 Mpx) took 2 min and 8.4 GB. Also our decompression-bomb
#: limit (Pillow's default is 89 M).
MAX_PIXELS = 8192 * 8192
#: Largest accepted ratio of the long to the short side: SAM resizes the long side to its input
#: size (1024 px; 256 for the tiny test models), so a 32x60000 image would have a 0 px short side
#: there (a 32x8192 strip still runs with the tiny models).
MAX_ASPECT = 256


#: What :func:`read_errors` says per kind of file: missing, a folder, not an image, corrupt.
_READ_PROBLEMS = {
    "image": ("file not found", "is a folder, not an image",
              "not an image file Pillow can read (wrong extension or corrupt)", "corrupt or truncated image"),
    "mask": ("mask file not found", "is a folder, not a mask image",
             "not an image file (expected a PNG mask)", "corrupt mask image"),
}


@contextmanager
def read_errors(path: Path, kind: str = "image") -> Iterator[None]:
    """Inside the block, any failure to read ``path`` (an ``"image"`` or a ``"mask"``) becomes
    :class:`ImageReadError` naming the file and the problem (the one ``except`` ladder)."""
    from PIL import UnidentifiedImageError

    missing, folder, unknown, corrupt = _READ_PROBLEMS[kind]
    try:
        yield
    except ImageReadError:
        raise
    except FileNotFoundError as exc:
        raise ImageReadError(f"{path}: {missing}") from exc
    except PermissionError as exc:
        raise ImageReadError(f"{path}: permission denied") from exc
    except IsADirectoryError as exc:
        raise ImageReadError(f"{path}: {folder}") from exc
    except UnidentifiedImageError as exc:
        raise ImageReadError(f"{path}: {unknown}") from exc
    except (OSError, SyntaxError, ValueError, EOFError, TypeError, IndexError, struct.error) as exc:
        # Pillow's decoders raise these on damaged files (fuzzing found each of them)
        raise ImageReadError(f"{path}: {corrupt} ({exc})") from exc


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as RGB.

    Returns (H, W, 3) uint8 RGB, EXIF orientation applied. Grey, palette, RGBA (alpha dropped),
    CMYK, 16-bit and float images are converted; animated files give their first frame;
    16-bit/float data are stretched linearly from their min..max to 0..255.
    Raises :class:`ImageReadError` naming the file and the problem.
    """
    from PIL import Image, ImageOps

    path = Path(path)
    with read_errors(path, "image"), open_image(path) as img:
        w, h = img.size
        _check_size(path, w, h)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img.seek(0)
            img.load()
            img = ImageOps.exif_transpose(img)
        rgb = _to_rgb_uint8(img)
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_SIDE_PX:
        raise ImageReadError(
            f"{path}: image is only {w}x{h} px; zsas needs at least {MIN_SIDE_PX} px on each side")
    return rgb


def _check_size(path: Path, w: int, h: int) -> None:
    """Refuse, from the header, an image over the pixel budget or too elongated to segment."""
    if w * h > MAX_PIXELS:
        raise ImageReadError(
            f"{path}: image is {w}x{h} px ({w * h / 1e6:.0f} Mpx), above the {MAX_PIXELS / 1e6:.0f} Mpx "
            f"zsas segments in one piece; downscale it (e.g. to 8000 px on the long side) or cut it "
            f"into tiles first")
    if max(w, h) > MAX_ASPECT * max(1, min(w, h)):
        raise ImageReadError(
            f"{path}: image is {w}x{h} px, more than {MAX_ASPECT} times longer than wide; SAM would "
            f"shrink its short side to nothing: cut it into tiles first")


def open_image(path: Path):
    """``PIL.Image.open`` without Pillow's decompression-bomb warning (our limit is
    :data:`MAX_PIXELS`); a header claiming more pixels than Pillow accepts at all becomes an
    :class:`ImageReadError` naming the file (Pillow raises ``DecompressionBombError``, which is
    not an ``OSError``, so it would otherwise escape every caller)."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(path)
    except Image.DecompressionBombError as exc:
        raise ImageReadError(f"{path}: image too large to open safely ({exc}); downscale it first") from exc


def _to_rgb_uint8(img) -> np.ndarray:
    """Convert a loaded PIL image of any mode to (H, W, 3) uint8 RGB."""
    mode = img.mode
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = np.zeros_like(arr) if hi <= lo else (arr - lo) * (255.0 / (hi - lo))
        grey = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA").convert("RGB")  # alpha dropped, colours kept
    elif mode != "RGB":
        img = img.convert("RGB")
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def encode_png(array: np.ndarray) -> bytes:
    """Encode (H, W) uint8/bool or (H, W, 3) uint8 RGB as PNG bytes."""
    import cv2

    arr = np.asarray(array)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", arr)
    if not ok:
        raise ValueError(f"cannot encode array of shape {arr.shape} dtype {arr.dtype} as PNG")
    return buf.tobytes()


def save_png(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Atomically write a PNG: bool masks become 0/255 single-channel, RGB stays RGB."""
    return atomic_write_bytes(path, encode_png(array))


def save_mask(path: str | os.PathLike, mask: np.ndarray) -> Path:
    """Atomically write a (H, W) mask as a 0/255 single-channel PNG (anything > 0 is defect)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    return save_png(path, mask > 0)


def load_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a mask PNG as (H, W) bool (pixel > 0 is defect). Colour masks count any channel."""
    return mask_from_pixels(load_mask_pixels(path))


def mask_from_pixels(arr: np.ndarray) -> np.ndarray:
    """(H, W) bool from a mask file's pixels ((H, W) or (H, W, C)): > 0 in any colour channel."""
    if arr.ndim == 3:
        arr = arr[:, :, :3].max(axis=2) if arr.shape[2] >= 3 else arr[:, :, 0]
    return arr > 0


def load_mask_pixels(path: str | os.PathLike) -> np.ndarray:
    """A mask file's pixels as stored ((H, W) or (H, W, C), its dtype); any damage is an
    :class:`ImageReadError` naming the file."""
    path = Path(path)
    with read_errors(path, "mask"), open_image(path) as img:
        img.load()
        arr = np.asarray(img)
    return arr


def find_images(root: str | os.PathLike, problems: list[str] | None = None) -> list[Path]:
    """All image files under ``root`` (recursive, sorted, hidden files and folders skipped).

    ``root`` may also be a single image file, which is returned alone. A folder that cannot be
    listed is skipped with a line in ``problems`` (when given) naming it.
    """
    root = Path(root)
    if root.is_file():
        return [root]
    found = []

    def unlistable(exc: OSError) -> None:
        if problems is not None:
            problems.append(f"{exc.filename}: cannot list this folder ({exc.strerror or exc}); its "
                            f"images are left out: fix its permissions")

    for dirpath, dirnames, filenames in os.walk(root, onerror=unlistable):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS):
                found.append(Path(dirpath) / name)
    return found


def content_hash(image: np.ndarray) -> str:
    """SHA-256 (hex, 32 chars) of an image array's shape, dtype and pixels: a cache key."""
    h = hashlib.sha256()
    h.update(f"{image.shape}{image.dtype}".encode())
    h.update(np.ascontiguousarray(image).data)
    return h.hexdigest()[:32]
