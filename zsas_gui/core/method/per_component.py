"""Per-component mode (ALGORITHM.md, ``per_component``): PPG per anomaly region, merged, and
the prompts split back by region for one cascade each."""

from __future__ import annotations

import numpy as np

from ..types import MethodParams, Prompts
from .ppg import PPGResult, generate_prompts, region_components
from .refine import min_area_pixels


def per_component_prompts(S: np.ndarray, image_score: float, params: MethodParams,
                          features: np.ndarray | None = None, long_side: int = 1024) -> PPGResult:
    """PPG once per connected component of R (largest first), merged into one result.

    S: (H, W) float32 normalised map; features: (C, g, g) float32 SAM embedding or None.
    Gated or without any component: the plain :func:`generate_prompts` result."""
    comps = region_components(S, params.tau, min_area_pixels(S.shape, params.min_area_frac))
    parts = [generate_prompts(S, image_score, params, features, long_side, c, i)
             for i, c in enumerate(comps)]
    if parts and not parts[0].gated:
        return merge_ppg(parts, S)
    return generate_prompts(S, image_score, params, features, long_side)


def merge_ppg(parts: list[PPGResult], S: np.ndarray) -> PPGResult:
    """One PPGResult from the per-region ones: their prompts concatenated (each point keeps its
    component index), regions and rings OR-ed ((H, W) bool; a ring never covers a region), the
    similarity map kept when there is one."""
    pts = np.concatenate([p.prompts.points for p in parts])
    lab = np.concatenate([p.prompts.labels for p in parts])
    sco = np.concatenate([p.prompts.scores for p in parts])
    comp = np.concatenate([p.prompts.components if p.prompts.components is not None
                           else np.full(len(p.prompts), i, np.int32) for i, p in enumerate(parts)])
    region = np.logical_or.reduce([p.region for p in parts])
    ring = np.logical_or.reduce([p.ring for p in parts]) & ~region
    sims = [p.similarity for p in parts if p.similarity is not None]
    return PPGResult(Prompts(pts, lab, sco, comp), S, region, ring, sims[0] if len(sims) == 1 else None)


def group_by_component(prompts: Prompts, S: np.ndarray, params: MethodParams,
                       hw: tuple[int, int]) -> list[Prompts]:
    """Split prompts into one group per anomaly component (per-component mode).

    Points made by PPG carry their component index (``prompts.components``) and are grouped by
    it; points without one (placed by the user) go to the component nearest to them. Groups
    without a positive point are dropped."""
    if prompts.components is not None:
        owner = prompts.components
        n_groups = int(owner.max()) + 1 if len(owner) else 0
    else:
        owner, n_groups = _nearest_component(prompts, S, params, hw)
        if owner is None:
            return [prompts]
    groups = []
    for ci in range(n_groups):
        sel = owner == ci
        if (prompts.labels[sel] == 1).any():
            groups.append(Prompts(prompts.points[sel], prompts.labels[sel], prompts.scores[sel]))
    return groups


def _nearest_component(prompts: Prompts, S: np.ndarray, params: MethodParams,
                       hw: tuple[int, int]) -> tuple[np.ndarray | None, int]:
    """(N,) index of the component of R nearest to each point and the number of components;
    (None, n) when there are fewer than two components."""
    import cv2

    comps = region_components(S, params.tau, min_area_pixels(hw, params.min_area_frac))
    if len(comps) <= 1:
        return None, len(comps)
    dists = np.stack([cv2.distanceTransform((~c).astype(np.uint8), cv2.DIST_L2, 3) for c in comps])
    xy = np.clip(np.rint(prompts.points).astype(int), 0, [hw[1] - 1, hw[0] - 1])
    return np.argmin(dists[:, xy[:, 1], xy[:, 0]], axis=0), len(comps)
