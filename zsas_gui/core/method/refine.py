"""CPS: the cascaded SAM refinement (ALGORITHM.md §3) and mask cleanup.

Three decoder passes against one cached image embedding:
1. points -> M1, L1 (single mask);
2. points + mask_input L1 -> best of three by predicted IoU -> M2, L2;
3. points + box(M2) + mask_input L2 -> best of three -> M3.
The cascade is a generator that yields each :class:`StageResult` so callers can show progress and
cancel between stages.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Protocol

import numpy as np

from ..frames import mask_to_box
from ..types import Prompts, StageResult

STAGE_NAMES = ("points", "points+mask", "points+mask+box")


class MaskDecoder(Protocol):
    """One SAM decoder call on a cached embedding (``SamPredictor.predict`` semantics).

    points: (N, 2) float32 (x, y) image pixels; labels: (N,) int32 1/0; box: (4,) float32 xyxy
    image pixels or None; mask_input: (h, w) float32 logits over SAM's padded square or None.
    Returns masks (C, H, W) bool, ious (C,) float32, low_res_logits (C, h, w) float32.
    """

    def decode(self, points: np.ndarray, labels: np.ndarray, box: np.ndarray | None,
               mask_input: np.ndarray | None, multimask: bool
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


def best_candidate(decoder: MaskDecoder, points, labels, box, mask_input, multimask: bool
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The candidate the cascade keeps: mask (H, W) bool, ious (C,) float32 (all candidates),
    low_res_logits (h, w) float32, index into the C candidates (the single one, or the highest
    predicted IoU). Decoders with a ``decode_best`` method (same arguments, same results)
    compute only that candidate; the others go through ``decode``."""
    fast = getattr(decoder, "decode_best", None)
    if fast is not None:
        return fast(points, labels, box, mask_input, multimask)
    masks, ious, low = decoder.decode(points, labels, box, mask_input, multimask)
    best = int(np.argmax(ious))
    return masks[best], ious, low[best], best


def iter_cascade(decoder: MaskDecoder, prompts: Prompts, component: int = 0
                 ) -> Generator[StageResult, None, list[StageResult]]:
    """Run the three-stage cascade, yielding each stage; returns the list of stages run.

    Stops early (fewer stages) when there is no positive point, or when M1 or M2 is empty
    (an empty mask has no box). The caller's final mask is the last stage's mask.
    """
    stages: list[StageResult] = []
    if prompts.n_pos == 0:
        return stages
    pts, lab = prompts.points, prompts.labels

    mask, ious, low, _ = best_candidate(decoder, pts, lab, None, None, multimask=False)
    s1 = StageResult(1, STAGE_NAMES[0], mask, low, float(ious[0]), None, component, ious)
    stages.append(s1)
    yield s1
    if not s1.mask.any():
        return stages

    mask, ious, low, best = best_candidate(decoder, pts, lab, None, s1.low_res_logits, multimask=True)
    s2 = StageResult(2, STAGE_NAMES[1], mask, low, float(ious[best]), None, component, ious)
    stages.append(s2)
    yield s2
    box = mask_to_box(s2.mask)
    if box is None:
        return stages

    # inclusive pixel coordinates of M2, inside the image (ALGORITHM.md §3): x_max is the last
    # column holding mask; SAM's prompt encoder adds its own half-pixel shift to box corners
    h, w = s2.mask.shape
    box = np.clip(box, 0, [w - 1, h - 1, w - 1, h - 1]).astype(np.float32)
    mask, ious, low, best = best_candidate(decoder, pts, lab, box, s2.low_res_logits, multimask=True)
    s3 = StageResult(3, STAGE_NAMES[2], mask, low, float(ious[best]), box, component, ious)
    stages.append(s3)
    yield s3
    return stages


