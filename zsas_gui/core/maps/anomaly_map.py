"""CLIP anomaly maps (ALGORITHM.md §1): the anomaly-mapper interface and the training-free
dense V-V mapper.

Split of the work, so that the pipeline can cache the expensive part:

- :meth:`AnomalyMapper.encode_image` runs the vision tower once per image -> :class:`ImageTokens`
  (CPU float32, saveable as plain numpy arrays);
- :meth:`AnomalyMapper.text_features` encodes a prompt ensemble -> (2, D), cached per
  ``(model_id, prompts.key())``;
- :meth:`AnomalyMapper.anomaly` combines both into an :class:`AnomalyResult` (milliseconds).

Frames (ALGORITHM.md §6): the image is stretched to the model's input square (S x S); token
maps live on the G x G patch grid of that square (row = y), are upsampled to S x S, blurred,
and resized back to the image's (H, W).

Trained adapters (APRIL-GAN linear heads, AnomalyCLIP learned text) implement the same protocol.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import ZsasError
from ..models.bundles import ClipBundle
from ..types import AnomalyResult, MapSettings, TextPrompts
from .clip_surgery import (
    check_depths_after_vv_start,
    check_supported,
    default_vv_start,
    resolve_depths,
    resolve_vv_start,
    surgery_forward,
)
from .text_features import DEFAULT_BATCH_SIZE, TextFeatureCache, encode_class_features

#: Reference input side for pixel distances of the CLIP map (the default backbone runs at 518).
REFERENCE_SIDE = 518


@dataclass(frozen=True, eq=False)
class ImageTokens:
    """What the vision tower produced for one image (CPU, float32).

    ``dense``: (n_depths, G*G, D) float32, L2-normalised surgery-stream patch tokens after
    ``ln_post`` and ``proj``, patches in row-major grid order (row = y);
    ``cls``: (D,) float32, L2-normalised global image embedding of the original stream
    (equals the normalised ``model.encode_image``); ``grid``: G; ``hw``: (H, W) of the source image.
    """

    dense: torch.Tensor
    cls: torch.Tensor
    grid: int
    hw: tuple[int, int]

    def __post_init__(self):
        if self.dense.ndim != 3 or self.dense.shape[1] != self.grid * self.grid:
            raise ValueError(f"dense must be (n_depths, {self.grid}*{self.grid}, D), "
                             f"got {tuple(self.dense.shape)}")
        if self.cls.shape != (self.dense.shape[2],):
            raise ValueError(f"cls must be ({self.dense.shape[2]},), got {tuple(self.cls.shape)}")
        if len(self.hw) != 2 or min(self.hw) < 1:
            raise ValueError(f"hw must be (H, W) with positive sides, got {self.hw}")

    @property
    def nbytes(self) -> int:
        return (self.dense.nelement() * self.dense.element_size()
                + self.cls.nelement() * self.cls.element_size())

    def to_numpy_dict(self) -> dict[str, np.ndarray]:
        """Plain arrays for ``np.savez`` (load with ``allow_pickle=False``)."""
        return {"dense": self.dense.numpy(), "cls": self.cls.numpy(),
                "grid": np.asarray(self.grid, np.int64), "hw": np.asarray(self.hw, np.int64)}

    @classmethod
    def from_numpy_dict(cls, d: Any) -> ImageTokens:
        """Inverse of :meth:`to_numpy_dict` (also takes an ``np.load`` NpzFile); raises
        ``ValueError`` on missing keys or inconsistent shapes (treat as a cache miss)."""
        missing = {"dense", "cls", "grid", "hw"} - set(d.keys())
        if missing:
            raise ValueError(f"image tokens are missing {sorted(missing)}")
        hw = np.asarray(d["hw"]).reshape(-1)
        if hw.shape != (2,):
            raise ValueError(f"hw must hold 2 values, got {hw.tolist()}")
        dense = torch.from_numpy(np.array(d["dense"], dtype=np.float32, copy=True))
        cls_ = torch.from_numpy(np.array(d["cls"], dtype=np.float32, copy=True))
        return cls(dense=dense, cls=cls_, grid=int(np.asarray(d["grid"])),
                   hw=(int(hw[0]), int(hw[1])))


@runtime_checkable
class AnomalyMapper(Protocol):
    """Anything that turns an RGB image and a prompt ensemble into an :class:`AnomalyResult`.

    ``model_id``: the backbone id (text-feature cache key); ``tokens_key``: id of everything
    that determines :class:`ImageTokens` (backbone + mapper settings), for image-token caches.
    """

    model_id: str
    tokens_key: str

    def encode_image(self, image: np.ndarray) -> ImageTokens:
        """``image``: (H, W, 3) uint8 RGB. Expensive; the result is cacheable."""
        ...

    def text_features(self, prompts: TextPrompts) -> torch.Tensor:
        """(2, D) float32 CPU, rows normal/abnormal, unit length; cached."""
        ...

    def anomaly(self, tokens: ImageTokens, prompts: TextPrompts) -> AnomalyResult:
        """Cheap: the map and score from cached tokens and text features."""
        ...

    def compute(self, image: np.ndarray, prompts: TextPrompts) -> AnomalyResult:
        """``anomaly(encode_image(image), prompts)``."""
        ...


def check_rgb(image: np.ndarray) -> tuple[int, int]:
    """Validate an (H, W, 3) uint8 RGB array and return (H, W)."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 \
            or image.shape[2] != 3 or min(image.shape[:2]) < 1:
        desc = (f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__)
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {desc}")
    return int(image.shape[0]), int(image.shape[1])


