"""Patch features of one image for the folder maps (ALGORITHM.md §1b) and their neighbourhood
aggregation.

:class:`PatchFeatures` holds one feature map per backbone depth, all on one patch grid
(Gh x Gw, row = y) of the backbone's S x S input square, stored as float16 (half the memory of
float32; the distances are computed in float32 after aggregation, docs/decisions.md).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

#: Neighbourhood sides r (an r x r window of patches) of the aggregation (chosen, MuSc's LNAMD).
DEFAULT_RADII = (1, 3, 5)


@dataclass(frozen=True, eq=False)
class PatchFeatures:
    """``layers``: one (C_d, Gh, Gw) float16 CPU tensor per depth (channels may differ per depth,
    the grid does not), raw backbone activations (normalised later, after aggregation);
    ``grid``: (Gh, Gw); ``hw``: (H, W) of the source image; ``image_size``: the backbone's input
    side S; ``input_hw``: (h, w) of the backbone's input when it kept the image's aspect ratio
    (long side S), None for the S x S square (:attr:`frame_hw`)."""

    layers: tuple[torch.Tensor, ...]
    grid: tuple[int, int]
    hw: tuple[int, int]
    image_size: int
    input_hw: tuple[int, int] | None = None
    _fingerprint: list[str] = field(default_factory=list, repr=False)

    def __post_init__(self):
        if not self.layers:
            raise ValueError("patch features need at least one layer")
        for i, t in enumerate(self.layers):
            if t.ndim != 3 or tuple(t.shape[1:]) != tuple(self.grid):
                raise ValueError(f"layer {i} must be (C, {self.grid[0]}, {self.grid[1]}), "
                                 f"got {tuple(t.shape)}")
        if len(self.hw) != 2 or min(self.hw) < 1:
            raise ValueError(f"hw must be (H, W) with positive sides, got {self.hw}")

    @property
    def frame_hw(self) -> tuple[int, int]:
        """(h, w) of the model frame the patch grid covers."""
        return tuple(self.input_hw) if self.input_hw else (self.image_size, self.image_size)

    @property
    def nbytes(self) -> int:
        return sum(t.nelement() * t.element_size() for t in self.layers)

    @property
    def n_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def fingerprint(self) -> str:
        """Hash of the feature bytes: the same image through the same backbone gives the same
        fingerprint (how a folder map recognises the image itself among the others)."""
        if not self._fingerprint:
            h = hashlib.sha1()
            for t in self.layers:
                h.update(t.contiguous().numpy().tobytes())
            self._fingerprint.append(h.hexdigest())
        return self._fingerprint[0]

    def to_numpy_dict(self) -> dict[str, np.ndarray]:
        """Plain arrays for ``np.savez`` (load with ``allow_pickle=False``)."""
        out = {f"layer{i}": t.numpy() for i, t in enumerate(self.layers)}
        out.update(grid=np.asarray(self.grid, np.int64), hw=np.asarray(self.hw, np.int64),
                   image_size=np.asarray(self.image_size, np.int64),
                   input_hw=np.asarray(self.frame_hw, np.int64))
        return out

    @classmethod
    def from_numpy_dict(cls, d: Any) -> PatchFeatures:
        """Inverse of :meth:`to_numpy_dict`; ``ValueError`` on missing or inconsistent arrays
        (the caller treats it as a cache miss)."""
        keys = set(d.keys())
        if not {"grid", "hw", "image_size", "layer0"} <= keys:
            raise ValueError(f"patch features are missing arrays (have {sorted(keys)})")
        n = sum(1 for k in keys if k.startswith("layer"))
        layers = tuple(torch.from_numpy(np.array(d[f"layer{i}"], dtype=np.float16, copy=True))
                       for i in range(n))
        grid = np.asarray(d["grid"]).reshape(-1)
        hw = np.asarray(d["hw"]).reshape(-1)
        if grid.shape != (2,) or hw.shape != (2,):
            raise ValueError("grid and hw must hold 2 values each")
        frame = np.asarray(d["input_hw"]).reshape(-1) if "input_hw" in keys else None
        return cls(layers=layers, grid=(int(grid[0]), int(grid[1])), hw=(int(hw[0]), int(hw[1])),
                   image_size=int(np.asarray(d["image_size"])),
                   input_hw=None if frame is None else (int(frame[0]), int(frame[1])))


def aggregate(layer: torch.Tensor, r: int) -> torch.Tensor:
    """Neighbourhood aggregation of one depth: (C, Gh, Gw) -> (Gh*Gw, C) float32, unit length.

    Each patch becomes the mean of the r x r window of patches around it (edge windows average
    only the patches inside the grid), then is L2-normalised; r = 1 is the patch itself."""
    x = layer.float()[None]
    if r > 1:
        x = F.avg_pool2d(x, kernel_size=r, stride=1, padding=r // 2, count_include_pad=False)
    c = x.shape[1]
    return F.normalize(x[0].reshape(c, -1).T, dim=1)


def aggregated(feats: PatchFeatures, radii: tuple[int, ...],
               dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    """Every (depth, r) view of one image, depth-major order: ``len(layers) * len(radii)``
    tensors of unit rows computed in float32: (P, C_d) float32, or for a bfloat16 search
    (P, C_d + 1) bfloat16 ``[v, 1]`` (the bank form; :func:`as_query` turns it into a query)."""
    return [as_bank(aggregate(layer, r), dtype) for layer in feats.layers for r in radii]


def as_bank(view: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(P, C) float32 unit rows -> the bank form of a ``dtype`` search: itself for float32,
    (P, C + 1) bfloat16 ``[v, 1]`` for bfloat16 (see :func:`_similarities`)."""
    if dtype == torch.float32:
        return view
    return torch.cat([view, torch.ones(view.shape[0], 1)], dim=1).to(dtype)


