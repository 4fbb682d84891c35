"""The ``mutual`` map (ALGORITHM.md §1b): zero-shot, each image scored against the other images
of its folder (after MuSc, ICLR 2024; our own code).

For patch p of image i and each other image j: ``d_j(p)`` = distance from p's feature to the
closest patch feature of j, per (depth, r) view. ``score(p)`` = mean of the smallest
``fraction`` of ``{d_j(p)}`` over j (an interval average: a defect repeated in a few images still
scores), averaged over the views. With ``density`` (the default) each ``d_j(p)`` is first
divided by the spread of p's nearest patch in j (:mod:`.density`). Each image meets at most
``max_others`` others (a seeded random subset beyond that). A folder pass computes every pair
once and uses it both ways.

Re-ranking (optional, ``rerank=True``): each image score is averaged with the scores of its
``RERANK_K`` most similar images (global descriptor: mean of the deepest features), weighted by
similarity, so a normal image that merely looks unusual is pulled toward its look-alikes (our
simple reading of MuSc's RsCIN).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .density import Spreads, floor_all, relative
from .folder_select import DEFAULT_MAX_OTHERS
from .patch_features import (
    DEFAULT_RADII,
    PatchFeatures,
    aggregated,
    as_query,
    pair_nearest,
    top_fraction_mean,
)
from .patch_mapper import IMAGE_TOP_FRACTION, PatchMapper, check_same_backbone

DEFAULT_FRACTION = 0.3      # the interval: smallest 30 % of the per-image distances (chosen)
RERANK_K = 5


def choose_others(n: int, max_others: int, seed: int) -> list[list[int]]:
    """For each of ``n`` images the indices of the images it is compared with: all others, or a
    seeded random subset of ``max_others`` of them (sorted). Deterministic for (n, seed)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        others = [j for j in range(n) if j != i]
        if len(others) > max_others:
            others = sorted(int(j) for j in rng.choice(others, size=max_others, replace=False))
        out.append(others)
    return out


def interval_mean(dists: torch.Tensor, fraction: float) -> torch.Tensor:
    """``dists``: (M, V, P) distances to M other images per view -> (P,) float32: per view the
    mean of the smallest ``max(1, ceil(fraction * M))`` over M, then the mean over views."""
    m = dists.shape[0]
    k = max(1, math.ceil(fraction * m))
    smallest = dists.float().topk(k, dim=0, largest=False).values
    return smallest.mean(dim=0).mean(dim=0)


Pair = tuple[torch.Tensor, torch.Tensor]     # (V, P) float16 distances, (V, P) int indices


def _pair_nearest(a: list[torch.Tensor], b: list[torch.Tensor], with_index: bool = True) -> tuple[Pair, Pair]:
    """Views of two images (V tensors each: ``a`` in :func:`.patch_features.as_query` form, ``b``
    as :func:`.patch_features.aggregated` gives them) -> (a's patches in b, b's patches in a):
    each the (V, P) float16 distance to the nearest patch of the other image and that patch's
    (V, P) index (int16 when it fits; None without ``with_index``). One product per view and pair: on a CPU this beats
    stacking several images into one product, which spends its gain on copying them."""
    rows, cols = zip(*(pair_nearest(va, vb, with_index) for va, vb in zip(a, b, strict=True)), strict=True)
    return _stack(rows, b[0].shape[0]), _stack(cols, a[0].shape[0])


def _stack(per_view, n_other: int) -> Pair:
    dists, index = zip(*per_view, strict=True)
    small = torch.int16 if n_other <= torch.iinfo(torch.int16).max else torch.int32
    stacked = None if index[0] is None else torch.stack(index).to(small)
    return torch.stack(dists).to(torch.float16), stacked


def _scores(pairs: list[Pair], spreads: list[Spreads] | None, fraction: float,
            own: int | None = None) -> torch.Tensor:
    """One image's (V, P) pairs with its M others (and the others' spreads, or None for plain
    distances; ``own``: this image's folder index, never used in the others' spreads) -> (P,)
    float32 interval-averaged scores."""
    if spreads is None:
        dists = torch.stack([d.float() for d, _ in pairs])
    else:
        dists = torch.stack([relative(d, i, s.excluding(own)) for (d, i), s in zip(pairs, spreads, strict=True)])
    return interval_mean(dists, fraction)


