"""Writing an evaluation: ``metrics.json``, ``per_image.csv``, curve plots and a text table."""

from __future__ import annotations

import csv
import io
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..io.atomic import atomic_write_json, atomic_write_text
from .collect import PREDICTORS
from .run import EvalResult

CSV_COLUMNS = ["image", "category", "defect_class", "width", "height", "gt_area", "image_score", "gated",
               "iou_threshold", "dice_threshold", "mask_area_threshold", "iou_cps", "dice_cps",
               "mask_area_cps"]

NOTES = {
    "heatmap": "raw CLIP anomaly map (not normalised per image); no mask, so no IoU",
    "threshold": "R = S * 1[S >= tau] (eq. 1, no SAM); mask R > 0",
    "cps": "the method's score_map (S * M3, S where M3 is empty) and pred_mask",
    "class_blocks": "a defect class block pools its images with the category's good images",
    "mean_iou": "over images with a non-empty ground truth; empty-vs-empty would count 1.0",
    "normal_clean_rate": "fraction of images with an empty ground truth predicted empty",
    "image_metrics": "from image_score (CLIP image classification), the same for every predictor",
    "pixel_metrics": "pooled over all pixels of the block's images; binned (streaming) with the stated "
                     "error bounds, see docs/metrics.md",
}


def write_metrics_json(path: str | os.PathLike, res: EvalResult, meta: dict[str, Any]) -> Path:
    """``metrics.json``: meta (root, models, params, ...), per category/class blocks, overall."""
    return atomic_write_json(path, {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **meta, "notes": NOTES,
        "n_images": len(res.rows), "n_failed": len(res.failures),
        "failed": [{"image": f, "error": e} for f, e in res.failures],
        "categories": res.categories, "overall": res.overall, "category_mean": res.category_mean})


def write_csv(path: str | os.PathLike, res: EvalResult) -> Path:
    """``per_image.csv``: one row per evaluated image (IoU/Dice of the two mask predictors)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in res.rows:
        w.writerow([r.rel, r.category, r.defect_class, r.width, r.height, r.gt_area,
                    f"{r.image_score:.6f}", int(r.gated),
                    f"{r.iou['threshold']:.6f}", f"{r.dice['threshold']:.6f}", r.mask_area["threshold"],
                    f"{r.iou['cps']:.6f}", f"{r.dice['cps']:.6f}", r.mask_area["cps"]])
    return atomic_write_text(path, buf.getvalue())


def _fmt(v) -> str:
    return "   -  " if v is None else f"{v:6.3f}"


def format_table(res: EvalResult) -> str:
    """A plain-text table: rows (category, class, predictor), columns the main metrics."""
    head = (f"{'category':<16} {'class':<14} {'predictor':<10} {'images':>6}  P-AUROC   P-AP  F1-max"
            f"   AUPRO   mIoU  I-AUROC")
    lines = [head, "-" * len(head)]

    def add(cat, cls, block):
        for p in PREDICTORS:
            m = block["predictors"].get(p) or {}
            lines.append(f"{cat:<16.16} {cls:<14.14} {p:<10} {block['n_images']:>6}  {_fmt(m.get('pixel_auroc'))}"
                         f"  {_fmt(m.get('pixel_ap'))}  {_fmt(m.get('pixel_f1_max'))}  {_fmt(m.get('aupro'))}"
                         f"  {_fmt(m.get('mean_iou'))}  {_fmt(m.get('image_auroc'))}")

    for cat, blocks in res.categories.items():
        for cls, block in blocks["classes"].items():
            add(cat, cls, block)
        add(cat, "ALL", blocks["all"])
    if len(res.categories) > 1 and res.overall:
        add("ALL (pooled)", "ALL", res.overall)
        for p in PREDICTORS:
            m = res.category_mean[p]
            lines.append(f"{'category mean':<16} {'ALL':<14} {p:<10} {'':>6}  {_fmt(m['pixel_auroc'])}"
                         f"  {_fmt(m['pixel_ap'])}  {_fmt(m['pixel_f1_max'])}  {_fmt(m['aupro'])}"
                         f"  {_fmt(m['mean_iou'])}  {_fmt(m['image_auroc'])}")
    return "\n".join(lines)


def write_plots(folder: str | os.PathLike, res: EvalResult) -> list[str]:
    """ROC, PR and PRO curve PNGs per category (and ``overall_*`` for several categories)."""
    from .plot import save_curve_plots

    written = []
    for name, curves in res.curves.items():
        written += save_curve_plots(folder, name, curves)
    return written
