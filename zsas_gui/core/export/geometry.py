"""Mask geometry for the exporters: COCO RLE (no pycocotools needed), components, polygons.

All masks are (H, W) bool, row = y, col = x. Polygons are (N, 2) int32 (x, y) pixel indices of
boundary pixels (N >= 3), as ``cv2.findContours`` gives them; they carry no holes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


# -- COCO run-length encoding (column-major, starts with a run of zeros) -------------------------
def rle_counts(mask: np.ndarray) -> list[int]:
    """Uncompressed COCO RLE counts of a (H, W) bool mask: run lengths over the column-major
    (Fortran-order) pixels, beginning with the number of leading zeros (possibly 0)."""
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    if flat.size == 0:
        return []
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate(([0], change, [flat.size]))).tolist()
    return ([0] + runs) if flat[0] else runs


def rle_string(counts: list[int]) -> str:
    """Compress counts to the COCO string form (pycocotools ``rleToString``: each count minus
    the count two places back, 5 bits a character with a continuation bit, offset by 48)."""
    out = []
    for i, x in enumerate(counts):
        if i > 2:
            x -= counts[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def rle_string_to_counts(s: str) -> list[int]:
    """Inverse of :func:`rle_string` (pycocotools ``rleFrString``)."""
    counts: list[int] = []
    p = 0
    while p < len(s):
        x = k = 0
        more = True
        while more:
            c = ord(s[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def rle_encode(mask: np.ndarray) -> dict:
    """COCO compressed RLE ``{"size": [H, W], "counts": str}`` of a (H, W) bool mask."""
    h, w = np.asarray(mask).shape
    return {"size": [int(h), int(w)], "counts": rle_string(rle_counts(mask))}


def rle_decode(rle: dict) -> np.ndarray:
    """(H, W) bool from a COCO RLE (compressed string or uncompressed list counts)."""
    h, w = rle["size"]
    counts = rle["counts"]
    if isinstance(counts, (bytes, str)):
        counts = rle_string_to_counts(counts.decode() if isinstance(counts, bytes) else counts)
    if sum(counts) != h * w:
        raise ValueError(f"RLE counts sum to {sum(counts)}, expected {h}x{w} = {h * w}")
    values = np.arange(len(counts)) % 2 == 1
    flat = np.repeat(values, counts)
    return flat.reshape((w, h)).T.copy()


# -- components and polygons ---------------------------------------------------------------------
@dataclass(frozen=True)
class Component:
    """One 8-connected component. ``mask``: (H, W) bool over the whole image; ``bbox``: (x, y, w, h)
    pixel extents (inclusive: x .. x + w - 1); ``area``: pixel count."""

    mask: np.ndarray
    bbox: tuple[int, int, int, int]
    area: int


def components(mask: np.ndarray) -> list[Component]:
    """8-connected components of a (H, W) bool mask, in label order (top-left first)."""
    import cv2

    m = np.asarray(mask, dtype=np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    out = []
    for i in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[i])
        out.append(Component(labels == i, (x, y, w, h), area))
    return out


def polygons(mask: np.ndarray) -> list[np.ndarray]:
    """Outer boundary polygons of a (H, W) bool mask: a list of (N, 2) int32 (x, y), N >= 3
    (degenerate contours of one or two pixels repeat their points). Holes are lost."""
    import cv2

    contours, _ = cv2.findContours(np.asarray(mask, dtype=np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for c in contours:
        pts = c.reshape(-1, 2).astype(np.int32)
        while len(pts) < 3:
            pts = np.concatenate([pts, pts[-1:]])
        out.append(pts)
    return out


def fill_polygons(polys: list[np.ndarray], hw: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the union of filled polygons given as (N, 2) int (x, y) pixel indices."""
    import cv2

    m = np.zeros(hw, np.uint8)
    if polys:
        cv2.fillPoly(m, [np.asarray(p, np.int32).reshape(-1, 1, 2) for p in polys], 1)
    return m.astype(bool)


def within_one_pixel(a: np.ndarray, b: np.ndarray) -> bool:
    """True when every pixel where (H, W) bool masks ``a`` and ``b`` differ lies within one
    pixel (8-neighbourhood) of the boundary of ``a`` (the polygon round-trip tolerance)."""
    import cv2

    a8 = np.asarray(a, np.uint8)
    k = np.ones((3, 3), np.uint8)
    band = cv2.dilate(a8, k) != cv2.erode(a8, k)
    return bool(((a != b) & ~band).sum() == 0)
