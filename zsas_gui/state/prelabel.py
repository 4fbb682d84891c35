"""One image's pre-label (``zsas label``, local or on a Ray cluster) into the project store.

Every pre-label goes through :func:`save_prelabel`, whichever process writes it, so the rules
live in one place: a reviewed image is never touched, the record is re-read from disk just
before writing (another process may have reviewed or labelled it since this one opened the
project), and the save itself is the store's atomic save.
"""

from __future__ import annotations

from ..core.types import MethodParams, SegmentationResult, TextPrompts
from .project import Project


def save_prelabel(proj: Project, rel: str, result: SegmentationResult, params: MethodParams,
                  text: TextPrompts) -> bool:
    """Store ``result`` as the unreviewed automatic annotation of image ``rel``. Returns False
    (nothing written) when the stored record is no longer unreviewed."""
    rec = proj.load(rel)
    if rec.status != "unreviewed":        # reviewed meanwhile (in the app, another process): keep it
        return False
    rec.mask = result.pred_mask
    rec.prompts = result.prompts
    rec.params, rec.text_prompts = params, text
    rec.image_score = float(result.anomaly.image_score)
    prov = {k: v for k, v in result.provenance.items() if k not in ("prompts", "text_prompts")}
    rec.provenance = {**prov, "mask_source": "auto", "gated": bool(result.gated)}
    proj.save(rec)
    return True
