"""The folder pass of the folder maps (ALGORITHM.md §1b): patch features of every image of a
folder (or of the good references) through the pipeline's caches, then the mapper's fit.

    for stage, done, total in iter_fit_folder(pipe, paths): ...   # cancellable between steps
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Sequence
from typing import Any

import numpy as np

from ..errors import ZsasError
from ..io.imageio import load_image


def iter_fit_folder(pipe, paths: Sequence[str | os.PathLike], unreadable: list[str] | None = None,
                    read: Callable[[Any], np.ndarray] = load_image, mapper=None
                    ) -> Generator[tuple[str, int, int], None, None]:
    """Fit ``mapper`` (None: ``pipe.mapper``; mutual: on the folder; references: on the good
    images) on the images at ``paths``, their features through the pipeline's caches. Yields
    ``("features", done, total)`` per image encoded and ``("scoring", done, total)`` per image
    scored: each is a cancellation point (closing the generator leaves the mapper as it was).
    An unreadable image raises its :class:`ZsasError` naming the file; with an ``unreadable``
    list it is left out of the fit and its message appended there instead.
    ``read(path)`` -> (H, W, 3) uint8 RGB reads an image (default: a local file)."""
    mapper = pipe.mapper if mapper is None else mapper
    total = len(paths)
    feats = []
    for i, path in enumerate(paths):
        yield "features", i, total
        try:
            image = read(path)
        except ZsasError as exc:
            if unreadable is None:
                raise
            unreadable.append(str(exc))
            continue
        feats.append(pipe.image_tokens(None, image, mapper))
    yield "features", total, total
    if not feats:
        raise ZsasError(f"no readable image among the {total} of the folder pass: "
                        + "; ".join(unreadable or []))
    for done in mapper.iter_fit(feats):
        yield "scoring", done, total


def fit_folder(pipe, paths: Sequence[str | os.PathLike], on_step=None,
               unreadable: list[str] | None = None, read: Callable[[Any], np.ndarray] = load_image) -> None:
    """:func:`iter_fit_folder` to its end; ``on_step(stage, done, total)`` after each step."""
    for step in iter_fit_folder(pipe, paths, unreadable, read):
        if on_step is not None:
            on_step(*step)
