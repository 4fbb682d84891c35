"""Dense V-V ("surgery") forward pass of an open_clip ViT (ALGORITHM.md §1, CLIP Surgery / AnomalyCLIP).

Two streams run side by side through ``visual.transformer.resblocks``:

- the *original* stream ``x`` is the model's own forward (``x = block(x)``), untouched, so the
  global/CLS embedding equals ``model.encode_image``;
- the *surgery* stream ``xs`` exists from block ``vv_start`` on. Before that block it is the same
  tensor as the original stream (it is initialised with the original stream's tokens at the input
  of block ``vv_start``, as CLIP Surgery does at the start of its dual path). At every block
  ``i >= vv_start`` it accumulates only the value-value attention output computed on
  ``ln_1`` of the original stream's input to that block::

      xs = xs + ls_1(out_proj(softmax(v vᵀ · head_dim^-0.5) v)),  v = ln_1(x_in) W_v + b_v

  (no MLP). A depth before ``vv_start`` would read the shared, not yet split stream: a plain
  CLIP token map, near "opposite" per the CLIP Surgery paper. The mapper therefore puts
  ``vv_start`` at or before the first tapped depth (:func:`default_vv_start`, ALGORITHM.md §1).

Only the standard open_clip ``VisionTransformer`` with ``ResidualAttentionBlock`` /
``nn.MultiheadAttention`` blocks is supported; :func:`check_supported` says why not otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class UnsupportedModelError(ValueError):
    """The CLIP model's vision tower has an architecture the surgery pass cannot handle."""


def check_supported(visual: nn.Module) -> None:
    """Raise :class:`UnsupportedModelError` unless ``visual`` is a plain open_clip ViT tower."""
    name = type(visual).__name__
    if not (hasattr(visual, "transformer") and hasattr(visual, "conv1") and hasattr(visual, "ln_post")):
        raise UnsupportedModelError(f"the dense V-V anomaly map needs an open_clip ViT vision tower, "
                                    f"got {name} (ResNet and timm towers are not supported)")
    if getattr(visual, "attn_pool", None) is not None:
        raise UnsupportedModelError("vision towers with attentional pooling (CoCa) are not supported")
    gh, gw = (int(g) for g in visual.grid_size)
    if gh != gw:
        raise UnsupportedModelError(f"the patch grid must be square, got {gh}x{gw}")
    for i, blk in enumerate(visual.transformer.resblocks):
        attn = getattr(blk, "attn", None)
        if not isinstance(attn, nn.MultiheadAttention) or not attn._qkv_same_embed_dim:
            raise UnsupportedModelError(f"block {i} is {type(blk).__name__} with attention "
                                        f"{type(attn).__name__}; only nn.MultiheadAttention "
                                        "with packed q/k/v is supported")
        if hasattr(blk, "ln_1_kv") or not hasattr(blk, "ln_1"):
            raise UnsupportedModelError(f"block {i} is not a pre-norm self-attention block")


def resolve_vv_start(vv_start: float | int, n_blocks: int) -> int:  # noqa: PYI041
    """Block index where the surgery stream starts.

    An ``int`` is a 0-based block index (negative counts from the end); a ``float`` in [0, 1) is
    the fraction of blocks *before* the surgery stream, rounded half up and clamped so that at
    least the last block has surgery (1/3 of 24 -> 8, of 12 -> 4, of 2 -> 1).
    """
    if isinstance(vv_start, bool):
        raise TypeError("vv_start must be an int block index or a float fraction, not bool")
    if isinstance(vv_start, int):
        idx = vv_start + n_blocks if vv_start < 0 else vv_start
        if not 0 <= idx < n_blocks:
            raise ValueError(f"vv_start {vv_start} is outside the {n_blocks} blocks")
        return idx
    frac = float(vv_start)
    if not 0.0 <= frac < 1.0:
        raise ValueError(f"a fractional vv_start must be in [0, 1), got {vv_start}")
    return min(math.floor(frac * n_blocks + 0.5), n_blocks - 1)


#: Default fraction of the blocks before the surgery stream: 1/6 (block 4 of 24, 0-based:
#: AnomalyCLIP's ``DPAM_layer = 20`` runs the last 20 of 24 blocks with V-V attention).
DEFAULT_VV_FRACTION = 1 / 6


def default_vv_start(n_blocks: int, depths: Sequence[int]) -> int:
    """The default ``vv_start``: 1/6 of the blocks (24 -> 4, 12 -> 2), moved earlier when needed
    so that every tapped depth is a surgery-stream map (3 blocks, depths (0, 1, 2) -> 0)."""
    return min(resolve_vv_start(DEFAULT_VV_FRACTION, n_blocks), min(depths))


def check_depths_after_vv_start(vv_start: int, depths: Sequence[int]) -> None:
    """Refuse depths before ``vv_start``: they would be plain CLIP token maps (ALGORITHM.md §1)."""
    early = [d for d in depths if d < vv_start]
    if early:
        raise ValueError(f"depths {early} come before vv_start {vv_start}: they would read plain CLIP "
                         f"tokens, not the surgery stream; choose vv_start <= {min(depths)} or later depths")


