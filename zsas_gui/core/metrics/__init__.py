"""Segmentation metrics (numpy only; OpenCV for connected components): pixel AUROC, AP, F1-max,
AUPRO up to FPR 0.3, IoU and Dice of masks, image-level AUROC and AP.

Two ways to compute the ranking metrics, with the same definitions (docs/metrics.md):

- exact (:func:`pixel_metrics`, :func:`auroc`, ...): sorts every score; for small inputs;
- streaming (:class:`PixelCurveAccumulator`): one image at a time into histograms, O(bins)
  memory, every value returned with a guaranteed bound on its distance to the exact value.
"""

from .binned import DEFAULT_BINS, PixelCurveAccumulator
from .curves import (
                     CurveMetrics,
                     F1Max,
                     auroc,
                     average_precision,
                     binary_curve,
                     curve_metrics,
                     f1_max,
                     precision_recall_curve,
                     roc_curve,
)
from .masks import MeanResult, dice, iou, mean_defined
from .pixel import image_metrics, pixel_metrics
from .pro import DEFAULT_FPR_LIMIT, area_to_limit, aupro, label_regions, pro_curve, region_weights

__all__ = [
    "DEFAULT_BINS", "DEFAULT_FPR_LIMIT", "CurveMetrics", "F1Max", "MeanResult", "PixelCurveAccumulator",
    "area_to_limit", "aupro", "auroc", "average_precision", "binary_curve", "curve_metrics", "dice",
    "f1_max", "image_metrics", "iou", "label_regions", "mean_defined", "pixel_metrics",
    "precision_recall_curve", "pro_curve", "region_weights", "roc_curve",
]
