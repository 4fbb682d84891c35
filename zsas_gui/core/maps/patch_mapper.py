"""What the two folder mappers (``mutual``, ``references``; ALGORITHM.md §1b) share: the mapper
protocol of :mod:`.anomaly_map` on top of a patch-feature backbone, turning a patch score grid
into an :class:`AnomalyResult`, and the folder scale (absolute tau, calibrated gate).

Scale: patch scores are Euclidean distances between patch features, one scale across a folder:
of unit features (0..2) for the cosine distance, of raw activations for the Euclidean one; with
``density`` (the default) divided by the local spread of normal patches (:mod:`.density`: 1 is
ordinary).
A mapper calibrates two levels on the images it knows are (mostly) normal: ``pixel_level`` (a
high quantile of their pixel scores) and ``image_level`` (their image scores). ``image_score``
is ``raw / (raw + image_level)`` in [0, 1): 0.5 means "as anomalous as the calibration images",
so ``--gate 0.5`` is a gate calibrated on them. With ``absolute=True`` the result carries
``scale = 2 * pixel_level``: the normalised map S = map / scale (clipped), the same for every
image, so tau 0.5 cuts at the calibration level on every image (instead of per-image min-max).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..types import AnomalyResult, TextPrompts
from .anomaly_map import blur_sigma_px, finish_map
from .patch_features import (
    DEFAULT_RADII,
    DISTANCES,
    PatchFeatures,
    preferred_distance,
    search_dtype,
    top_fraction_mean,
)

#: Quantile of a calibration image's pixel scores that defines its pixel level.
PIXEL_QUANTILE = 0.99
#: Fraction of the map averaged for the image score (chosen: top 1 %).
IMAGE_TOP_FRACTION = 0.01
SEARCH_CHOICES = ("auto", "float32", "bfloat16")


class PatchMapper:
    """Base of the folder mappers. ``backbone``: a :mod:`.backbones` object; ``radii``:
    neighbourhood sides; ``blur_sigma_518``: Gaussian sigma at 518 scale (as the text map);
    ``absolute``: results carry the folder scale (see the module doc); ``search``: dtype of the
    nearest-patch matrix products, ``"auto"`` (:func:`.patch_features.search_dtype` for the
    backbone's device), ``"float32"`` or ``"bfloat16"`` (bfloat16 search, float32 values);
    ``distance``: ``"auto"`` (the backbone's, :func:`.patch_features.preferred_distance`: raw
    Euclidean for CNN stages, cosine for ViT tokens), ``"cosine"`` or ``"euclidean"``;
    ``density``: distances relative to the local spread of normal patches (:mod:`.density`)."""

    kind = "patch"

    def __init__(self, backbone: Any, radii: tuple[int, ...] = DEFAULT_RADII,
                 blur_sigma_518: float = 4.0, absolute: bool = False, search: str = "auto",
                 distance: str = "auto", density: bool = True):
        if not radii or any(int(r) != r or r < 1 or r % 2 == 0 for r in radii):
            raise ValueError(f"radii must be odd window sides >= 1, got {radii}")
        self.backbone = backbone
        self.radii = tuple(int(r) for r in radii)
        self.blur_sigma_518 = float(blur_sigma_518)
        self.absolute = bool(absolute)
        if search not in SEARCH_CHOICES:
            raise ValueError(f"search must be one of {SEARCH_CHOICES}, got {search!r}")
        self.search = (search_dtype(getattr(backbone, "device", "cpu")) if search == "auto"
                       else getattr(torch, search))
        self.distance = preferred_distance(backbone) if distance == "auto" else distance
        if self.distance not in DISTANCES:
            raise ValueError(f"distance must be 'auto' or one of {DISTANCES}, got {distance!r}")
        self.density = bool(density)
        self.model_id = backbone.model_id
        self.tokens_key = f"patch|{backbone.model_id}"
        self.pixel_level: float | None = None
        self.image_level: float | None = None

    # -- protocol ------------------------------------------------------------------------------
    def encode_image(self, image: np.ndarray) -> PatchFeatures:
        """``image``: (H, W, 3) uint8 RGB -> :class:`PatchFeatures` (the expensive, cached part)."""
        return self.backbone.extract(image)

    @staticmethod
    def tokens_from_numpy(arrays: Any) -> PatchFeatures:
        return PatchFeatures.from_numpy_dict(arrays)

    def text_features(self, prompts: TextPrompts) -> None:
        """Folder maps use no text (kept for the protocol: nothing to warm up)."""
        return

    def compute(self, image: np.ndarray, prompts: TextPrompts) -> AnomalyResult:
        return self.anomaly(self.encode_image(image), prompts)

    def anomaly(self, tokens: PatchFeatures, prompts: TextPrompts | None = None) -> AnomalyResult:
        return self.result(self.score_grid(tokens), tokens.hw, tokens.frame_hw)

    def score_grid(self, tokens: PatchFeatures) -> np.ndarray:   # pragma: no cover - abstract
        raise NotImplementedError

    def iter_fit(self, feats) -> Iterator[int]:   # pragma: no cover - abstract
        raise NotImplementedError

    def fit(self, feats: Sequence[PatchFeatures]) -> None:
        """:meth:`iter_fit` to its end (the folder for mutual, the good images for references)."""
        for _ in self.iter_fit(feats):
            pass

    @property
    def state_key(self) -> str:
        """Everything besides the image that decides a map (settings, folder, calibration): part
        of the pipeline's map cache key."""
        return hashlib.sha1(repr(self._state()).encode()).hexdigest()[:16]

    def _state(self) -> tuple:
        return (self.kind, self.radii, self.blur_sigma_518, self.absolute, self.pixel_level,
                self.image_level, *_search_state(self.search),
                *(() if self.distance == "cosine" else (self.distance,)),
                *(("density",) if self.density else ()))

    def info(self) -> dict[str, Any]:
        """Settings for provenance records."""
        return {"mapper": self.kind, "model_id": self.model_id, **self.backbone.info(),
                "radii": list(self.radii), "blur_sigma_518": self.blur_sigma_518,
                "absolute_scale": self.absolute, "search": str(self.search).removeprefix("torch."),
                "distance": self.distance, "density": self.density,
                "pixel_level": _round(self.pixel_level),
                "image_level": _round(self.image_level)}

    # -- grid -> result ------------------------------------------------------------------------
    def square(self, grid: np.ndarray, frame_hw: tuple[int, int]) -> np.ndarray:
        """(Gh, Gw) patch scores -> (h, w) float32 of the model frame, bilinear, blurred."""
        t = torch.from_numpy(np.ascontiguousarray(grid, dtype=np.float32))[None, None]
        up = F.interpolate(t, size=tuple(frame_hw), mode="bilinear", align_corners=False)[0, 0].numpy()
        return finish_map(up, blur_sigma_px(self.blur_sigma_518, max(frame_hw)), tuple(frame_hw))

    def result(self, grid: np.ndarray, hw: tuple[int, int], frame_hw: tuple[int, int]) -> AnomalyResult:
        """``anomaly_map`` (H, W) float32 raw distances; ``image_score`` in [0, 1) on the folder
        scale (top-1 % mean over the model-frame map, see the module doc)."""
        sq = self.square(grid, frame_hw)
        raw = top_fraction_mean(sq, IMAGE_TOP_FRACTION)
        amap = finish_map(sq, 0.0, hw)
        scale = 2.0 * self.pixel_level if self.absolute and self.pixel_level else None
        return AnomalyResult(anomaly_map=amap, image_score=self.image_score(raw), scale=scale)

    def image_score(self, raw: float) -> float:
        """``raw`` (top-1 % mean distance) -> [0, 1). Uncalibrated (one reference): plain cosine
        distances are at most 2 (raw / 2); other scores have no bound (raw / (raw + 1), only an
        order)."""
        level = self.image_level or 0.0
        if level > 0:
            return float(raw / (raw + level))
        if self.distance == "cosine" and not self.density:
            return float(min(1.0, raw / 2.0))
        return float(raw / (raw + 1.0))

    def calibrate(self, grids: list[np.ndarray], frames: list[tuple[int, int]], how: str) -> None:
        """Set ``pixel_level``/``image_level`` from the score grids (and model frames) of calibration images:
        ``how="max"`` (known-good references: the highest) or ``"median"`` (an unlabelled folder,
        mostly normal)."""
        if not grids:
            self.pixel_level = self.image_level = None
            return
        reduce = np.max if how == "max" else np.median
        squares = [self.square(g, f) for g, f in zip(grids, frames, strict=True)]
        self.pixel_level = float(reduce([np.quantile(s, PIXEL_QUANTILE) for s in squares]))
        self.image_level = float(reduce([top_fraction_mean(s, IMAGE_TOP_FRACTION) for s in squares]))


def _search_state(search: torch.dtype) -> tuple:
    """float32 search adds nothing to the state (keys made before bfloat16 search stay valid)."""
    return () if search == torch.float32 else (str(search),)


def _round(v: float | None) -> float | None:
    return None if v is None else round(float(v), 6)


def check_same_backbone(feats: PatchFeatures, first: PatchFeatures, what: str) -> None:
    """Features compared with each other must come from one backbone (same depths and channels;
    grids may differ when the backbone keeps each image's aspect ratio)."""
    if [t.shape[0] for t in feats.layers] != [t.shape[0] for t in first.layers]:
        raise ValueError(f"{what}: patch features come from another backbone "
                         f"(channels {[t.shape[0] for t in feats.layers]} vs "
                         f"{[t.shape[0] for t in first.layers]})")
