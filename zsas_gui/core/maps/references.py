"""The ``references`` map (ALGORITHM.md §1b): few-shot, each image scored against a memory bank
of patch features from good images (PatchCore / AnomalyDINO / WinCLIP+ family; our own code).

``score(p)`` = distance from p's feature to the nearest bank feature, per (depth, r) view,
with ``density`` (the default) divided by that bank feature's spread (its distance to the nearest
bank feature of another reference, against at most ``DENSITY_MAX_REFS`` others; :mod:`.density`),
averaged over the views. Above ``max_bank`` patches the bank is thinned by a greedy k-center
coreset (chosen: 100k), picked in ``CORESET_ROUNDS`` batches on a seeded random projection
(the exact one-at-a-time greedy costs hours on a CPU at this size). An image that is itself a
reference is scored against the other references only. Calibration: leave-one-out scores of the
references (the highest of them: they are known good).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any

import numpy as np
import torch

from ..errors import ZsasError
from .density import Spreads, floor_all, relative
from .folder_select import DEFAULT_MAX_OTHERS
from .patch_features import (
    DEFAULT_RADII,
    PatchFeatures,
    aggregate,
    aggregated,
    as_bank,
    as_query,
    nearest,
)
from .patch_mapper import PatchMapper, check_same_backbone

DEFAULT_MAX_BANK = 100_000   # patches (chosen)
CORESET_ROUNDS = 100
CORESET_DIM = 128
#: Other references a bank row's spread is measured against (as the mutual map's max_others: on
#: magnetic_tile 16 of 19 cost 0.017 pixel AUROC against all 19).
DENSITY_MAX_REFS = DEFAULT_MAX_OTHERS


def coreset_indices(x: torch.Tensor, k: int, seed: int = 0) -> torch.Tensor:
    """Indices of ``k`` rows of ``x`` (N, C) float32 spread over the feature space: greedy
    k-center (farthest point first) on a seeded Gaussian projection to ``CORESET_DIM``, taking
    ``ceil(k / CORESET_ROUNDS)`` farthest points per round. Returns (k,) int64, sorted."""
    n = x.shape[0]
    if k >= n:
        return torch.arange(n)
    g = torch.Generator().manual_seed(seed)
    proj = x @ torch.randn(x.shape[1], min(CORESET_DIM, x.shape[1]), generator=g)
    chosen = torch.zeros(n, dtype=torch.bool)
    first = int(torch.randint(n, (1,), generator=g))
    chosen[first] = True
    dist = ((proj - proj[first]) ** 2).sum(dim=1)
    per_round = max(1, -(-k // CORESET_ROUNDS))
    count = 1
    while count < k:
        take = min(per_round, k - count)
        new = dist.masked_fill(chosen, -1.0).topk(take).indices
        chosen[new] = True
        count += take
        for start in range(0, len(new), 256):
            d_new = torch.cdist(proj, proj[new[start:start + 256]]).pow(2).min(dim=1).values
            dist = torch.minimum(dist, d_new)
    return chosen.nonzero()[:, 0]


class ReferenceMapper(PatchMapper):
    """Few-shot folder map from good references. :meth:`fit` (or :meth:`iter_fit`) takes the
    references' features; ``max_bank``: coreset above this many patches; ``seed``: coreset seed;
    ``distance``, ``density``: as :class:`.mutual.MutualMapper` (the spreads need at least two
    references; with one, plain distances)."""

    kind = "references"

    def __init__(self, backbone: Any, radii: tuple[int, ...] = DEFAULT_RADII,
                 max_bank: int = DEFAULT_MAX_BANK, seed: int = 0, blur_sigma_518: float = 4.0,
                 absolute: bool = False, search: str = "auto", distance: str = "auto",
                 density: bool = True):
        super().__init__(backbone, radii, blur_sigma_518, absolute, search, distance, density)
        if max_bank < 1:
            raise ValueError(f"max_bank must be >= 1, got {max_bank}")
        self.max_bank, self.seed = int(max_bank), int(seed)
        self.references: list[PatchFeatures] = []
        self._bank: list[torch.Tensor] = []      # per view (N, C_v + 4) bank form, the search dtype
        self._owner = torch.empty(0, dtype=torch.int64)   # (N,) reference index of each bank row
        self._spread: Spreads | None = None               # (V, N) spreads of the bank rows
        self._index: dict[str, int] = {}

    def _state(self) -> tuple:
        return (*super()._state(), self.max_bank, self.seed,
                tuple(f.fingerprint for f in self.references))

    @property
    def bank_patches(self) -> int:
        return int(self._owner.shape[0])

    def info(self) -> dict[str, Any]:
        return {**super().info(), "references": len(self.references),
                "bank_patches": self.bank_patches, "max_bank": self.max_bank, "seed": self.seed}

    def iter_fit(self, refs: Sequence[PatchFeatures],
                 on_progress: Callable[[int, int], None] | None = None) -> Generator[int, None, None]:
        """Build the bank (yields references done: a cancellation point; an abandoned pass leaves
        the mapper as it was), then calibrate on leave-one-out scores of the references."""
        refs = list(refs)
        if not refs:
            raise ValueError("the references map needs at least one good image")
        for f in refs[1:]:
            check_same_backbone(f, refs[0], "references map")
        per_view: list[list[torch.Tensor]] = []
        owners = []
        with torch.inference_mode():
            for i, f in enumerate(refs):
                per_view.append([aggregate(layer, r, self.distance) for layer in f.layers for r in self.radii])
                owners.append(torch.full((f.n_patches,), i, dtype=torch.int64))
                yield i + 1
            bank = [torch.cat(v) for v in zip(*per_view, strict=True)]
            owner = torch.cat(owners)
            if owner.shape[0] > self.max_bank:
                keep = coreset_indices(bank[len(bank) // 2], self.max_bank, self.seed)
                bank, owner = [b[keep] for b in bank], owner[keep]
        self.references = refs
        self._bank, self._owner = [as_bank(b, self.search).clone() for b in bank], owner.clone()
        self._spread = self._spreads(len(refs)) if self.density and len(refs) >= 2 else None
        self._index = {f.fingerprint: i for i, f in enumerate(refs)}
        self.pixel_level = self.image_level = None
        if len(refs) >= 2:
            self.calibrate([self.score_grid(f) for f in refs], [f.frame_hw for f in refs], how="max")

    def score_grid(self, tokens: PatchFeatures) -> np.ndarray:
        """(Gh, Gw) float32: mean over views of the nearest-bank-patch distance."""
        if not self.references:
            raise RuntimeError("the references map has no good images yet: fit it first")
        check_same_backbone(tokens, self.references[0], "references map")
        own = self._index.get(tokens.fingerprint)
        rows = None if own is None else (self._owner != own)
        if rows is not None and not bool(rows.any()):
            raise ZsasError("this image is the only good reference of the map, and it cannot be scored "
                            "against itself: mark (or give in --references) another good image")
        with torch.inference_mode():
            views = [as_query(v) for v in aggregated(tokens, self.radii, self.search, self.distance)]
            total = torch.zeros(tokens.n_patches)
            for v, (q, bank) in enumerate(zip(views, self._bank, strict=True)):
                dist, index = nearest(q, bank if rows is None else bank[rows])
                if self._spread is not None:
                    spread = self._spread.excluding(own)[v]
                    dist = relative(dist[None], index[None], (spread if rows is None else spread[rows])[None])[0]
                total += dist
        return (total / len(views)).reshape(tokens.grid).numpy().astype(np.float32)

    def _spreads(self, n_refs: int) -> Spreads:
        """Spreads of the bank rows: their distances to the nearest bank row of each other
        reference (at most ``DENSITY_MAX_REFS`` others, a seeded subset per reference), floored."""
        rng = np.random.default_rng([self.seed, n_refs])
        n_views = len(self._bank)
        first = torch.zeros(n_views, self.bank_patches)
        owner = torch.zeros(n_views, self.bank_patches, dtype=torch.int64)
        second = torch.zeros(n_views, self.bank_patches)
        with torch.inference_mode():
            for k in range(n_refs):
                mine = self._owner == k
                others = [j for j in range(n_refs) if j != k and bool((self._owner == j).any())]
                if not bool(mine.any()) or not others:
                    continue
                if len(others) > DENSITY_MAX_REFS:
                    others = sorted(rng.choice(others, size=DENSITY_MAX_REFS, replace=False).tolist())
                dists = torch.stack([torch.stack([nearest(as_query(bank[mine]), bank[self._owner == j])[0]
                                                  for bank in self._bank]) for j in others])
                s = Spreads.from_distances(dists, others)
                first[:, mine], owner[:, mine], second[:, mine] = s.first, s.owner, s.second
        return floor_all([Spreads(first, owner, second)])[0]