class _Views:
    """Aggregated views of the folder's images, computed on demand and kept up to ``budget``
    bytes (oldest first out): the folder pass revisits each image many times."""

    def __init__(self, feats: Sequence[PatchFeatures], radii: tuple[int, ...], budget: int = 256 << 20,
                 dtype: torch.dtype = torch.float32, distance: str = "cosine"):
        self.feats, self.radii, self.budget, self.dtype = feats, radii, budget, dtype
        self.distance = distance
        self._kept: dict[int, list[torch.Tensor]] = {}
        self._bytes = 0

    def __getitem__(self, i: int) -> list[torch.Tensor]:
        v = self._kept.pop(i, None)          # re-inserted below: least recently used goes first
        if v is not None:
            self._kept[i] = v
        else:
            v = aggregated(self.feats[i], self.radii, self.dtype, self.distance)
            size = sum(t.nelement() * t.element_size() for t in v)
            while self._kept and self._bytes + size > self.budget:
                old = self._kept.pop(next(iter(self._kept)))
                self._bytes -= sum(t.nelement() * t.element_size() for t in old)
            self._kept[i] = v
            self._bytes += size
        return v


def iter_score_folder(feats: Sequence[PatchFeatures], radii: tuple[int, ...] = DEFAULT_RADII,
                      fraction: float = DEFAULT_FRACTION, max_others: int = DEFAULT_MAX_OTHERS,
                      seed: int = 0, search: torch.dtype = torch.float32, distance: str = "cosine",
                      density: bool = False
                      ) -> Generator[int, None, tuple[list[np.ndarray], list[Spreads] | None]]:
    """Mutual scores of every image of a folder. Yields the number of images whose pairs are
    done (a cancellation point); returns (one (Gh, Gw) float32 patch score grid per image, the
    images' spreads or None without ``density``). ``search``: dtype of the matrix
    products (:func:`.patch_features.best_matches`); ``distance``: "cosine" or "euclidean"
    (:func:`.patch_features.aggregate`); ``density``: divide by the spreads (:mod:`.density`).
    Holds every pair's (V, P) distances and indices until the end (the spreads need them all)."""
    n = len(feats)
    if n < 2:
        raise ValueError(f"a mutual map needs at least 2 images, got {n}")
    for f in feats[1:]:
        check_same_backbone(f, feats[0], "mutual map")
    others = choose_others(n, max_others, seed)
    wanted = [set(o) for o in others]
    views = _Views(feats, radii, dtype=search, distance=distance)
    near: dict[tuple[int, int], Pair] = {}        # (i, j) -> i's patches' nearest in j
    with torch.inference_mode():
        for i in range(n):
            query = [as_query(v) for v in views[i]]
            for j in others[i]:
                if (i, j) not in near:
                    near[i, j], cols = _pair_nearest(query, views[j], density)
                    if i in wanted[j]:
                        near[j, i] = cols
            yield i + 1
        spreads = None
        if density:
            spreads = floor_all([Spreads.from_distances(torch.stack([near[j, k][0] for k in others[j]]), others[j])
                                 for j in range(n)])
        grids = []
        for i in range(n):
            pairs = [near.pop((i, j)) for j in others[i]]
            score = _scores(pairs, None if spreads is None else [spreads[j] for j in others[i]], fraction, i)
            grids.append(score.reshape(feats[i].grid).numpy().astype(np.float32))
    return grids, spreads


def score_against(query: PatchFeatures, others: Sequence[PatchFeatures], radii: tuple[int, ...],
                  fraction: float, search: torch.dtype = torch.float32, distance: str = "cosine",
                  spreads: Sequence[Spreads] | None = None) -> np.ndarray:
    """Mutual scores of one image against ``others`` (it is not one of them; ``spreads``: theirs
    from the folder pass, or None for plain distances): (Gh, Gw) float32."""
    with torch.inference_mode():
        q = [as_query(v) for v in aggregated(query, radii, search, distance)]
        pairs = [_pair_nearest(q, aggregated(o, radii, search, distance), spreads is not None)[0]
                 for o in others]
        score = _scores(pairs, None if spreads is None else list(spreads), fraction)
        return score.reshape(query.grid).numpy().astype(np.float32)


def _descriptor(f: PatchFeatures) -> torch.Tensor:
    return F.normalize(f.layers[-1].float().mean(dim=(1, 2)), dim=0)


def rerank_scores(raw: np.ndarray, feats: Sequence[PatchFeatures], k: int = RERANK_K) -> np.ndarray:
    """(N,) raw image scores -> (N,) re-ranked: half the own score, half the similarity-weighted
    mean of the k most similar other images' scores."""
    n = len(raw)
    if n < 3:
        return raw.copy()
    d = torch.stack([_descriptor(f) for f in feats])
    sim = (d @ d.T).fill_diagonal_(-math.inf)
    k = min(k, n - 1)
    top = sim.topk(k, dim=1)
    w = torch.softmax(top.values / 0.1, dim=1).numpy()
    neigh = (w * raw[top.indices.numpy()]).sum(axis=1)
    return 0.5 * raw + 0.5 * neigh


