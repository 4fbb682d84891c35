"""ndarray <-> QImage, keeping the numpy buffer alive behind the QImage (pyqtgraph's habit).

A QImage built on a numpy buffer does not own it: if the array is freed the image shows garbage
or crashes. Every function here returns a QImage that holds a reference to its buffer
(``image._zsas_buffer``), so callers can drop the array.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor, QImage

from ..core.io.colormap import COLORMAPS  # noqa: F401 - re-exported for panels
from ..core.io.colormap import lut as _core_lut


def colormap_lut(name: str) -> np.ndarray:
    """(256, 3) uint8 RGB lookup table for colormap ``name`` (one of :data:`COLORMAPS`)."""
    return _core_lut(name)


def _keep(img: QImage, buf: np.ndarray) -> QImage:
    img._zsas_buffer = buf
    return img


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """(H, W, 3) uint8 RGB -> QImage Format_RGB888 sharing a contiguous copy of the pixels."""
    a = np.ascontiguousarray(rgb, dtype=np.uint8)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) uint8 RGB, got shape {a.shape}")
    h, w = a.shape[:2]
    return _keep(QImage(a.data, w, h, a.strides[0], QImage.Format.Format_RGB888), a)


def rgba_to_qimage(rgba: np.ndarray) -> QImage:
    """(H, W, 4) uint8 RGBA (not premultiplied) -> QImage Format_RGBA8888 sharing the buffer."""
    a = np.ascontiguousarray(rgba, dtype=np.uint8)
    if a.ndim != 3 or a.shape[2] != 4:
        raise ValueError(f"expected (H, W, 4) uint8 RGBA, got shape {a.shape}")
    h, w = a.shape[:2]
    return _keep(QImage(a.data, w, h, a.strides[0], QImage.Format.Format_RGBA8888), a)


def scalar_to_indexed(s: np.ndarray) -> np.ndarray:
    """(H, W) float in [0, 1] -> (H, W) uint8 LUT indices round(S * 255) (NaN -> 0)."""
    s = np.nan_to_num(np.asarray(s, dtype=np.float32), nan=0.0)
    return np.round(np.clip(s, 0.0, 1.0) * 255.0).astype(np.uint8)


def indexed_qimage(index: np.ndarray, lut_rgb: np.ndarray, alpha: np.ndarray | None = None) -> QImage:
    """(H, W) uint8 indices + a (256, 3) uint8 RGB table -> QImage Format_Indexed8.

    Restyling (another colormap, another alpha ramp) only swaps the colour table with
    :func:`set_colour_table`; the indices are never recomputed. ``alpha``: optional (256,)
    uint8 per-entry alpha (e.g. low values transparent).
    """
    a = np.ascontiguousarray(index, dtype=np.uint8)
    if a.ndim != 2:
        raise ValueError(f"expected (H, W) uint8 indices, got shape {a.shape}")
    h, w = a.shape
    img = _keep(QImage(a.data, w, h, a.strides[0], QImage.Format.Format_Indexed8), a)
    set_colour_table(img, lut_rgb, alpha)
    return img


def set_colour_table(img: QImage, lut_rgb: np.ndarray, alpha: np.ndarray | None = None) -> None:
    """Install a 256-entry colour table on an Indexed8 image (cheap: 256 values)."""
    lut = np.asarray(lut_rgb, dtype=np.uint8).reshape(256, 3)
    al = np.full(256, 255, np.uint8) if alpha is None else np.asarray(alpha, np.uint8).reshape(256)
    img.setColorTable([QColor(int(r), int(g), int(b), int(a)).rgba()
                       for (r, g, b), a in zip(lut.tolist(), al.tolist())])


def mask_to_qimage(mask: np.ndarray, rgb: tuple[int, int, int], alpha: int = 110) -> QImage:
    """(H, W) bool mask -> translucent overlay: ``rgb`` at ``alpha`` inside, transparent outside.

    An Indexed8 image over the mask's own bytes (True = 1) with a two-entry colour table: no
    per-pixel work in Python or numpy."""
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"expected (H, W) bool mask, got shape {m.shape}")
    idx = np.ascontiguousarray(m, dtype=bool).view(np.uint8)
    h, w = idx.shape
    img = _keep(QImage(idx.data, w, h, idx.strides[0], QImage.Format.Format_Indexed8), idx)
    img.setColorTable([QColor(0, 0, 0, 0).rgba(), QColor(*rgb, alpha).rgba()])
    return img


def qimage_to_rgb(img: QImage) -> np.ndarray:
    """QImage (any format) -> (H, W, 3) uint8 RGB copy (used by tests and screenshots)."""
    img = img.convertToFormat(QImage.Format.Format_RGB888)
    w, h = img.width(), img.height()
    arr = np.frombuffer(img.constBits(), np.uint8, count=img.bytesPerLine() * h)
    return arr.reshape(h, img.bytesPerLine())[:, : w * 3].reshape(h, w, 3).copy()
