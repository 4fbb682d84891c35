"""The method's vocabulary as frozen dataclasses (see ../shared/design/ALGORITHM.md).

Coordinate conventions used everywhere outside the SAM call:
- image arrays are (H, W[, C]), row = y, col = x;
- points are float32 (x, y) in original image pixels.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DEFAULT_NORMAL_STATES = (
    "{}", "flawless {}", "perfect {}", "unblemished {}",
    "{} without flaw", "{} without defect", "{} without damage",
)
DEFAULT_ABNORMAL_STATES = (
    "damaged {}", "broken {}", "{} with flaw", "{} with defect", "{} with damage",
)
DEFAULT_TEMPLATES = (
    "a bad photo of a {}.", "a low resolution photo of the {}.", "a bad photo of the {}.",
    "a cropped photo of the {}.", "a bright photo of a {}.", "a dark photo of the {}.",
    "a photo of my {}.", "a photo of the cool {}.", "a close-up photo of a {}.",
    "a black and white photo of the {}.", "a bright photo of the {}.", "a cropped photo of a {}.",
    "a jpeg corrupted photo of a {}.", "a blurry photo of the {}.", "a photo of the {}.",
    "a good photo of the {}.", "a photo of one {}.", "a close-up photo of the {}.",
    "a photo of a {}.", "a low resolution photo of a {}.", "a photo of a large {}.",
    "a blurry photo of a {}.", "a jpeg corrupted photo of the {}.", "a good photo of a {}.",
    "a photo of the small {}.", "a photo of the large {}.", "a black and white photo of a {}.",
    "a dark photo of a {}.", "a photo of a cool {}.", "a photo of a small {}.",
    "there is a {} in the scene.", "there is the {} in the scene.",
    "this is a {} in the scene.", "this is the {} in the scene.", "this is one {} in the scene.",
)

NEGATIVE_RULES = ("sam_similarity", "lowest_score")


@dataclass(frozen=True)
class TextPrompts:
    """The editable prompt ensemble: object name, state words (with ``{}``), photo templates."""

    object_name: str = "object"
    normal_states: tuple[str, ...] = DEFAULT_NORMAL_STATES
    abnormal_states: tuple[str, ...] = DEFAULT_ABNORMAL_STATES
    templates: tuple[str, ...] = DEFAULT_TEMPLATES

    def __post_init__(self):
        if not self.object_name.strip():
            raise ValueError("object name must not be empty")
        for label, states in (("normal", self.normal_states), ("abnormal", self.abnormal_states)):
            if not states:
                raise ValueError(f"the {label} state list must not be empty")
            for s in states:
                if "{}" not in s:
                    raise ValueError(f"{label} state {s!r} must contain '{{}}' for the object name")
        if not self.templates or any("{}" not in t for t in self.templates):
            raise ValueError("every template must contain '{}'")

    def sentences(self, abnormal: bool) -> list[str]:
        """All template x state sentences for one class, object name filled in."""
        states = self.abnormal_states if abnormal else self.normal_states
        return [t.format(s.format(self.object_name)) for s in states for t in self.templates]

    def key(self) -> str:
        """A stable hash of the prompt set (cache key for text features)."""
        return hashlib.sha256(json.dumps(dataclasses.asdict(self), sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TextPrompts:
        kw = {f.name: (tuple(d[f.name]) if isinstance(d.get(f.name), list) else d[f.name])
              for f in dataclasses.fields(cls) if f.name in d}
        return cls(**kw)


def _block_index(value: Any, name: str) -> int:
    """A 0-based block index from an int or an integral float (JSON); ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or int(value) != value:
        raise ValueError(f"{name} must hold integer block indices, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class MapSettings:
    """The CLIP V-V map's advanced choices (ALGORITHM.md §1, each marked "(chosen)").

    ``vv_start``: 0-based block where the surgery stream starts; None = the default, 1/6 of the
    blocks (block 4 of 24, AnomalyCLIP's ``DPAM_layer = 20``), never after the first tapped depth;
    ``depths``: 0-based blocks whose surgery tokens are read; None = 4 evenly spaced ending at the
    last block ((5, 11, 17, 23) for 24 blocks); every depth must be >= ``vv_start``;
    ``temperature``: softmax temperature of the token-vs-text cosine; ``blur_sigma_518``: Gaussian
    sigma of the map in pixels at 518 scale (0 = none). The input size is chosen with the model
    (``--clip NAME@SIZE``) because it changes the loaded positional embedding.
    """

    vv_start: int | None = None
    depths: tuple[int, ...] | None = None
    temperature: float = 0.07
    blur_sigma_518: float = 4.0

    def __post_init__(self):
        if self.vv_start is not None:
            object.__setattr__(self, "vv_start", _block_index(self.vv_start, "vv_start"))
        if self.depths is not None:
            if not isinstance(self.depths, (list, tuple)) or not self.depths:
                raise ValueError(f"depths must be a non-empty list of block indices, got {self.depths!r}")
            object.__setattr__(self, "depths", tuple(_block_index(d, "depths") for d in self.depths))
        for name in ("temperature", "blur_sigma_518"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not self.blur_sigma_518 >= 0:
            raise ValueError(f"blur_sigma_518 must be >= 0, got {self.blur_sigma_518}")

    def to_dict(self) -> dict[str, Any]:
        return {"vv_start": self.vv_start, "depths": None if self.depths is None else list(self.depths),
                "temperature": self.temperature, "blur_sigma_518": self.blur_sigma_518}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MapSettings:
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if isinstance(kw.get("depths"), list):
            kw["depths"] = tuple(kw["depths"])
        return cls(**kw)


@dataclass(frozen=True)
class MethodParams:
    """Every user-adjustable parameter of PPG, CPS and the final score (ALGORITHM.md §2-4), with
    its default, and the CLIP map's advanced settings (§1) in ``clip_map``.

    Distances marked ``_1024`` are in SAM's 1024-px frame and scale with ``max(H, W) / 1024``.
    """

    tau: float = 0.5               # threshold on the normalised map S in [0, 1] (eq. 1)
    k_pos: int = 3                 # number of positive points (eq. 2)
    d_min_1024: float = 400.0      # min spacing between positive points, SAM 1024 frame
    k_neg: int = 3                 # number of negative points (eq. 3)
    ring_1024: float = 25.0        # ring dilation size, SAM 1024 frame
    negative_rule: str = "sam_similarity"   # or "lowest_score"
    gate: float | None = None      # image_score below this -> predicted normal (None = off)
    min_area_frac: float = 0.0005  # components and holes smaller than this fraction are removed
    per_component: bool = False    # one cascade per connected component of R, union of masks
    d_min_neg_1024: float = 64.0   # min spacing between negative points, SAM 1024 frame
    outside_weight: float = 0.0    # lambda of score_map = anomaly_map * (lambda + (1 - lambda) * M3)
    clip_map: MapSettings = field(default_factory=MapSettings)   # §1 advanced settings

    def __post_init__(self):
        if not 0.0 <= self.tau <= 1.0:
            raise ValueError(f"tau must be in [0, 1], got {self.tau}")
        if self.k_pos < 1:
            raise ValueError(f"k_pos must be >= 1, got {self.k_pos}")
        if self.k_neg < 0:
            raise ValueError(f"k_neg must be >= 0, got {self.k_neg}")
        if self.d_min_1024 < 0 or self.d_min_neg_1024 < 0 or self.ring_1024 < 1:
            raise ValueError(f"d_min_1024 and d_min_neg_1024 must be >= 0 and ring_1024 >= 1, got "
                             f"{self.d_min_1024}, {self.d_min_neg_1024}, {self.ring_1024}")
        if not 0.0 <= self.outside_weight <= 1.0:
            raise ValueError(f"outside_weight must be in [0, 1], got {self.outside_weight}")
        if isinstance(self.clip_map, dict):
            object.__setattr__(self, "clip_map", MapSettings.from_dict(self.clip_map))
        if not isinstance(self.clip_map, MapSettings):
            raise TypeError(f"clip_map must be MapSettings, got {type(self.clip_map).__name__}")
        if self.negative_rule not in NEGATIVE_RULES:
            raise ValueError(f"negative_rule must be one of {NEGATIVE_RULES}, got {self.negative_rule!r}")
        if self.gate is not None and not 0.0 <= self.gate <= 1.0:
            raise ValueError(f"gate must be in [0, 1] or None, got {self.gate}")
        if not 0.0 <= self.min_area_frac < 1.0:
            raise ValueError(f"min_area_frac must be in [0, 1), got {self.min_area_frac}")

    def replace(self, **changes) -> MethodParams:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["clip_map"] = self.clip_map.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MethodParams:
        """Inverse of :meth:`to_dict`; a ``clip_map`` object is rebuilt (records written before
        it existed get the defaults)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if isinstance(kw.get("clip_map"), dict):
            kw["clip_map"] = MapSettings.from_dict(kw["clip_map"])
        return cls(**kw)


@dataclass(frozen=True, eq=False)
class Prompts:
    """Point prompts. ``points``: (N, 2) float32 (x, y) image pixels; ``labels``: (N,) int32,
    1 = positive, 0 = negative. ``scores``: (N,) float32, the map value (positives) or the
    selection score (negatives) at each point, NaN for points the user placed.
    ``components``: (N,) int32 index of the anomaly component each point was made for
    (per-component mode, ALGORITHM.md §2), or None (one group; points the user placed)."""

    points: np.ndarray
    labels: np.ndarray
    scores: np.ndarray | None = None
    components: np.ndarray | None = None

    def __post_init__(self):
        pts = np.asarray(self.points, dtype=np.float32).reshape(-1, 2)
        lab = np.asarray(self.labels, dtype=np.int32).reshape(-1)
        if len(pts) != len(lab):
            raise ValueError(f"{len(pts)} points but {len(lab)} labels")
        if not np.isin(lab, (0, 1)).all():
            raise ValueError(f"labels must be 0 or 1, got {np.unique(lab).tolist()}")
        sc = (np.full(len(pts), np.nan, np.float32) if self.scores is None
              else np.asarray(self.scores, dtype=np.float32).reshape(-1))
        if len(sc) != len(pts):
            raise ValueError(f"{len(pts)} points but {len(sc)} scores")
        if self.components is not None:
            comp = np.asarray(self.components, dtype=np.int32).reshape(-1)
            if len(comp) != len(pts) or (comp < 0).any():
                raise ValueError(f"{len(pts)} points need as many component indices >= 0, got {comp.tolist()}")
            object.__setattr__(self, "components", comp)
        object.__setattr__(self, "points", pts)
        object.__setattr__(self, "labels", lab)
        object.__setattr__(self, "scores", sc)

    @classmethod
    def empty(cls) -> Prompts:
        return cls(np.zeros((0, 2), np.float32), np.zeros(0, np.int32))

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_pos(self) -> int:
        return int((self.labels == 1).sum())

    def to_dict(self) -> dict[str, Any]:
        d = {"points": self.points.round(2).tolist(), "labels": self.labels.tolist(),
             "scores": [None if np.isnan(s) else round(float(s), 5) for s in self.scores]}
        if self.components is not None:
            d["components"] = self.components.tolist()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Prompts:
        scores = d.get("scores")
        if scores is not None:
            scores = [np.nan if s is None else s for s in scores]
        return cls(np.asarray(d["points"], np.float32).reshape(-1, 2), np.asarray(d["labels"]), scores,
                   d.get("components"))


@dataclass(frozen=True, eq=False)
class AnomalyResult:
    """Output of an anomaly mapper for one image.

    ``anomaly_map``: (H, W) float32, the raw map (image pixels): for the V-V mapper the abnormal
    probability averaged over depths, in [0, 1], comparable across images (folder maps: a
    distance, on one scale across the folder);
    ``image_score``: float in [0, 1], abnormal probability of the whole image;
    ``scale``: None (S is min-max normalised per image) or a folder-wide scale (folder maps with
    an absolute tau, ALGORITHM.md §1b): S = anomaly_map / scale, clipped to [0, 1].
    """

    anomaly_map: np.ndarray
    image_score: float
    scale: float | None = None

    @property
    def normalized(self) -> np.ndarray:
        """S: (H, W) float32 in [0, 1]: ``anomaly_map / scale`` clipped when a scale is set,
        else min-max normalised per image (all zeros if flat)."""
        m = self.anomaly_map
        if self.scale is not None and self.scale > 0:
            return np.clip(m / self.scale, 0.0, 1.0).astype(np.float32)
        lo, hi = float(m.min()), float(m.max())
        if hi - lo < 1e-12:
            return np.zeros_like(m, dtype=np.float32)
        return ((m - lo) / (hi - lo)).astype(np.float32)


@dataclass(frozen=True, eq=False)
class StageResult:
    """One decoder pass of the cascade. ``mask``: (H, W) bool; ``low_res_logits``: (h, w)
    float32 over SAM's padded square (h = w = prompt_encoder.mask_input_size); ``iou``: SAM's
    predicted IoU of the kept candidate."""

    index: int            # 1, 2 or 3
    name: str             # "points", "points+mask", "points+mask+box"
    mask: np.ndarray
    low_res_logits: np.ndarray
    iou: float
    box: np.ndarray | None = None    # (4,) float32 xyxy image pixels, stage 3 only
    component: int = 0    # index of the anomaly component (per-component mode), else 0
    candidates_iou: np.ndarray | None = None   # (C,) float32 predicted IoU of every candidate


@dataclass(frozen=True, eq=False)
class SegmentationResult:
    """Everything one run of the method produced for one image."""

    anomaly: AnomalyResult
    prompts: Prompts
    stages: tuple[StageResult, ...]
    pred_mask: np.ndarray        # (H, W) bool, final mask after cleanup
    score_map: np.ndarray        # (H, W) float32, anomaly_map * (lambda + (1 - lambda) * M3) (§4)
    gated: bool                  # True when the gate predicted the image normal
    provenance: dict[str, Any] = field(default_factory=dict)   # models, params, prompts, timings
