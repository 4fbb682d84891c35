"""The method's vocabulary as frozen dataclasses (see ../shared/design/ALGORITHM.md).

Coordinate conventions used everywhere outside the SAM call:
- image arrays are (H, W[, C]), row = y, col = x;
- points are float32 (x, y) in original image pixels.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
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


@dataclass(frozen=True)
class MethodParams:
    """Every user-adjustable parameter of PPG and CPS (ALGORITHM.md §2-3), with its default.

    Distances marked ``_1024`` are in SAM's 1024-px frame and scale with ``max(H, W) / 1024``.
    """

    tau: float = 0.5               # threshold on the normalised map S in [0, 1] (eq. 1)
    k_pos: int = 3                 # number of positive points (eq. 2)
    d_min_1024: float = 400.0      # min spacing between points, SAM 1024 frame
    k_neg: int = 3                 # number of negative points (eq. 3)
    ring_1024: float = 25.0        # ring dilation size, SAM 1024 frame
    negative_rule: str = "sam_similarity"   # or "lowest_score"
    gate: float | None = None      # image_score below this -> predicted normal (None = off)
    min_area_frac: float = 0.0005  # components and holes smaller than this fraction are removed
    per_component: bool = False    # one cascade per connected component of R, union of masks

    def __post_init__(self):
        if not 0.0 <= self.tau <= 1.0:
            raise ValueError(f"tau must be in [0, 1], got {self.tau}")
        if self.k_pos < 1:
            raise ValueError(f"k_pos must be >= 1, got {self.k_pos}")
        if self.k_neg < 0:
            raise ValueError(f"k_neg must be >= 0, got {self.k_neg}")
        if self.d_min_1024 < 0 or self.ring_1024 < 1:
            raise ValueError(f"d_min_1024 must be >= 0 and ring_1024 >= 1, got "
                             f"{self.d_min_1024}, {self.ring_1024}")
        if self.negative_rule not in NEGATIVE_RULES:
            raise ValueError(f"negative_rule must be one of {NEGATIVE_RULES}, got {self.negative_rule!r}")
        if self.gate is not None and not 0.0 <= self.gate <= 1.0:
            raise ValueError(f"gate must be in [0, 1] or None, got {self.gate}")
        if not 0.0 <= self.min_area_frac < 1.0:
            raise ValueError(f"min_area_frac must be in [0, 1), got {self.min_area_frac}")

    def replace(self, **changes) -> MethodParams:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MethodParams:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True, eq=False)
class Prompts:
    """Point prompts. ``points``: (N, 2) float32 (x, y) image pixels; ``labels``: (N,) int32,
    1 = positive, 0 = negative. ``scores``: (N,) float32, the map value (positives) or the
    selection score (negatives) at each point, NaN for points the user placed."""

    points: np.ndarray
    labels: np.ndarray
    scores: np.ndarray | None = None

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
        return {"points": self.points.round(2).tolist(), "labels": self.labels.tolist(),
                "scores": [None if np.isnan(s) else round(float(s), 5) for s in self.scores]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Prompts:
        scores = d.get("scores")
        if scores is not None:
            scores = [np.nan if s is None else s for s in scores]
        return cls(np.asarray(d["points"], np.float32).reshape(-1, 2), np.asarray(d["labels"]), scores)


@dataclass(frozen=True, eq=False)
class AnomalyResult:
    """Output of an anomaly mapper for one image.

    ``anomaly_map``: (H, W) float32, raw summed abnormal probability (image pixels);
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
    score_map: np.ndarray        # (H, W) float32, S * M3 where M3 non-empty, else S
    gated: bool                  # True when the gate predicted the image normal
    provenance: dict[str, Any] = field(default_factory=dict)   # models, params, prompts, timings
