"""The lane's units of work (immutable values made on the GUI thread) and the image cache key.

``Request``: an interactive computation for one document revision; ``PrefetchItem``: an image
to prepare ahead of the user; ``LoadModels``: load checkpoints and install a new pipeline.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.types import MethodParams, Prompts, TextPrompts

_serials = itertools.count(1)


def map_settings_of(item: Any):
    """The CLIP map's §1 settings a prefetch/precompute item asks for (None: the pipeline's own)."""
    params = getattr(item, "params", None)
    return params.clip_map if params is not None else None


def image_key_for(path: str | os.PathLike) -> str:
    """Cache key of an image file: path, size and modification time (cheap, no pixel hash)."""
    st = Path(path).stat()
    return f"{Path(path).resolve()}|{st.st_size}|{st.st_mtime_ns}"


@dataclass(frozen=True, eq=False)
class Request:
    """One unit of work for the lane. ``kind``: ``"refine"`` (features, then PPG if ``prompts`` is
    None, then the cascade) or ``"features"`` (heatmap only). ``image``: (H, W, 3) uint8 RGB,
    shared, never mutated by anyone (kept writable: torch warns on read-only arrays). ``prompts``: (x, y) image-pixel points, copied, or None for the automatic ones."""

    kind: str
    image_id: str
    revision: int
    image_key: str
    image: np.ndarray
    params: MethodParams
    text_prompts: TextPrompts
    prompts: Prompts | None = None
    serial: int = 0

    @classmethod
    def make(cls, kind: str, image_id: str, revision: int, image_key: str, image: np.ndarray,
             params: MethodParams, text_prompts: TextPrompts, prompts: Prompts | None = None) -> Request:
        if kind not in ("refine", "features"):
            raise ValueError(f"kind must be 'refine' or 'features', got {kind!r}")
        if prompts is not None:
            comps = None if prompts.components is None else prompts.components.copy()
            prompts = Prompts(prompts.points.copy(), prompts.labels.copy(), prompts.scores.copy(), comps)
        return cls(kind, image_id, revision, image_key, image, params, text_prompts, prompts, next(_serials))


@dataclass(frozen=True)
class PrefetchItem:
    """An image to prepare ahead; with ``params``, its automatic result too (ahead.py)."""

    image_id: str
    path: str
    text_prompts: TextPrompts
    params: MethodParams | None = None


@dataclass(frozen=True)
class LoadModels:
    clip: str | None
    sam: str | None
    device: str = "auto"
    precision: str = "auto"


def _same_work(a: Any, b: Request) -> bool:
    return (isinstance(a, Request) and a.kind == b.kind and a.image_id == b.image_id
            and a.revision == b.revision and a.text_prompts == b.text_prompts and a.params == b.params)


class _Cancelled(Exception):
    """Raised at a checkpoint of a job whose request was superseded or cancelled."""
