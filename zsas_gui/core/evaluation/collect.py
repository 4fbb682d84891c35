"""Three predictors per image, accumulated per category and defect class into metric blocks.

Predictors (one pipeline run per image gives all three):

- ``heatmap``: the raw CLIP anomaly map (``AnomalyResult.anomaly_map``, not normalised per image,
  so scores compare across images); no mask, so no IoU;
- ``threshold``: ``R = S * 1[S >= tau]`` (the paper's eq. 1, the map cut at tau, no SAM), mask
  ``R > 0``;
- ``cps``: the method's ``score_map`` (the raw map inside M3, ``outside_weight`` times it outside;
  zeros for an empty M3: ALGORITHM.md §4) and ``pred_mask``.

A class block pools the class's images with the category's ``good`` images (image AUROC needs
normal images; pixel metrics gain their negatives); the ``good`` block holds the good images
alone; a category's ``all`` block every image of it. ``mean_iou`` averages over images with a
non-empty ground truth; ``normal_clean_rate`` is the fraction of images with an empty ground truth
whose predicted mask is empty too. Image-level metrics use ``image_score`` (the CLIP image
classification) and are the same for every predictor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..method.ppg import extreme_region
from ..metrics import CurveMetrics, PixelCurveAccumulator, dice, image_metrics, iou, mean_defined
from ..types import SegmentationResult
from .dataset import GOOD

PREDICTORS = ("heatmap", "threshold", "cps")
#: Score range per predictor for the binned metrics (None = adaptive: the raw map, and so the
#: score map made from it, is on the mapper's own scale).
RANGES: dict[str, tuple[float, float] | None] = {"heatmap": None, "threshold": (0.0, 1.0), "cps": None}


def predictor_outputs(result: SegmentationResult, tau: float) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """``{predictor: (score map (H, W) float32, mask (H, W) bool or None)}`` for one result."""
    R = extreme_region(result.anomaly.normalized, tau)
    return {"heatmap": (result.anomaly.anomaly_map, None),
            "threshold": (R, R > 0),
            "cps": (result.score_map, result.pred_mask)}


@dataclass
class ImageRow:
    """Per-image outcome (a CSV row). ``iou``/``dice``/``mask_area``: per predictor with a mask."""

    rel: str
    category: str
    defect_class: str
    height: int
    width: int
    gt_area: int
    image_score: float
    gated: bool
    iou: dict[str, float] = field(default_factory=dict)
    dice: dict[str, float] = field(default_factory=dict)
    mask_area: dict[str, int] = field(default_factory=dict)


class ClassGroup:
    """Accumulated data of one set of images: per-predictor pixel histograms, image scores, rows."""

    def __init__(self, bins: int):
        self.pixels = {p: PixelCurveAccumulator(bins=bins, range=RANGES[p]) for p in PREDICTORS}
        self.scores: list[float] = []
        self.labels: list[bool] = []
        self.rows: list[ImageRow] = []

    def merged(self, other: ClassGroup) -> ClassGroup:
        g = ClassGroup.__new__(ClassGroup)
        g.pixels = {p: self.pixels[p].copy().merge(other.pixels[p]) for p in PREDICTORS}
        g.scores, g.labels, g.rows = self.scores + other.scores, self.labels + other.labels, self.rows + other.rows
        return g

    def absorb(self, other: ClassGroup) -> None:
        for p in PREDICTORS:
            self.pixels[p].merge(other.pixels[p])
        self.scores += other.scores
        self.labels += other.labels
        self.rows += other.rows

    def block(self) -> dict:
        """The JSON block: image counts and, per predictor, the metrics and their error bounds."""
        n_def = sum(r.gt_area > 0 for r in self.rows)
        img = image_metrics(self.scores, self.labels) if self.rows else None
        preds = {}
        for p in PREDICTORS:
            m = self.pixels[p].result() if self.rows else None
            preds[p] = _predictor_block(p, m, img, self.rows)
        return {"n_images": len(self.rows), "n_anomalous_images": int(sum(self.labels)),
                "n_images_with_defect_pixels": int(n_def), "predictors": preds}


def _r(v: float | None) -> float | None:
    return None if v is None or math.isnan(v) else round(float(v), 6)


def _predictor_block(name: str, m: CurveMetrics | None, img: CurveMetrics | None, rows: list[ImageRow]) -> dict:
    if m is None:
        return {}
    defect_ious = [r.iou[name] for r in rows if r.gt_area > 0 and name in r.iou]
    normal = [r.mask_area[name] == 0 for r in rows if r.gt_area == 0 and name in r.mask_area]
    has_mask = name != "heatmap"
    return {
        "pixel_auroc": _r(m.auroc), "pixel_ap": _r(m.ap), "pixel_f1_max": _r(m.f1_max),
        "pixel_f1_threshold": _r(m.f1_threshold), "aupro": _r(m.aupro),
        "mean_iou": _r(mean_defined(defect_ious).mean) if has_mask else None,
        "mean_dice": _r(mean_defined([r.dice[name] for r in rows if r.gt_area > 0]).mean) if has_mask else None,
        "normal_clean_rate": _r(float(np.mean(normal))) if has_mask and normal else None,
        "image_auroc": _r(img.auroc), "image_ap": _r(img.ap),
        "bounds": {"pixel_auroc": _r(m.auroc_bound), "pixel_ap": _r(m.ap_bound),
                   "pixel_f1_max": _r(m.f1_bound), "aupro": _r(m.aupro_bound)},
        "n_pos_pixels": m.n_pos, "n_neg_pixels": m.n_neg, "n_regions": m.n_regions,
    }


class CategoryCollector:
    """Accumulates one category, image by image; :meth:`blocks` gives its JSON blocks."""

    def __init__(self, name: str, bins: int):
        self.name = name
        self.bins = bins
        self.groups: dict[str, ClassGroup] = {}

    def add(self, rel: str, defect_class: str, is_anomalous: bool, gt: np.ndarray,
            result: SegmentationResult, tau: float) -> ImageRow:
        """Add one evaluated image. ``gt``: (H, W) bool, the same shape as the result's maps."""
        g = self.groups.setdefault(defect_class, ClassGroup(self.bins))
        h, w = gt.shape
        row = ImageRow(rel, self.name, defect_class, h, w, int(gt.sum()),
                       float(result.anomaly.image_score), bool(result.gated))
        for p, (score, mask) in predictor_outputs(result, tau).items():
            g.pixels[p].update(score, gt)
            if mask is not None:
                row.iou[p], row.dice[p], row.mask_area[p] = iou(mask, gt), dice(mask, gt), int(mask.sum())
        g.scores.append(row.image_score)
        g.labels.append(is_anomalous)
        g.rows.append(row)
        return row

    def all_group(self) -> ClassGroup:
        """Every image of the category in one group (a new object)."""
        total = ClassGroup(self.bins)
        for g in self.groups.values():
            total.absorb(g)
        return total

    def blocks(self) -> tuple[dict, ClassGroup]:
        """``({"classes": {class: block}, "all": block}, the category's all-images group)``."""
        good = self.groups.get(GOOD)
        classes = {}
        for cls, g in sorted(self.groups.items()):
            classes[cls] = (g.merged(good) if good is not None and cls != GOOD else g).block()
        total = self.all_group()
        return {"classes": classes, "all": total.block()}, total


def new_group(bins: int) -> ClassGroup:
    """An empty group (the overall pool across categories)."""
    return ClassGroup(bins)
