"""Class text features for the normal/abnormal prompt ensembles (ALGORITHM.md §1).

Each sentence of :meth:`TextPrompts.sentences` is tokenised and encoded, L2-normalised, averaged
per class and L2-normalised again, giving a (2, D) float32 matrix (row 0 = normal, row 1 =
abnormal). Encoding a full ensemble (~250 sentences) takes 15-30 s on a small CPU, so results are
cached per ``(model_id, prompts.key())`` in a :class:`TextFeatureCache`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from .types import TextPrompts

DEFAULT_BATCH_SIZE = 64


def encode_class_features(model: Any, tokenizer: Callable, prompts: TextPrompts, device: Any,
                          batch_size: int = DEFAULT_BATCH_SIZE) -> torch.Tensor:
    """(2, D) float32 CPU tensor, rows normal/abnormal, each row unit length.

    ``model``: an ``open_clip.CLIP``-like object with ``encode_text(LongTensor (N, ctx))``;
    ``tokenizer``: list[str] -> LongTensor (N, ctx). Runs under ``torch.inference_mode()``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    rows = []
    with torch.inference_mode():
        for abnormal in (False, True):
            sentences = prompts.sentences(abnormal)
            total = None
            for start in range(0, len(sentences), batch_size):
                tokens = tokenizer(sentences[start:start + batch_size]).to(device)
                feats = F.normalize(model.encode_text(tokens).float(), dim=-1)
                part = feats.sum(dim=0)
                total = part if total is None else total + part
            rows.append(F.normalize(total / len(sentences), dim=-1).cpu())
    # clone outside inference mode: callers get ordinary tensors they may use anywhere
    return torch.stack(rows).clone()


class TextFeatureCache:
    """Thread-safe ``(model_id, prompts_key) -> (2, D)`` store. Entries are tiny (2 x D floats),
    so it is unbounded; :meth:`clear` empties it. One cache may be shared by several mappers."""

    def __init__(self):
        self._lock = threading.Lock()
        self._data: dict[tuple[str, str], torch.Tensor] = {}
        self.misses = 0

    def get_or_compute(self, model_id: str, prompts: TextPrompts,
                       compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The cached matrix for this key (a copy), computing it once under the lock if absent."""
        key = (model_id, prompts.key())
        with self._lock:
            hit = self._data.get(key)
            if hit is None:
                hit = compute()
                self._data[key] = hit
                self.misses += 1
            return hit.clone()

    def __contains__(self, key: tuple[str, str]) -> bool:
        with self._lock:
            return key in self._data

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
