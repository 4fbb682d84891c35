"""What the window does when a folder pass (folder_map_job.py) installs a map: the file list's
scores and the open documents' follow the map in use, and the current image is computed again.

A mutual or references pass scores every image of the folder (:func:`show_scores`); going back
to the text map takes the folder map's scores away (:func:`forget_scores`: the list shows none
until an image is computed on the text map), so the Score column never ranks images of two maps
on one scale.
"""

from __future__ import annotations

from .lane_jobs import Request
from .models_state import ModelsState


def show_scores(c, scores: dict[str, float]) -> None:
    """``scores`` (image id -> score on the installed map) in the list and open documents."""
    for rel, score in scores.items():
        doc = c.docs.get(rel)
        if doc is not None:
            doc.image_score = score
        c.show_score(rel, score)


def forget_scores(c, file_list, rels) -> None:
    """No score for ``rels`` (their scores were the folder map's) until they are computed again."""
    for rel in rels:
        doc = c.docs.get(rel)
        if doc is not None:
            doc.image_score = None
        c.show_score(rel, None)
        file_list.clear_score(rel)


def refresh_current(c) -> None:
    """A new map is in use: the controller's current image gets its map computed again, and its
    automatic result while it is unreviewed with automatic points (a reviewed mask and
    hand-placed points stay; a good image is left as it is). Images ahead follow its result."""
    doc = c.doc
    if doc is None or c.image is None or not c.can_compute or doc.status == "good":
        return
    s = doc.state
    auto = s.auto and doc.status == "unreviewed" and c.models.state != ModelsState.HEATMAP_ONLY
    c.lane.submit(Request.make("refine" if auto else "features", doc.image_id, doc.revision, c.image_key,
                               c.image, s.params, s.text_prompts))
