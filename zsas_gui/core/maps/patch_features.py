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


#: Patch distances (:func:`aggregate`): "cosine" compares unit-length features (their direction
#: only), "euclidean" the raw activations (direction and strength, PatchCore's measure for CNN
#: features). :func:`preferred_distance` picks one per backbone (docs/decisions.md D39).
DISTANCES = ("cosine", "euclidean")


def preferred_distance(backbone: Any) -> str:
    """The distance a backbone's patch features are compared with: its ``patch_distance``
    attribute (CNN stages: "euclidean"), else "cosine" (ViT tokens)."""
    return str(getattr(backbone, "patch_distance", "cosine"))


def aggregate(layer: torch.Tensor, r: int, distance: str = "cosine") -> torch.Tensor:
    """Neighbourhood aggregation of one depth: (C, Gh, Gw) -> (Gh*Gw, C) float32.

    Each patch becomes the mean of the r x r window of patches around it (edge windows average
    only the patches inside the grid); r = 1 is the patch itself. ``distance="cosine"``: then
    L2-normalised (unit rows); ``"euclidean"``: kept as it is."""
    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
    x = layer.float()[None]
    if r > 1:
        x = F.avg_pool2d(x, kernel_size=r, stride=1, padding=r // 2, count_include_pad=False)
    c = x.shape[1]
    rows = x[0].reshape(c, -1).T
    return F.normalize(rows, dim=1) if distance == "cosine" else rows.contiguous()


def aggregated(feats: PatchFeatures, radii: tuple[int, ...], dtype: torch.dtype = torch.float32,
               distance: str = "cosine") -> list[torch.Tensor]:
    """Every (depth, r) view of one image in the bank form of :func:`as_bank`, depth-major order:
    ``len(layers) * len(radii)`` tensors (P, C_d + 4) of ``dtype``, computed in float32."""
    return [as_bank(aggregate(layer, r, distance), dtype) for layer in feats.layers for r in radii]


def as_bank(view: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(P, C) float32 feature rows -> the bank form (P, C + 4) ``[v, hi, lo, 1, 1]`` in ``dtype``:
    ``v`` rounded to ``dtype``, ``hi + lo`` = the squared length of that rounded ``v`` (two
    ``dtype`` parts, so a bfloat16 search keeps it to 16 bits). With the query form of
    :func:`as_query` one matrix product gives minus the squared Euclidean distances between the
    rounded rows (see :func:`_neg_sq_distances`): rounding moves a distance by at most about
    2^-9 of the rows' length, never by the rounding of their squared lengths."""
    v = view.to(dtype)
    sq = v.float().pow(2).sum(dim=1, keepdim=True)
    hi = sq.to(dtype)
    lo = (sq - hi.float()).to(dtype)
    one = torch.ones_like(hi)
    return torch.cat([v, hi, lo, one, one], dim=1)


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


def as_query(bank: torch.Tensor) -> torch.Tensor:
    """A view in the bank form ``[v, hi, lo, 1, 1]`` -> the query form ``[2v, -1, -1, -hi, -lo]``
    (a copy, same dtype, exact): ``query . bank = 2 a.b - |b|^2 - |a|^2 = -|a - b|^2``."""
    q = torch.empty_like(bank)
    q[:, :-4] = 2 * bank[:, :-4]
    q[:, -4:-2] = -1.0
    q[:, -2:] = -bank[:, -4:-2]
    return q


def _neg_sq_distances(query: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
    """(P, C + 4) query form x (N, C + 4) bank form -> (P, N) float32 minus the squared Euclidean
    distances. One product, so the result is close to 0 for close patches: a bfloat16 product
    (float32 accumulation, output rounded to 8 bits) is then fine relative to the distance
    (docs/decisions.md D35, D39)."""
    return (query @ bank.T).float()


def best_matches(query: torch.Tensor, bank: torch.Tensor, sizes: list[int]
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest-patch distances between the rows of ``query`` (P, C + 4, :func:`as_query` form)
    and of ``bank`` (sum(sizes), C + 4, :func:`as_bank` form), both of one dtype (float32, or
    bfloat16 for a faster search); ``bank`` holds the patches of ``len(sizes)`` images, one after
    the other. Returns ``rows`` (P, len(sizes)): each query row's distance to its nearest patch
    in each image, and ``cols`` (sum(sizes),): each bank row's distance to its nearest query
    row; float32 Euclidean distances (of unit rows for the cosine distance)."""
    s = _neg_sq_distances(query, bank)                              # (P, sum sizes)
    if len(set(sizes)) == 1:
        rows = s.view(s.shape[0], len(sizes), sizes[0]).amax(dim=2)
    else:
        rows = torch.stack([part.amax(dim=1) for part in s.split(sizes, dim=1)], dim=1)
    return to_distance(rows), to_distance(s.amax(dim=0))


def pair_nearest(query: torch.Tensor, bank: torch.Tensor, with_index: bool = True
                 ) -> tuple[tuple[torch.Tensor, torch.Tensor | None], tuple[torch.Tensor, torch.Tensor | None]]:
    """Nearest patches both ways between two images' views, ``query`` (P, C + 4,
    :func:`as_query` form) and ``bank`` (N, C + 4, :func:`as_bank` form), one dtype. Returns
    ``(rows, cols)``: ``rows`` = (distance (P,) float32, index (P,) int64 into ``bank``) of each
    query row's nearest bank row, ``cols`` = the same (N,) for each bank row in ``query``; the
    indices are None without ``with_index``. Values by ``amax`` and indices by numpy's
    ``argmax`` (first maximum, like ``torch.max``): on a CPU both are vectorised, torch's
    ``max(dim=)`` with indices is not (6x slower on a 160 x 160 pair, most of a mutual pass)."""
    s = _neg_sq_distances(query, bank)
    rows, cols = to_distance(s.amax(dim=1)), to_distance(s.amax(dim=0))
    if not with_index:
        return (rows, None), (cols, None)
    if s.device.type != "cpu":                 # (the folder maps search on the CPU today)
        return (rows, s.argmax(dim=1)), (cols, s.argmax(dim=0))
    a = s.numpy()
    return (rows, torch.from_numpy(a.argmax(axis=1))), (cols, torch.from_numpy(a.argmax(axis=0)))


def nearest(query: torch.Tensor, bank: torch.Tensor, chunk: int = 16384) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row of ``query`` (P, C + 4, :func:`as_query` form) the Euclidean distance to its
    nearest row of ``bank`` (N, C + 4, :func:`as_bank` form), one dtype (:func:`best_matches`),
    and that row's index. Returns ((P,) float32, (P,) int64). Works in chunks of ``chunk`` bank
    rows (memory P x chunk)."""
    best = torch.full((query.shape[0],), -torch.inf)
    where = torch.zeros(query.shape[0], dtype=torch.int64)
    for start in range(0, bank.shape[0], chunk):
        v, i = _neg_sq_distances(query, bank[start:start + chunk]).max(dim=1)
        better = v > best
        best = torch.where(better, v, best)
        where = torch.where(better, i + start, where)
    return to_distance(best), where


def to_distance(neg_sq: torch.Tensor) -> torch.Tensor:
    """Minus squared distances (of :func:`_neg_sq_distances`) -> distances, float32 (rounding
    can make a tiny square negative: clamped at 0). Unit rows: sqrt(2 - 2 cos), in [0, 2]."""
    return (-neg_sq.float()).clamp_min(0.0).sqrt()


def top_fraction_mean(values: np.ndarray, fraction: float = 0.01) -> float:
    """Mean of the largest ``fraction`` of ``values`` (at least one value): the image score."""
    flat = np.asarray(values, dtype=np.float32).reshape(-1)
    k = max(1, int(np.ceil(fraction * flat.size)))
    return float(np.partition(flat, flat.size - k)[flat.size - k:].mean())
