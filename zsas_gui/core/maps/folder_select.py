"""Which heatmap source a run uses (``--map``, the app's "heatmap from" selector) and building
the folder mappers (ALGORITHM.md §1b).

``auto``: ``references`` when good images exist, else ``mutual`` for a folder of at least
:data:`MIN_FOLDER` images. Light to import
(no torch): the CLI's help reads the choices, else ``text``.
"""

from __future__ import annotations

from typing import Any

from ..errors import ZsasError

MIN_FOLDER = 3              # fewer images than this: no mutual map (auto falls back to text)
DEFAULT_MAX_OTHERS = 64     # other images each image is compared with (chosen)
MAP_KINDS = ("text", "mutual", "references", "auto")


def resolve_map_kind(kind: str, n_references: int, n_folder: int) -> str:
    """The concrete source (text, mutual or references) for ``kind`` given how many good images
    and folder images there are; a user error when the asked source cannot work."""
    if kind not in MAP_KINDS:
        raise ZsasError(f"--map {kind!r}: choose one of {', '.join(MAP_KINDS)}")
    if kind == "auto":
        if n_references > 0:
            return "references"
        return "mutual" if n_folder >= MIN_FOLDER else "text"
    if kind == "references" and n_references == 0:
        raise ZsasError("--map references needs good images: give --references DIR (or mark "
                        "images good; zsas eval uses ROOT/train/good)")
    if kind == "mutual" and n_folder < MIN_FOLDER:
        raise ZsasError(f"--map mutual compares the images of a folder with each other: it needs "
                        f"at least {MIN_FOLDER} images, got {n_folder}")
    return kind


def make_folder_mapper(kind: str, backbone: Any, max_others: int = DEFAULT_MAX_OTHERS,
                       absolute: bool = False, seed: int = 0, rerank: bool = False,
                       text_mapper: Any = None, text_weight: float = 0.0, distance: str = "auto",
                       density: bool = True):
    """A :class:`.mutual.MutualMapper` or :class:`.references.ReferenceMapper` on ``backbone``
    (not fitted yet). ``text_weight`` > 0 (references only; off by default) fuses the references
    map with ``text_mapper``'s text map (:class:`.text_fusion.TextFusedMapper`). ``distance``
    (``auto``: the backbone's, decisions D39) and ``density`` (distances relative to the local
    spread, D40) go to the mapper."""
    from .mutual import MutualMapper
    from .references import ReferenceMapper

    if text_weight and kind != "references":
        raise ValueError(f"text fusion is offered for the references map only, not {kind!r}")
    if kind == "mutual":
        return MutualMapper(backbone, max_others=max_others, seed=seed, rerank=rerank,
                            absolute=absolute, distance=distance, density=density)
    if kind == "references":
        mapper = ReferenceMapper(backbone, seed=seed, absolute=absolute, distance=distance,
                                 density=density)
        if not text_weight:
            return mapper
        if text_mapper is None:
            raise ValueError("fusing the references map with the text map needs a text mapper")
        from .text_fusion import TextFusedMapper

        return TextFusedMapper(mapper, text_mapper, text_weight)
    raise ValueError(f"no folder mapper for {kind!r}")