def preprocess(image: np.ndarray, size: int, mean: Sequence[float], std: Sequence[float],
               device: Any = "cpu", dtype: Any = torch.float32) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (1, 3, size, size) normalised tensor on ``device``/``dtype``.

    Stretch (no crop, no padding) with PIL's antialiased bicubic resampling (what open_clip's
    own transform uses; 5-10x faster than torch's antialiased bicubic), to [0, 1], then
    ``(x - mean) / std`` per channel.
    """
    check_rgb(image)
    if image.shape[:2] != (size, size):
        image = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC))
    x = torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1)[None] / 255.0
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return ((x - m) / s).to(device=device, dtype=dtype)


def blur_sigma_px(blur_sigma_518: float, image_size: int) -> float:
    """Gaussian sigma in pixels of the S x S model frame for a sigma given at 518 scale."""
    return float(blur_sigma_518) * image_size / REFERENCE_SIDE


def finish_map(square: np.ndarray, sigma_px: float, hw: tuple[int, int]) -> np.ndarray:
    """(S, S) float32 map in the model frame -> Gaussian blur (``sigma_px``; 0 = none) ->
    (H, W) float32 in image pixels (bilinear)."""
    m = np.ascontiguousarray(square, dtype=np.float32)
    if sigma_px > 0:
        m = cv2.GaussianBlur(m, (0, 0), sigmaX=sigma_px, sigmaY=sigma_px,
                             borderType=cv2.BORDER_REFLECT_101)
    h, w = hw
    if m.shape != (h, w):
        m = cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)
    return m.astype(np.float32, copy=False)


class VVAnomalyMapper:
    """Training-free dense V-V anomaly mapper on an open_clip ViT (see :mod:`.clip_surgery`).

    ``vv_start``: int block index (negative counts from the end) or float fraction of blocks
    before the surgery stream; None = :func:`.clip_surgery.default_vv_start` (1/6 of the blocks,
    never after the first depth); ``depths``: 0-based blocks whose surgery tokens are used
    (default: 4 evenly spaced ending at the last block, (5, 11, 17, 23) for 24 blocks); a depth
    before ``vv_start`` is refused (it would be a plain CLIP token map); ``blur_sigma_518``:
    Gaussian sigma at 518 scale; ``temperature``: softmax temperature of the patch-vs-text
    cosine; ``image_temperature``: the same for ``image_score`` (None = ``temperature``);
    ``text_cache``: a :class:`TextFeatureCache` to share between mappers (None = own cache).
    """

    kind = "vv"

    def __init__(self, clip: ClipBundle, vv_start: float | int | None = None,  # noqa: PYI041
                 depths: Sequence[int] | None = None, blur_sigma_518: float = 4.0,
                 temperature: float = 0.07, image_temperature: float | None = None,
                 text_cache: TextFeatureCache | None = None,
                 text_batch_size: int = DEFAULT_BATCH_SIZE):
        visual = clip.model.visual
        check_supported(visual)
        native = tuple(int(s) for s in visual.image_size)
        if native != (clip.image_size, clip.image_size):
            raise ValueError(f"ClipBundle.image_size {clip.image_size} does not match the model's "
                             f"input {native[0]}x{native[1]} (create it with force_image_size)")
        if temperature <= 0 or (image_temperature is not None and image_temperature <= 0):
            raise ValueError("temperatures must be > 0")
        if blur_sigma_518 < 0:
            raise ValueError(f"blur_sigma_518 must be >= 0, got {blur_sigma_518}")
        n_blocks = len(visual.transformer.resblocks)
        self.clip = clip
        self.model_id = clip.model_id
        self.grid = int(visual.grid_size[0])
        self.n_blocks = n_blocks
        self.depths = resolve_depths(depths, n_blocks)
        self.vv_start = (default_vv_start(n_blocks, self.depths) if vv_start is None
                         else resolve_vv_start(vv_start, n_blocks))
        check_depths_after_vv_start(self.vv_start, self.depths)
        self.blur_sigma_518 = float(blur_sigma_518)
        self.temperature = float(temperature)
        self.image_temperature = float(image_temperature if image_temperature is not None else temperature)
        self.text_cache = text_cache if text_cache is not None else TextFeatureCache()
        self.text_batch_size = int(text_batch_size)
        self._variants: dict[MapSettings, VVAnomalyMapper] = {}
        prep = hashlib.sha256(repr((clip.mean, clip.std)).encode()).hexdigest()[:8]
        self.tokens_key = (f"{self.model_id}|vv{self.vv_start}|d{'-'.join(map(str, self.depths))}"
                           f"|s{clip.image_size}|bicubic-stretch-{prep}")
        #: everything that determines the map from the tokens and the text (the map cache key)
        self.settings_key = (f"{self.tokens_key}|t{self.temperature!r}|it{self.image_temperature!r}"
                             f"|b{self.blur_sigma_518!r}")

    def with_settings(self, settings: MapSettings) -> VVAnomalyMapper:
        """A mapper on the same model and text cache with the §1 ``settings`` (``MethodParams.
        clip_map``): this mapper itself when they resolve to its own, else one made once per
        settings and remembered by the mapper it was asked of."""
        if self._resolves_to_self(settings):
            return self
        if settings not in self._variants:
            try:
                self._variants[settings] = VVAnomalyMapper(
                    self.clip, vv_start=settings.vv_start, depths=settings.depths,
                    blur_sigma_518=settings.blur_sigma_518, temperature=settings.temperature,
                    text_cache=self.text_cache, text_batch_size=self.text_batch_size)
            except ValueError as exc:
                raise ZsasError(f"the CLIP map settings do not fit {self.model_id} ({self.n_blocks} "
                                f"blocks, 0-based): {exc}") from exc
        return self._variants[settings]

    def _resolves_to_self(self, m: MapSettings) -> bool:
        try:
            depths = resolve_depths(m.depths, self.n_blocks)
            vv = default_vv_start(self.n_blocks, depths) if m.vv_start is None \
                else resolve_vv_start(m.vv_start, self.n_blocks)
        except ValueError:
            return False
        return ((vv, depths, float(m.temperature), float(m.blur_sigma_518), float(m.temperature))
                == (self.vv_start, self.depths, self.temperature, self.blur_sigma_518, self.image_temperature))

    def info(self) -> dict[str, Any]:
        """Settings for provenance records."""
        return {"mapper": self.kind, "model_id": self.model_id, "image_size": self.clip.image_size,
                "grid": self.grid, "blocks": self.n_blocks, "vv_start": self.vv_start,
                "depths": list(self.depths), "blur_sigma_518": self.blur_sigma_518,
                "temperature": self.temperature, "image_temperature": self.image_temperature,
                "raw_map": "mean over depths of the abnormal probability"}

    # -- expensive: vision tower -------------------------------------------------------------
    def encode_image(self, image: np.ndarray) -> ImageTokens:
        """``image``: (H, W, 3) uint8 RGB -> :class:`ImageTokens` (CPU float32)."""
        hw = check_rgb(image)
        c = self.clip
        pixels = preprocess(image, c.image_size, c.mean, c.std, c.device, c.dtype)
        with torch.inference_mode():
            pooled, dense = surgery_forward(c.model.visual, pixels, self.vv_start, self.depths)
            dense_t = F.normalize(torch.stack([d[0] for d in dense]).float(), dim=-1).cpu()
            cls_t = F.normalize(pooled[0].float(), dim=-1).cpu()
        # clone outside inference mode: ordinary tensors, safe for any later use by callers
        return ImageTokens(dense=dense_t.clone(), cls=cls_t.clone(), grid=self.grid, hw=hw)

    # -- cached: text ------------------------------------------------------------------------
    def text_features(self, prompts: TextPrompts) -> torch.Tensor:
        """(2, D) float32 CPU, rows normal/abnormal; cached per (model_id, prompts.key())."""
        c = self.clip
        return self.text_cache.get_or_compute(
            self.model_id, prompts,
            lambda: encode_class_features(c.model, c.tokenizer, prompts, c.device, self.text_batch_size))

    # -- cheap: map --------------------------------------------------------------------------
    def anomaly(self, tokens: ImageTokens, prompts: TextPrompts) -> AnomalyResult:
        """``anomaly_map`` (H, W) float32, the raw map: the abnormal probability averaged over
        depths, blurred (in [0, 1], comparable across images; ALGORITHM.md §1);
        ``image_score``: abnormal probability of the global embedding."""
        if tokens.grid != self.grid:
            raise ValueError(f"tokens have a {tokens.grid}x{tokens.grid} grid, this mapper "
                             f"{self.grid}x{self.grid}: they come from another model")
        text = self.text_features(prompts)
        if tokens.dense.shape[2] != text.shape[1]:
            raise ValueError(f"token dimension {tokens.dense.shape[2]} does not match the text "
                             f"features' {text.shape[1]}: the tokens come from another model")
        size = self.clip.image_size
        with torch.inference_mode():
            logits = tokens.dense @ text.T / self.temperature               # (n, G*G, 2)
            prob = logits.softmax(dim=-1)[..., 1].reshape(-1, 1, self.grid, self.grid)
            up = F.interpolate(prob, size=(size, size), mode="bilinear", align_corners=False)
            square = up.mean(dim=0)[0].numpy()                              # (S, S)
            score = (tokens.cls @ text.T / self.image_temperature).softmax(dim=-1)[1]
            score = float(score)
        amap = finish_map(square, blur_sigma_px(self.blur_sigma_518, size), tokens.hw)
        return AnomalyResult(anomaly_map=amap, image_score=score)

    def compute(self, image: np.ndarray, prompts: TextPrompts) -> AnomalyResult:
        return self.anomaly(self.encode_image(image), prompts)