def clean_mask(mask: np.ndarray, min_area_px: int) -> np.ndarray:
    """Remove foreground components and fill background components (holes) smaller than
    ``min_area_px`` pixels (8-connectivity). mask: (H, W) bool -> (H, W) bool.

    Works inside the mask's bounding box grown by one pixel (a defect mask is usually a small
    part of the image); the result equals labelling the whole image (tests compare both)."""
    if min_area_px <= 1 or not mask.any():
        return mask.copy()
    out = mask.copy()
    box, _ = _grown_box(out)
    _drop_small(out[box], True, min_area_px)            # every island lies inside the box
    if not out.any():
        return out
    box, padded = _grown_box(out)
    if _outside_is_large(out.shape, box, padded, min_area_px):
        _drop_small(out[box], False, min_area_px, outside=padded)
    else:                                                # a small strip outside the box: label it all
        _drop_small(out, False, min_area_px)
    return out


def _grown_box(mask: np.ndarray) -> tuple[tuple[slice, slice], tuple[bool, bool, bool, bool]]:
    """Slices of the mask's bounding box grown by one pixel where the image allows, and which
    sides (top, bottom, left, right) got that extra pixel row/column."""
    h, w = mask.shape
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    padded = (y0 > 0, y1 < h, x0 > 0, x1 < w)
    return (slice(y0 - padded[0], y1 + padded[1]), slice(x0 - padded[2], x1 + padded[3])), padded


def _outside_is_large(hw, box, padded, min_area_px: int) -> bool:
    """True when every strip of the image outside the (ungrown) box has at least ``min_area_px``
    pixels, so a background component reaching outside the box is never a small hole."""
    h, w = hw
    y0, y1 = box[0].start + padded[0], box[0].stop - padded[1]
    x0, x1 = box[1].start + padded[2], box[1].stop - padded[3]
    strips = (y0 * w, (h - y1) * w, (y1 - y0) * x0, (y1 - y0) * (w - x1))
    return all(a == 0 or a >= min_area_px for a in strips)


def _drop_small(view: np.ndarray, value: bool, min_area_px: int,
                outside: tuple[bool, bool, bool, bool] = (False,) * 4) -> None:
    """In place: set components of ``view == value`` smaller than ``min_area_px`` to ``not
    value``. Components touching a grown side (``outside``: top, bottom, left, right) reach
    outside the view and are kept."""
    import cv2

    layer = np.ascontiguousarray(view == value).view(np.uint8)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(layer, connectivity=8)
    small = stats[:, cv2.CC_STAT_AREA] < min_area_px      # one per label; 0 = the other value
    small[0] = False
    for side, edge in zip(outside, (labels[0], labels[-1], labels[:, 0], labels[:, -1])):
        if side:
            small[edge] = False
    if small.any():   # one table lookup rewrites the view (3x faster than a boolean-mask assignment)
        lut = np.where(small, not value, value)
        lut[0] = not value
        view[...] = np.take(lut, labels)


def min_area_pixels(hw: tuple[int, int], frac: float) -> int:
    """``frac`` of the image area in pixels (rounded)."""
    return int(round(frac * hw[0] * hw[1]))


def score_map(anomaly_map: np.ndarray, pred_mask: np.ndarray, outside_weight: float = 0.0) -> np.ndarray:
    """ALGORITHM.md §4: ``anomaly_map * (lambda + (1 - lambda) * M3)`` with the *raw* map (so
    scores compare across images) and lambda = ``outside_weight``. An empty mask (gated image,
    or a cascade that found nothing) gives ``lambda * anomaly_map``: zeros by default.
    anomaly_map: (H, W) float; pred_mask: (H, W) bool. Returns (H, W) float32."""
    raw = np.asarray(anomaly_map, dtype=np.float32)
    lam = np.float32(outside_weight)
    return (raw * (lam + (np.float32(1) - lam) * pred_mask)).astype(np.float32)


class PredictorDecoder:
    """:class:`MaskDecoder` over ``segment_anything.SamPredictor`` with a restored embedding
    (the reference path: SAM's own ``predict``)."""

    def __init__(self, predictor):
        if not predictor.is_image_set:
            raise RuntimeError("SamPredictor has no image: restore an embedding first (Pipeline does)")
        self.predictor = predictor

    def decode(self, points, labels, box, mask_input, multimask):
        masks, ious, low = self.predictor.predict(
            point_coords=points, point_labels=labels, box=box,
            mask_input=None if mask_input is None else mask_input[None].astype(np.float32),
            multimask_output=multimask)
        return masks, ious.astype(np.float32), low.astype(np.float32)
