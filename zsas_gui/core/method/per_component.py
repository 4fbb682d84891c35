"""Per-component mode (ALGORITHM.md, ``per_component``): PPG per anomaly region, merged, and
the prompts split back by region for one cascade each."""

from __future__ import annotations

import numpy as np

from ..types import MethodParams, Prompts
from .ppg import PPGResult, region_components
from .refine import min_area_pixels


def merge_ppg(parts: list[PPGResult], S: np.ndarray) -> PPGResult:
    """One PPGResult from the per-region ones: their prompts concatenated, regions and rings
    OR-ed ((H, W) bool; a ring never covers a region), the similarity map kept when one."""
    pts = np.concatenate([p.prompts.points for p in parts])
    lab = np.concatenate([p.prompts.labels for p in parts])
    sco = np.concatenate([p.prompts.scores for p in parts])
    region = np.logical_or.reduce([p.region for p in parts])
    ring = np.logical_or.reduce([p.ring for p in parts]) & ~region
    sims = [p.similarity for p in parts if p.similarity is not None]
    return PPGResult(Prompts(pts, lab, sco), S, region, ring, sims[0] if len(sims) == 1 else None)


def group_by_component(prompts: Prompts, S: np.ndarray, params: MethodParams,
                       hw: tuple[int, int]) -> list[Prompts]:
    """Split prompts by the anomaly component nearest to each point (per-component mode).
    Components without a positive point are dropped."""
    import cv2

    comps = region_components(S, params.tau, min_area_pixels(hw, params.min_area_frac))
    if len(comps) <= 1:
        return [prompts]
    dists = np.stack([cv2.distanceTransform((~c).astype(np.uint8), cv2.DIST_L2, 3) for c in comps])
    xy = np.clip(np.rint(prompts.points).astype(int), 0, [hw[1] - 1, hw[0] - 1])
    owner = np.argmin(dists[:, xy[:, 1], xy[:, 0]], axis=0)
    groups = []
    for ci in range(len(comps)):
        sel = owner == ci
        if (prompts.labels[sel] == 1).any():
            groups.append(Prompts(prompts.points[sel], prompts.labels[sel], prompts.scores[sel]))
    return groups
