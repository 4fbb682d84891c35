"""Mask geometry for the exporters: COCO RLE (no pycocotools needed), components, polygons.

All masks are (H, W) bool, row = y, col = x. Two kinds of polygon, both (N, 2) int32 (x, y), no
holes (a polygon's inside is filled):

- :func:`polygons`: through the *centres of the boundary pixels* (pixel indices, as
  ``cv2.findContours`` gives them). Tools that fill a polygon including its outline (labelme's
  PIL drawing, ultralytics' truncate-then-``fillPoly``) get exactly the pixels back.
- :func:`boundary_polygons`: along the *outer edges of the boundary pixels* (pixel corners,
  pixel ``(x, y)`` spans ``[x, x + 1) x [y, y + 1)``). Tools that fill a pixel when its centre is
  inside the polygon (pycocotools, COCO's convention) get exactly the pixels back; a 1-pixel
  component is a unit square, never a zero-area polygon.
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


def boundary_polygons(mask: np.ndarray) -> list[np.ndarray]:
    """Outer pixel-edge outlines of a (H, W) bool mask: a list of (N, 2) int32 (x, y) corner
    coordinates, N >= 4, one per outer contour (see the module docstring). Holes are filled.

    Traced by doubling the mask (each pixel -> 2x2) and following its boundary pixels: a
    boundary pixel ``u`` of the doubled mask lies on the left/top (even ``u``) or right/bottom
    (odd ``u``) edge of its source pixel, so ``(u + 1) // 2`` is the corner it stands for.
    Consecutive repeats and collinear corners are dropped."""
    import cv2

    m = np.asarray(mask, dtype=np.uint8)
    doubled = np.repeat(np.repeat(m, 2, axis=0), 2, axis=1)
    contours, _ = cv2.findContours(doubled, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    out = []
    for c in contours:
        pts = (c.reshape(-1, 2).astype(np.int32) + 1) // 2
        pts = pts[np.r_[True, (pts[1:] != pts[:-1]).any(axis=1)]]
        if len(pts) > 1 and (pts[0] == pts[-1]).all():
            pts = pts[:-1]
        step_in = pts - np.roll(pts, 1, axis=0)
        step_out = np.roll(pts, -1, axis=0) - pts
        turning = (step_in != step_out).any(axis=1)          # keep the corners only
        out.append(pts[turning])
    return out


def count_holes(mask: np.ndarray) -> int:
    """Number of holes (background regions enclosed by the mask) of a (H, W) bool mask."""
    import cv2

    _, hierarchy = cv2.findContours(np.asarray(mask, dtype=np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    return 0 if hierarchy is None else int((hierarchy[0][:, 3] >= 0).sum())


def fill_boundary_polygons(polys: list, hw: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: pixels whose centre lies inside the union of ``polys`` ((N, 2) float (x, y)
    in pixel-edge coordinates, COCO's convention). Drawn at twice the size, where every pixel
    centre ``x + 0.5`` sits on the odd grid line ``2x + 1``, then sampled there."""
    import cv2

    h, w = hw
    big = np.zeros((2 * h, 2 * w), np.uint8)
    pts = [np.round(np.asarray(p, float).reshape(-1, 2) * 2).astype(np.int32).reshape(-1, 1, 2) for p in polys]
    if pts:
        cv2.fillPoly(big, pts, 1)
    return big[1::2, 1::2].astype(bool)


def polygons_lost(component: np.ndarray, polys: list[np.ndarray], lost: dict[str, int]) -> None:
    """Count in ``lost`` what pixel-centre polygons ``polys`` of one component cannot hold:
    ``holes_filled`` (its holes) and ``zero_area_polygons`` (one-pixel-wide shapes: kept, since
    labelme and ultralytics draw their outline, but a tool that fills by area drops them)."""
    import cv2

    holes = count_holes(component)
    flat = sum(cv2.contourArea(p.reshape(-1, 1, 2).astype(np.float32)) == 0 for p in polys)
    for key, n in (("holes_filled", holes), ("zero_area_polygons", int(flat))):
        if n:
            lost[key] = lost.get(key, 0) + n


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