class MutualMapper(PatchMapper):
    """Zero-shot folder map. :meth:`fit` (or :meth:`iter_fit`) takes the folder's features; an
    image of the folder is then scored against the others, any other image against the folder.
    ``fraction``: interval (0 = only the nearest image: the plain baseline); ``max_others``;
    ``seed``: the subset's seed; ``rerank``: re-rank image scores across the folder;
    ``search``: dtype of the nearest-patch products, ``"auto"`` (:func:`.patch_features.search_dtype`),
    ``"float32"`` or ``"bfloat16"``; ``distance``: ``"auto"`` (the backbone's,
    :func:`.patch_features.preferred_distance`), ``"cosine"`` or ``"euclidean"``; ``density``:
    distances relative to the spread of normal patches (:mod:`.density`; the plain baseline
    turns it off)."""

    kind = "mutual"

    def __init__(self, backbone: Any, radii: tuple[int, ...] = DEFAULT_RADII,
                 fraction: float = DEFAULT_FRACTION, max_others: int = DEFAULT_MAX_OTHERS,
                 seed: int = 0, rerank: bool = False, blur_sigma_518: float = 4.0,
                 absolute: bool = False, search: str = "auto", distance: str = "auto",
                 density: bool = True):
        super().__init__(backbone, radii, blur_sigma_518, absolute, search, distance, density)
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction must be in [0, 1], got {fraction}")
        if max_others < 1:
            raise ValueError(f"max_others must be >= 1, got {max_others}")
        self.fraction, self.max_others, self.seed = float(fraction), int(max_others), int(seed)
        self.rerank = bool(rerank)
        self.folder: list[PatchFeatures] = []
        self._grids: dict[str, np.ndarray] = {}
        self._spreads: list[Spreads] | None = None    # per folder image
        self._scores: dict[str, float] = {}     # fingerprint -> re-ranked raw image score

    def _state(self) -> tuple:
        return (*super()._state(), self.fraction, self.max_others, self.seed, self.rerank,
                tuple(f.fingerprint for f in self.folder))

    def info(self) -> dict[str, Any]:
        return {**super().info(), "fraction": self.fraction, "max_others": self.max_others,
                "seed": self.seed, "rerank": self.rerank, "folder_images": len(self.folder),
                "others_per_image": min(self.max_others, max(0, len(self.folder) - 1))}

    def iter_fit(self, feats: Sequence[PatchFeatures],
                 on_progress: Callable[[int, int], None] | None = None) -> Generator[int, None, None]:
        """Score the whole folder (yields images done: a cancellation point; an abandoned pass
        leaves the mapper as it was) and calibrate on it (median: most images are normal)."""
        feats = list(feats)
        grids, spreads = yield from iter_score_folder(feats, self.radii, self.fraction, self.max_others,
                                                      self.seed, self.search, self.distance, self.density)
        frames = [f.frame_hw for f in feats]
        raw = np.array([_raw_score(self.square(g, fr)) for g, fr in zip(grids, frames, strict=True)])
        if self.rerank:
            raw = rerank_scores(raw, feats)
        self.folder, self._spreads = feats, spreads
        self._grids = {f.fingerprint: g for f, g in zip(feats, grids, strict=True)}
        self._scores = {f.fingerprint: float(s) for f, s in zip(feats, raw, strict=True)}
        self.calibrate(grids, frames, how="median")

    def score_grid(self, tokens: PatchFeatures) -> np.ndarray:
        """(Gh, Gw) float32 patch scores of one image."""
        if not self.folder:
            raise RuntimeError("the mutual map has no folder yet: run the folder pass (fit) first")
        grid = self._grids.get(tokens.fingerprint)
        if grid is not None:
            return grid
        check_same_backbone(tokens, self.folder[0], "mutual map")
        idx = range(len(self.folder))
        if len(self.folder) > self.max_others:
            rng = np.random.default_rng([self.seed, len(self.folder)])
            idx = sorted(rng.choice(len(self.folder), size=self.max_others, replace=False))
        spreads = None if self._spreads is None else [self._spreads[i] for i in idx]
        return score_against(tokens, [self.folder[i] for i in idx], self.radii, self.fraction,
                             self.search, self.distance, spreads)

    def anomaly(self, tokens: PatchFeatures, prompts=None):
        res = self.result(self.score_grid(tokens), tokens.hw, tokens.frame_hw)
        if self.rerank and tokens.fingerprint in self._scores:
            res = type(res)(res.anomaly_map, self.image_score(self._scores[tokens.fingerprint]),
                            res.scale)
        return res


def _raw_score(square: np.ndarray) -> float:
    return top_fraction_mean(square, IMAGE_TOP_FRACTION)