def search_dtype(device: Any = "cpu") -> torch.dtype:
    """The dtype of the nearest-patch matrix products: bfloat16 on a GPU and on a CPU with native
    bfloat16 matrix units (AMX or AVX512-BF16: several times float32's speed), else float32.
    Decided by the hardware, never by a timing, so a machine always gives the same maps."""
    if torch.device(device).type == "cuda":
        return torch.bfloat16
    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        check = getattr(cpu, probe, None)
        if check is not None and check():
            return torch.bfloat16
    return torch.float32


def as_query(view: torch.Tensor) -> torch.Tensor:
    """A view from :func:`aggregated` in the form that is matched against others: float32 as it
    is; bfloat16 ``[v, 1]`` becomes ``[v, -1]`` (a copy), so ``query . bank = cos - 1``."""
    if view.dtype == torch.float32:
        return view
    q = view.clone()
    q[:, -1] = -1.0
    return q


def _similarities(query: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
    """(P, C') query form x (N, C') bank form -> (P, N) float32 cosine similarities. float32:
    exact. bfloat16: the product accumulates in float32 but its output is rounded to bfloat16, so
    it computes ``[q, -1] . [b, 1] = cos - 1`` (close to 0 for close patches, where 8 bits are
    fine relative to the distance) and adds 1 back in float32."""
    if query.dtype == torch.float32:
        return query @ bank.T
    return (query @ bank.T).float() + 1.0


def best_matches(query: torch.Tensor, bank: torch.Tensor, sizes: list[int]
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Best cosine similarities between the rows of ``query`` (P, C', :func:`as_query` form) and
    of ``bank`` (sum(sizes), C', :func:`aggregated` form), both of one dtype (float32, or bfloat16
    for a faster search, see :func:`_similarities`); ``bank`` holds the patches of ``len(sizes)`` images, one after the
    other. Returns ``rows`` (P, len(sizes)): each query row's best similarity in each image, and
    ``cols`` (sum(sizes),): each bank row's best similarity in ``query``; float32."""
    s = _similarities(query, bank)                                  # (P, sum sizes)
    if len(set(sizes)) == 1:
        rows = s.view(s.shape[0], len(sizes), sizes[0]).amax(dim=2)
    else:
        rows = torch.stack([part.amax(dim=1) for part in s.split(sizes, dim=1)], dim=1)
    return rows, s.amax(dim=0)


def nearest_distance(query: torch.Tensor, bank: torch.Tensor, chunk: int = 16384) -> torch.Tensor:
    """For each row of ``query`` (P, C', :func:`as_query` form) the Euclidean distance to its
    nearest row of ``bank`` (N, C', :func:`aggregated` form), one dtype (:func:`best_matches`). Returns
    (P,) float32. Works in chunks of ``chunk`` bank rows (memory P x chunk)."""
    best = torch.full((query.shape[0],), -2.0)
    for start in range(0, bank.shape[0], chunk):
        best = torch.maximum(best, _similarities(query, bank[start:start + chunk]).amax(dim=1))
    return sim_to_distance(best)


def sim_to_distance(sim: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of unit vectors -> their Euclidean distance sqrt(2 - 2 cos)."""
    return (2.0 - 2.0 * sim).clamp_min(0.0).sqrt()


def top_fraction_mean(values: np.ndarray, fraction: float = 0.01) -> float:
    """Mean of the largest ``fraction`` of ``values`` (at least one value): the image score."""
    flat = np.asarray(values, dtype=np.float32).reshape(-1)
    k = max(1, int(np.ceil(fraction * flat.size)))
    return float(np.partition(flat, flat.size - k)[flat.size - k:].mean())
