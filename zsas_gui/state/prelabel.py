"""One image's pre-label (``zsas label``, local or on a Ray cluster) into the project store.

Every pre-label goes through :func:`save_prelabel`, whichever process writes it, so the rules
live in one place: a reviewed image is never touched, the record is re-read from disk just
before writing (another process may have reviewed or labelled it since this one opened the
project), and the save is a compare-and-swap on the record's revision under the record's lock
(:meth:`Project.save` with ``expect_revision``): a review saved between the re-read and the
write makes the save refuse, never overwrite.
"""

from __future__ import annotations

from ..core.types import MethodParams, SegmentationResult, TextPrompts
from .project import Project, RecordConflictError


def save_prelabel(proj: Project, rel: str, result: SegmentationResult, params: MethodParams,
                  text: TextPrompts) -> bool:
    """Store ``result`` as the unreviewed automatic annotation of image ``rel``. Returns False
    (nothing written) when the stored record is no longer unreviewed."""
    rec = proj.load(rel)
    if rec.status != "unreviewed" or proj.problem_for(rel):   # reviewed meanwhile (app, another process)
        return False
    rec.mask = result.pred_mask
    rec.prompts = result.prompts
    rec.params, rec.text_prompts = params, text
    rec.image_score = float(result.anomaly.image_score)
    prov = {k: v for k, v in result.provenance.items() if k not in ("prompts", "text_prompts")}
    rec.provenance = {**prov, "mask_source": "auto", "gated": bool(result.gated)}
    try:
        proj.save(rec, expect_revision=rec.revision)
    except RecordConflictError:           # saved by someone else since the re-read: theirs stays
        return False
    return True
