"""Optional fusion of a folder map with the text map (ALGORITHM.md §1b: "optionally fused with the
text map, weight 0.5 after scaling each to the folder's range"). Off by default.

Each map is divided by its own level on the good references (the highest 99 % quantile of their
maps: the folder mapper's calibrated ``pixel_level``, leave-one-out for references; for the text
map, the references' text maps), so both read 1.0 at "as high as on a good image", then

    fused = (1 - w) * folder_map / folder_level + w * text_map / text_level

The image score stays the folder map's (calibrated on the same references). With an absolute tau
the fused map's scale is 2.0 (twice the references' level, as the folder maps' ``2 * pixel_level``).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ZsasError
from ..types import AnomalyResult, TextPrompts
from .anomaly_map import ImageTokens
from .patch_features import PatchFeatures
from .patch_mapper import PIXEL_QUANTILE

#: Weight of the text map (ALGORITHM.md §1b, chosen).
DEFAULT_TEXT_WEIGHT = 0.5


@dataclass(frozen=True, eq=False)
class FusedTokens:
    """What both mappers need of one image: ``patch`` (:class:`PatchFeatures`, the folder map)
    and ``text`` (:class:`ImageTokens`, the text map)."""

    patch: PatchFeatures
    text: ImageTokens

    @property
    def hw(self) -> tuple[int, int]:
        return self.patch.hw

    @property
    def fingerprint(self) -> str:
        return self.patch.fingerprint

    @property
    def nbytes(self) -> int:
        return self.patch.nbytes + self.text.nbytes

    def to_numpy_dict(self) -> dict[str, np.ndarray]:
        """Both token sets' arrays, prefixed ``patch.`` and ``text.``."""
        out = {f"patch.{k}": v for k, v in self.patch.to_numpy_dict().items()}
        out.update({f"text.{k}": v for k, v in self.text.to_numpy_dict().items()})
        return out

    @classmethod
    def from_numpy_dict(cls, d: Any) -> FusedTokens:
        """Inverse of :meth:`to_numpy_dict`; ``ValueError`` when either part is missing or broken."""
        parts: dict[str, dict[str, Any]] = {"patch": {}, "text": {}}
        for key in d:
            head, _, rest = key.partition(".")
            if head in parts and rest:
                parts[head][rest] = d[key]
        return cls(patch=PatchFeatures.from_numpy_dict(parts["patch"]),
                   text=ImageTokens.from_numpy_dict(parts["text"]))


class TextFusedMapper:
    """``folder`` (a fitted-on-references :class:`.references.ReferenceMapper`, or any
    :class:`.patch_mapper.PatchMapper`) fused with ``text`` (:class:`.anomaly_map.VVAnomalyMapper`)
    at ``weight`` in (0, 1]. Fit it on :class:`FusedTokens` of the good images (at least 2: the
    scales are calibrated on them)."""

    def __init__(self, folder: Any, text: Any, weight: float = DEFAULT_TEXT_WEIGHT, _refs: list | None = None):
        if not 0.0 < weight <= 1.0:
            raise ValueError(f"the text weight must be in (0, 1], got {weight}")
        self.folder, self.text, self.weight = folder, text, float(weight)
        self.kind = folder.kind
        self.model_id = folder.model_id
        self.tokens_key = f"fused|{folder.tokens_key}|{text.tokens_key}"
        self.settings_key = f"{self.tokens_key}|{getattr(text, 'settings_key', '')}|w{self.weight!r}"
        self._refs: list = _refs if _refs is not None else []     # the references' text tokens (shared)
        self._text_levels: dict[str, float] = {}                   # prompts key -> text level
        self._variants: dict[Any, TextFusedMapper] = {}

    @property
    def state_key(self) -> str:
        return f"{self.folder.state_key}|w{self.weight!r}"

    def info(self) -> dict[str, Any]:
        return {**self.folder.info(), "text_fusion": {"weight": self.weight, "text_map": self.text.info()}}

    def with_settings(self, settings: Any) -> TextFusedMapper:
        """The same fusion with the text map's §1 settings (shares the fitted references)."""
        text = self.text.with_settings(settings) if hasattr(self.text, "with_settings") else self.text
        if text is self.text:
            return self
        if settings not in self._variants:
            self._variants[settings] = TextFusedMapper(self.folder, text, self.weight, _refs=self._refs)
        return self._variants[settings]

    # -- protocol ------------------------------------------------------------------------------
    def encode_image(self, image: np.ndarray) -> FusedTokens:
        """``image``: (H, W, 3) uint8 RGB -> both mappers' tokens (the expensive, cached part)."""
        return FusedTokens(self.folder.encode_image(image), self.text.encode_image(image))

    @staticmethod
    def tokens_from_numpy(arrays: Any) -> FusedTokens:
        return FusedTokens.from_numpy_dict(arrays)

    def text_features(self, prompts: TextPrompts):
        return self.text.text_features(prompts)

    def iter_fit(self, refs: Sequence[FusedTokens], on_progress=None) -> Generator[int, None, None]:
        """Fit the folder map on the references' patch features (yields references done), keep
        their text tokens for the text level."""
        refs = list(refs)
        if len(refs) < 2:
            raise ZsasError("fusing the references map with the text map needs at least 2 good "
                            "images (both maps are scaled on them); add good images or drop the text weight")
        yield from self.folder.iter_fit([r.patch for r in refs])
        self._refs[:] = [r.text for r in refs]
        self._text_levels.clear()
        for v in self._variants.values():
            v._text_levels.clear()

    def fit(self, refs: Sequence[FusedTokens]) -> None:
        for _ in self.iter_fit(refs):
            pass

    def text_level(self, prompts: TextPrompts) -> float:
        """The references' text level for ``prompts``: the highest 99 % quantile of their text maps."""
        key = prompts.key()
        if key not in self._text_levels:
            maps = [self.text.anomaly(t, prompts).anomaly_map for t in self._refs]
            self._text_levels[key] = float(max(np.quantile(m, PIXEL_QUANTILE) for m in maps))
        return self._text_levels[key]

    def anomaly(self, tokens: FusedTokens, prompts: TextPrompts | None = None) -> AnomalyResult:
        """``anomaly_map`` (H, W) float32: the fused map (1.0 = the references' level);
        ``image_score``: the folder map's."""
        if prompts is None:
            raise ZsasError("the fused map needs the text prompts (the text map is part of it)")
        if not self._refs or not self.folder.pixel_level:
            raise RuntimeError("the fused map has no references yet: fit it on the good images first")
        folder = self.folder.anomaly(tokens.patch)
        text = self.text.anomaly(tokens.text, prompts)
        fused = ((1.0 - self.weight) * folder.anomaly_map / self.folder.pixel_level
                 + self.weight * text.anomaly_map / max(self.text_level(prompts), 1e-6))
        scale = 2.0 if folder.scale is not None else None
        return AnomalyResult(anomaly_map=fused.astype(np.float32), image_score=folder.image_score,
                             scale=scale)

    def compute(self, image: np.ndarray, prompts: TextPrompts) -> AnomalyResult:
        return self.anomaly(self.encode_image(image), prompts)
