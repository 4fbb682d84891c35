"""Groups of a folder-map job on Ray (``--map mutual``): the mutual map compares each image with
the other images of its folder, so the images travel to the actors in groups — by folder, each
folder cut into near-equal runs of at most ``max_others + 1`` images (every image still meets up
to ``max_others`` others, as in the local run) — and each group is fitted and segmented inside
one actor. A folder that fits in one group gives the local run's maps exactly.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Sequence


def folder_of(src: str) -> str:
    """The folder of an image path or URI (``s3://b/x/1.png`` -> ``s3://b/x``)."""
    return posixpath.dirname(src.replace("\\", "/"))


def folder_groups(srcs: Sequence[str], max_size: int, min_size: int = 1) -> list[list[int]]:
    """Indices into ``srcs`` grouped by folder (folders in first-seen order, images in list
    order), each folder split into ``ceil(n / max_size)`` consecutive runs of near-equal size.
    Folders of fewer than ``min_size`` images are pooled into one group (which joins the last
    group when it is still too small): a mutual map needs a few images to compare."""
    if not 1 <= min_size <= max_size:
        raise ValueError(f"need 1 <= min_size <= max_size, got {min_size}, {max_size}")
    folders: dict[str, list[int]] = {}
    for i, src in enumerate(srcs):
        folders.setdefault(folder_of(src), []).append(i)
    small = [i for members in folders.values() if len(members) < min_size for i in members]
    groups = []
    for members in [m for m in folders.values() if len(m) >= min_size] + ([small] if small else []):
        parts = math.ceil(len(members) / max_size)
        size, extra = divmod(len(members), parts)
        start = 0
        for p in range(parts):
            end = start + size + (p < extra)
            groups.append(members[start:end])
            start = end
    if len(groups) > 1 and len(groups[-1]) < min_size:
        small_last = groups.pop()
        groups[-1] = groups[-1] + small_last
    return groups
