"""Local density normalisation of the folder maps' nearest-patch distances (ALGORITHM.md §1b,
docs/decisions.md D40; the local-outlier-factor idea, our own code).

A patch p of the scored image has a nearest patch b among the normal patches it is compared with
(another image of the folder, or the references). ``d(p, b)`` alone says little where normal
patches are themselves spread out (strong edges, coarse grain) and much where they are packed
(a smooth surface). So the score is ``d(p, b) / spread(b)``, where ``spread(b)`` is the distance
from b to its own nearest patch in the other images of the comparison, never in p's own image
(else an anomaly and its nearest normal patch would be each other's nearest, ratio 1): "how much
farther p is from normal than normal patches there are from each other". 1 is ordinary.

Spreads are floored at ``SPREAD_FLOOR`` times the view's median spread over the folder, so
duplicated patches (identical images, blank regions) do not divide by zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

SPREAD_FLOOR = 0.1   # x the view's median spread (chosen: only duplicates reach it)


@dataclass(frozen=True)
class Spreads:
    """Spreads of one image's (or bank's) patches, per view: ``first`` (V, P) float32 distance
    to the nearest patch of another image, ``owner`` (V, P) int64 which image that was,
    ``second`` (V, P) float32 the nearest in any image but that one (= ``first`` with only one
    other image)."""

    first: torch.Tensor
    owner: torch.Tensor
    second: torch.Tensor

    @classmethod
    def from_distances(cls, dists: torch.Tensor, owners: Sequence[int]) -> Spreads:
        """(K, V, P) distances of the patches to their nearest patch in each of K other images
        (image ids ``owners``) -> their spreads."""
        k = min(2, dists.shape[0])
        low = dists.float().topk(k, dim=0, largest=False)
        ids = torch.as_tensor(list(owners), dtype=torch.int64)[low.indices[0]]
        return cls(low.values[0], ids, low.values[k - 1])

    def floored(self, low: torch.Tensor) -> Spreads:
        """Both spreads clamped from below at ``low`` (V, 1)."""
        return Spreads(torch.maximum(self.first, low), self.owner, torch.maximum(self.second, low))

    def excluding(self, image: int | None) -> torch.Tensor:
        """(V, P) float32 spreads that never use image ``image`` (None: the nearest of all)."""
        if image is None:
            return self.first
        return torch.where(self.owner == image, self.second, self.first)

    def rows(self, keep: torch.Tensor) -> Spreads:
        """The spreads of the patches (columns) selected by ``keep``."""
        return Spreads(self.first[:, keep], self.owner[:, keep], self.second[:, keep])


def floor_all(spreads: Sequence[Spreads]) -> list[Spreads]:
    """Floor every image's spreads at ``SPREAD_FLOOR`` times the view's median ``first`` spread
    over all of them."""
    median = torch.cat([s.first for s in spreads], dim=1).median(dim=1).values      # (V,)
    low = (SPREAD_FLOOR * median).clamp_min(1e-12)[:, None]
    return [s.floored(low) for s in spreads]


def relative(dist: torch.Tensor, index: torch.Tensor, spread: torch.Tensor) -> torch.Tensor:
    """(V, P) distances of the scored patches to their nearest patches, (V, P) int indices of
    those patches in an image (or bank) whose (V, P_b) float32 spreads are ``spread`` ->
    (V, P) float32 relative distances ``dist / spread[index]``."""
    return dist.float() / spread.gather(1, index.long())
