"""The evaluation loop: one pipeline run per image, three predictors, metrics per category."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ZsasError
from ..io.imageio import load_image, load_mask
from ..metrics import DEFAULT_BINS
from ..types import MethodParams, TextPrompts
from .collect import PREDICTORS, CategoryCollector, ClassGroup, ImageRow, new_group
from .dataset import EvalItem

#: Metrics averaged over categories in ``category_mean`` (the paper's table convention).
MEAN_KEYS = ("pixel_auroc", "pixel_ap", "pixel_f1_max", "aupro", "mean_iou", "image_auroc", "image_ap")


@dataclass
class Curves:
    """Plot data of one image set: per predictor ``{"roc": (fpr, tpr), "pr": (recall, precision),
    "pro": (fpr, pro), "metrics": block}``; arrays (T,) float64."""

    title: str
    per_predictor: dict[str, dict[str, Any]]


@dataclass
class EvalResult:
    categories: dict[str, dict] = field(default_factory=dict)   # name -> {"classes", "all"}
    overall: dict = field(default_factory=dict)                 # every image of every category
    category_mean: dict = field(default_factory=dict)           # predictor -> metric -> mean
    rows: list[ImageRow] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)   # (file, message)
    curves: dict[str, Curves] = field(default_factory=dict)     # "category" or "overall"


def category_object_name(category: str) -> str:
    """The text-prompt object name for a category folder: ``metal_nut`` -> ``metal nut``."""
    return category.replace("_", " ").replace("-", " ").strip() or "object"


def evaluate(pipe, items: list[EvalItem], params: MethodParams,
             text_for: Callable[[str], TextPrompts], bins: int = DEFAULT_BINS,
             on_image: Callable[[EvalItem, str | None], None] | None = None,
             before_category: Callable[[str, list[EvalItem]], None] | None = None) -> EvalResult:
    """Run ``pipe`` once on every item and accumulate the metrics.

    ``text_for(category)`` gives the text prompts of a category. Items must be grouped by category
    (:func:`.dataset.discover` sorts them); one category's histograms are held at a time.
    A user error on one image (unreadable file, missing or mis-sized mask) is recorded in
    ``failures`` and the loop goes on. ``on_image(item, error_or_None)`` is called after each;
    ``before_category(name, its items)`` before a category's first image (a folder map fits there).
    """
    out = EvalResult()
    overall = new_group(bins)
    current: CategoryCollector | None = None

    def finish(col: CategoryCollector | None) -> None:
        if col is None or not col.groups:
            return
        blocks, total = col.blocks()
        out.categories[col.name] = blocks
        out.curves[col.name] = _curves(col.name, total, blocks["all"])
        overall.absorb(total)

    for item in items:
        if current is None or current.name != item.category:
            finish(current)
            current = CategoryCollector(item.category, bins)
            if before_category is not None:
                before_category(item.category, [i for i in items if i.category == item.category])
        error = None
        try:
            image = load_image(item.image)
            hw = image.shape[:2]
            gt = load_mask(item.mask) if item.mask is not None else np.zeros(hw, bool)
            if gt.shape != hw:
                raise ZsasError(f"{item.mask}: mask is {gt.shape[1]}x{gt.shape[0]} px but image "
                                f"{item.image} is {hw[1]}x{hw[0]} px")
            result = pipe.run(None, image, params, text_prompts=text_for(item.category))
            out.rows.append(current.add(item.rel, item.defect_class, item.is_anomalous, gt, result,
                                        params.tau))
        except ZsasError as exc:
            error = str(exc)
            out.failures.append((str(item.image), error))
        if on_image is not None:
            on_image(item, error)
    finish(current)
    if overall.rows:
        out.overall = overall.block()
        if len(out.categories) > 1:
            out.curves["overall"] = _curves("all categories", overall, out.overall)
    out.category_mean = _category_mean(out.categories)
    return out


def _curves(title: str, group: ClassGroup, block: dict) -> Curves:
    per = {}
    for p in PREDICTORS:
        acc = group.pixels[p]
        fpr, tpr, _ = acc.roc_curve()
        precision, recall, _ = acc.precision_recall_curve()
        pf, pp = acc.pro_curve()
        per[p] = {"roc": (fpr, tpr), "pr": (recall, precision), "pro": (pf, pp),
                  "metrics": block["predictors"][p]}
    return Curves(title, per)


def _category_mean(categories: dict[str, dict]) -> dict:
    mean: dict[str, dict[str, float | None]] = {}
    for p in PREDICTORS:
        mean[p] = {}
        for k in MEAN_KEYS:
            vals = [c["all"]["predictors"][p].get(k) for c in categories.values()]
            vals = [v for v in vals if v is not None]
            mean[p][k] = round(float(np.mean(vals)), 6) if vals else None
    return mean
