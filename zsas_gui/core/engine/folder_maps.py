"""The folder pass of the folder maps (ALGORITHM.md §1b): patch features of every image of a
folder (or of the good references) through the pipeline's caches, then the mapper's fit.

    for stage, done, total in iter_fit_folder(pipe, paths): ...   # cancellable between steps
"""

from __future__ import annotations

import os
from collections.abc import Generator, Sequence

from ..io.imageio import load_image


def iter_fit_folder(pipe, paths: Sequence[str | os.PathLike], mapper=None
                    ) -> Generator[tuple[str, int, int], None, None]:
    """Fit ``mapper`` (None: ``pipe.mapper``; mutual: on the folder; references: on the good
    images) on the images at ``paths``, their features through the pipeline's caches. Yields ``("features", done, total)`` per image encoded and ``("scoring", done,
    total)`` per image scored: each is a cancellation point (closing the generator leaves the
    mapper as it was). An unreadable image raises its :class:`ZsasError` naming the file."""
    mapper = pipe.mapper if mapper is None else mapper
    total = len(paths)
    feats = []
    for i, path in enumerate(paths):
        yield "features", i, total
        feats.append(pipe.image_tokens(None, load_image(path), mapper))
    yield "features", total, total
    for done in mapper.iter_fit(feats):
        yield "scoring", done, total


def fit_folder(pipe, paths: Sequence[str | os.PathLike], on_step=None) -> None:
    """:func:`iter_fit_folder` to its end; ``on_step(stage, done, total)`` after each step."""
    for step in iter_fit_folder(pipe, paths):
        if on_step is not None:
            on_step(*step)
