"""Class text features for the normal/abnormal prompt ensembles (ALGORITHM.md §1).

Each sentence of :meth:`TextPrompts.sentences` is tokenised and encoded, L2-normalised, averaged
per class and L2-normalised again, giving a (2, D) float32 matrix (row 0 = normal, row 1 =
abnormal). Encoding a full ensemble (~250 sentences) takes 15-30 s on a small CPU, so results are
cached per ``(model_id, prompts.key())`` in a :class:`TextFeatureCache`.

Speed: for the standard open_clip ``CLIP`` text tower (causal mask, argmax/EOT pooling) the
token sequences are cut after the longest sentence's end-of-text token before encoding. With a
causal mask, positions up to the EOT token never see the padding after it, so the result equals
``model.encode_text`` (checked by the tests) at ~5x less cost (ensemble sentences are ~13 tokens
of the 77-token context). Other towers go through ``model.encode_text`` unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ..types import TextPrompts

DEFAULT_BATCH_SIZE = 64


def encode_class_features(model: Any, tokenizer: Callable, prompts: TextPrompts, device: Any,
                          batch_size: int = DEFAULT_BATCH_SIZE) -> torch.Tensor:
    """(2, D) float32 CPU tensor, rows normal/abnormal, each row unit length.

    ``model``: an ``open_clip.CLIP``-like object with ``encode_text(LongTensor (N, ctx))``
    (see :func:`encode_text`);
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
                feats = F.normalize(encode_text(model, tokens).float(), dim=-1)
                part = feats.sum(dim=0)
                total = part if total is None else total + part
            rows.append(F.normalize(total / len(sentences), dim=-1).cpu())
    # clone outside inference mode: callers get ordinary tensors they may use anywhere
    return torch.stack(rows).clone()


def can_trim_context(model: Any) -> bool:
    """True for a standard open_clip ``CLIP`` text tower where trimming the context is exact."""
    mask = getattr(model, "attn_mask", None)
    pos = getattr(model, "positional_embedding", None)
    return (getattr(model, "text", None) is None                  # not CustomTextCLIP
            and getattr(model, "text_pool_type", None) == "argmax"
            and isinstance(mask, torch.Tensor) and mask.ndim == 2
            and isinstance(pos, torch.Tensor) and pos.ndim == 2 and mask.shape[0] == pos.shape[0]
            and all(hasattr(model, a) for a in ("token_embedding", "transformer", "ln_final",
                                                "text_projection")))


def encode_text(model: Any, tokens: torch.Tensor) -> torch.Tensor:
    """``model.encode_text(tokens)`` (N, D), computed on the context cut after the last EOT
    token when :func:`can_trim_context` (identical result, see the module doc).

    ``tokens``: LongTensor (N, ctx) with ctx = the model's context length.
    """
    if not can_trim_context(model) or tokens.shape[1] != model.positional_embedding.shape[0]:
        return model.encode_text(tokens)
    length = int(tokens.argmax(dim=-1).max()) + 1         # EOT has the highest token id
    text = tokens[:, :length]
    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(text).to(cast) + model.positional_embedding[:length].to(cast)
    x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
    x = model.ln_final(x)
    x = x[torch.arange(x.shape[0], device=x.device), text.argmax(dim=-1)]
    proj = model.text_projection
    if proj is None:
        return x
    return proj(x) if isinstance(proj, torch.nn.Module) else x @ proj


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
