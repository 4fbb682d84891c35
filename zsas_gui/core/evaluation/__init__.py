"""Evaluation against ground truth on an MVTec AD layout (the engine behind ``zsas eval``).

    items, problems = discover(root, category=None, categories=None, classes=None, limit=None)
    result = evaluate(pipe, items, params, text_for=lambda cat: TextPrompts(...))
    write_metrics_json(out / "metrics.json", result, meta); write_csv(...); write_plots(...)

See :mod:`.collect` for the three predictors and how blocks pool images, docs/metrics.md for the
metric definitions and error bounds.
"""

from .collect import PREDICTORS, ImageRow, predictor_outputs
from .dataset import GOOD, EvalItem, discover, find_categories, find_mask
from .report import format_table, write_csv, write_metrics_json, write_plots
from .run import EvalResult, category_object_name, evaluate

__all__ = [
    "GOOD", "PREDICTORS", "EvalItem", "EvalResult", "ImageRow", "category_object_name", "discover",
    "evaluate", "find_categories", "find_mask", "format_table", "predictor_outputs", "write_csv",
    "write_metrics_json", "write_plots",
]