def default_depths(n_blocks: int, count: int = 4) -> tuple[int, ...]:
    """``count`` evenly spaced 0-based block indices ending at the last block.

    24 blocks -> (5, 11, 17, 23) (the papers' layers 6/12/18/24); 12 -> (2, 5, 8, 11);
    2 -> (0, 1); 1 -> (0,).
    """
    k = max(1, min(count, n_blocks))
    return tuple(math.floor((i + 1) * n_blocks / k + 0.5) - 1 for i in range(k))


def resolve_depths(depths: Sequence[int] | None, n_blocks: int) -> tuple[int, ...]:
    """Validate explicit depths (0-based, negatives count from the end) or pick the default."""
    if depths is None:
        return default_depths(n_blocks)
    out = []
    for d in depths:
        if isinstance(d, bool) or int(d) != d:
            raise ValueError(f"depths must be integer block indices, got {d!r}")
        i = int(d) + n_blocks if d < 0 else int(d)
        if not 0 <= i < n_blocks:
            raise ValueError(f"depth {d} is outside the {n_blocks} blocks")
        out.append(i)
    if not out or len(set(out)) != len(out):
        raise ValueError(f"depths must be a non-empty list of distinct blocks, got {list(depths)}")
    return tuple(sorted(out))


def _in_proj(attn: nn.MultiheadAttention, x: torch.Tensor, which: int) -> torch.Tensor:
    """One of the packed input projections (0 = q, 1 = k, 2 = v): (B, L, E) -> (B, L, E)."""
    e = attn.embed_dim
    w = attn.in_proj_weight[which * e:(which + 1) * e]
    b = None if attn.in_proj_bias is None else attn.in_proj_bias[which * e:(which + 1) * e]
    return F.linear(x, w, b)


def _heads(t: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, L, E) -> (B, heads, L, head_dim)."""
    b, n, e = t.shape
    return t.view(b, n, num_heads, e // num_heads).transpose(1, 2)


def _merge_out(attn: nn.MultiheadAttention, o: torch.Tensor) -> torch.Tensor:
    """(B, heads, L, head_dim) -> out_proj -> (B, L, E)."""
    b, h, n, d = o.shape
    return attn.out_proj(o.transpose(1, 2).reshape(b, n, h * d))


def qk_attention(attn: nn.MultiheadAttention, x_ln: torch.Tensor) -> torch.Tensor:
    """Manual re-implementation of ``attn(x, x, x)`` (no mask, eval): (B, L, E) -> (B, L, E).

    Exists to prove (in the tests) that the packed-weight split used by :func:`vv_attention`
    matches the module; not used by the surgery pass itself.
    """
    q, k, v = (_heads(_in_proj(attn, x_ln, i), attn.num_heads) for i in range(3))
    return _merge_out(attn, F.scaled_dot_product_attention(q, k, v))


def vv_attention(attn: nn.MultiheadAttention, x_ln: torch.Tensor) -> torch.Tensor:
    """Value-value self-attention: softmax(v vᵀ · head_dim^-0.5) v, then out_proj.

    ``x_ln``: (B, L, E) batch-first, already ``ln_1``-normalised. Returns (B, L, E).
    """
    v = _heads(_in_proj(attn, x_ln, 2), attn.num_heads)
    return _merge_out(attn, F.scaled_dot_product_attention(v, v, v))


def _run_block(blk: nn.Module, x: torch.Tensor, batch_first: bool) -> torch.Tensor:
    if batch_first:
        return blk(x)
    return blk(x.transpose(0, 1)).transpose(0, 1)


def surgery_forward(visual: nn.Module, pixels: torch.Tensor, vv_start: int,
                    depths: Sequence[int]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run both streams. Call under ``torch.inference_mode()``.

    ``pixels``: (B, 3, S, S) normalised, on the model's device/dtype. Returns ``(pooled, dense)``:
    ``pooled`` (B, D) the original stream's global embedding (``ln_post``/pool and ``proj``
    exactly as ``visual.forward``), not normalised; ``dense`` one (B, G*G, D) tensor per depth,
    surgery-stream patch tokens (CLS dropped) after ``ln_post`` and ``@ proj``, not normalised.
    Patch tokens are in row-major grid order (row = y).
    """
    blocks = visual.transformer.resblocks
    batch_first = bool(getattr(visual.transformer, "batch_first", True))
    wanted = set(depths)
    x = visual._embeds(pixels)                      # (B, 1 + G*G, width), after ln_pre
    xs = x
    taken: dict[int, torch.Tensor] = {}
    for i, blk in enumerate(blocks):
        if i >= vv_start:
            add = vv_attention(blk.attn, blk.ln_1(x))
            xs = xs + blk.ls_1(add)
        x_next = _run_block(blk, x, batch_first)
        if i < vv_start:
            xs = x_next
        x = x_next
        if i in wanted:
            taken[i] = xs[:, 1:]
    pooled, _ = visual._pool(x)
    if visual.proj is not None:
        pooled = pooled @ visual.proj
    dense = []
    for d in depths:
        t = visual.ln_post(taken[d])
        dense.append(t @ visual.proj if visual.proj is not None else t)
    return pooled, dense
