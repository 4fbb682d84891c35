"""The SAM backend protocol: encode an image once, decode prompts on the cached embedding.

    backend = make_backend(sam_bundle, decoder="auto", encoder="auto")
    emb = backend.encode(image)                 # SamEmbedding (the expensive step, cached by the caller)
    dec = backend.decoder(emb)                  # a method.refine.MaskDecoder on that embedding
    masks, ious, low = dec.decode(points, labels, box, mask_input, multimask)
    feats = emb.numpy()                         # (C, g, g) float32 for PPG's negatives
    arrays = backend.to_arrays(emb); emb = backend.from_arrays(arrays, hw)   # disk cache

Backends, one per model family (``SamBundle.family``):

- ``"sam1"`` (:class:`Sam1Backend`): segment_anything's ``SamPredictor``, with the fast decoder
  paths (:mod:`.fast_decoder`) and the onnxruntime encoder for small encoders (:mod:`.fast_encoder`);
- ``"sam2"`` (:class:`.sam2_backend.Sam2Backend`): ``SAM2ImagePredictor``, by default with its mask
  decoder on the restructured core (:mod:`.sam2_fast`);
- ``"sam_hq"`` (:class:`.hq_backend.HqBackend`): segment_anything_hq's ``SamPredictor``, by
  default with its per-image HQ feature computed once per embedding (:class:`.hq_backend.HqDecoder`).

Every decoder keeps ``SamPredictor.predict`` semantics (see ``method.refine.MaskDecoder``), so
the cascade, PPG, the caches, the lane and the explain view run unchanged on each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from .fast_decoder import FastDecoder
    from .fast_encoder import OrtImageEncoder

#: frame of ``SamEmbedding.features``: SAM's padded square (ALGORITHM.md §6) or, for SAM 2, the
#: image stretched to the square (``SAM2Transforms`` resizes without keeping the aspect ratio)
FRAMES = ("padded", "stretched")


@dataclass(eq=False)
class SamEmbedding:
    """SAM's cached image state. ``features``: torch (1, C, g, g) on the model's device, the image
    embedding over ``frame``; ``extras``: name -> torch tensor, the other per-image tensors a
    family's decoder needs (SAM 2's high-resolution maps, HQ-SAM's early encoder feature);
    ``input_size``: (h, w) after the resize; ``original_size``: (H, W); ``long_side``: the
    encoder's input side."""

    features: Any
    input_size: tuple[int, int]
    original_size: tuple[int, int]
    extras: dict[str, Any] = field(default_factory=dict)
    frame: str = "padded"
    long_side: int = 1024

    @property
    def nbytes(self) -> int:
        return int(sum(t.numel() * t.element_size() for t in (self.features, *self.extras.values())))

    def numpy(self) -> np.ndarray:
        """(C, g, g) float32 on the CPU over SAM's padded square (the frame PPG's
        ``feature_similarity`` reads); SAM 2's stretched map is resampled into it."""
        if self.frame == "stretched":
            from .sam2_backend import stretched_to_padded

            return stretched_to_padded(self.features, self.original_size, self.long_side)
        return self.features[0].float().cpu().numpy()


class SamBackend(Protocol):
    """One loaded SAM model behind the pipeline. ``name``: the family; ``decoder_name``: the
    decoder path refinement uses (``"onnx"``, ``"fast"``, ``"torch"``: the package's predictor)."""

    name: str

    @property
    def decoder_name(self) -> str: ...

    def encode(self, image: np.ndarray) -> SamEmbedding:
        """image: (H, W, 3) uint8 RGB -> its embedding."""

    def decoder(self, emb: SamEmbedding) -> Any:
        """A ``method.refine.MaskDecoder`` on ``emb`` (no encoder call)."""

    def to_arrays(self, emb: SamEmbedding) -> dict[str, np.ndarray]:
        """The embedding as float32 numpy arrays (for the disk cache)."""

    def from_arrays(self, arrays: dict[str, np.ndarray], hw: tuple[int, int]) -> SamEmbedding | None:
        """:meth:`to_arrays`' output back to an embedding of an (H, W) image; None if unusable."""


def make_backend(sam_bundle, decoder: str = "auto", encoder: str = "auto") -> SamBackend:
    """The backend for ``sam_bundle.family``. ``decoder``/``encoder``: see ``Pipeline``."""
    family = getattr(sam_bundle, "family", "sam1")
    if family == "sam2":
        from .sam2_backend import Sam2Backend

        return Sam2Backend(sam_bundle, decoder)
    if family == "sam_hq":
        from .hq_backend import HqBackend

        return HqBackend(sam_bundle, decoder)
    if family != "sam1":
        raise ValueError(f"unknown SAM family {family!r}")
    return Sam1Backend(sam_bundle, decoder, encoder)


class CachedArrays:
    """The disk-cache half of :class:`SamBackend` for backends with ``sam`` (a SamBundle),
    ``EXTRAS`` (the names of their embedding extras) and ``embedding(features, extras, hw)``."""

    EXTRAS: tuple[str, ...] = ()

    def to_arrays(self, emb: SamEmbedding) -> dict[str, np.ndarray]:
        """``features`` and every extra as float32 CPU arrays (their shapes kept)."""
        out = {"features": emb.features.float().cpu().numpy()}
        out.update({k: v.float().cpu().numpy() for k, v in emb.extras.items()})
        return out

    def from_arrays(self, arrays: dict[str, np.ndarray], hw: tuple[int, int]) -> SamEmbedding | None:
        """:meth:`to_arrays`' output as torch float32 tensors on the model's device; None when
        an array is missing or the features are not (1, C, g, g)."""
        import torch

        names = ("features", *self.EXTRAS)
        if any(arrays.get(n) is None for n in names) or arrays["features"].ndim != 4:
            return None
        t = {n: torch.from_numpy(np.asarray(arrays[n], np.float32)).to(self.sam.device) for n in names}
        return self.embedding(t.pop("features"), t, tuple(hw))


class LastDecoder:
    """The fast decoder of the last embedding seen, built once per embedding object: repeated
    edits on one image reuse its per-image work; another image replaces it."""

    def __init__(self, make):
        self.make = make                    # SamEmbedding -> decoder
        self._emb, self._decoder = None, None

    def get(self, emb: SamEmbedding):
        import weakref

        if self._emb is None or self._emb() is not emb:
            self._emb, self._decoder = weakref.ref(emb), self.make(emb)
        return self._decoder


class PredictDecoder:
    """``method.refine.MaskDecoder`` over a predictor whose ``predict`` has SamPredictor's
    signature and whose image state was restored (the reference path of every family)."""

    def __init__(self, predictor, **predict_kwargs):
        self.predictor, self.kwargs = predictor, predict_kwargs

    def decode(self, points, labels, box, mask_input, multimask):
        import torch

        with torch.inference_mode():
            masks, ious, low = self.predictor.predict(
                point_coords=points, point_labels=labels, box=box,
                mask_input=None if mask_input is None else mask_input[None].astype(np.float32),
                multimask_output=multimask, **self.kwargs)
        return (np.asarray(masks).astype(bool, copy=False), np.asarray(ious, np.float32),
                np.asarray(low, np.float32))


class Sam1Backend(CachedArrays):
    """segment_anything ``Sam`` (ViT-B/L/H, MobileSAM): ``SamPredictor`` plus the fast paths."""

    name = "sam1"

    def __init__(self, sam_bundle, decoder: str = "auto", encoder: str = "auto"):
        from segment_anything import SamPredictor

        self.sam = sam_bundle
        self.predictor = SamPredictor(sam_bundle.model)
        self.decoder_choice, self.encoder_choice = decoder, encoder
        self._fast: FastDecoder | None = None    # None: SAM's own predictor (the reference)
        self._fast_built = False        # _fast was chosen (on first use)
        self._encoder: OrtImageEncoder | None = None   # None: SAM's torch encoder
        self._encoder_built = False

    def _cache_dir(self):
        """Where exported graphs are kept: the models folder's cache for any model read from a
        file (test models too: the key holds the weights), none for one built in memory."""
        from .fast_decoder import default_cache_dir

        return default_cache_dir() if self.sam.info.get("sha256") else None

    def image_encoder(self):
        """The onnxruntime image encoder, or None for SAM's own (chosen on first use)."""
        if not self._encoder_built:
            from .fast_encoder import make_encoder

            self._encoder = make_encoder(self.sam, self.encoder_choice, cache_dir=self._cache_dir())
            self._encoder_built = True
        return self._encoder

    def fast_engine(self):
        """The fast decoder engine, or None for SAM's own ``predict`` (chosen on first use)."""
        if not self._fast_built:
            from .fast_decoder import make_decoder

            if self.decoder_choice != "torch":
                self._fast = make_decoder(self.sam, self.decoder_choice, cache_dir=self._cache_dir())
            self._fast_built = True
        return self._fast

    @property
    def decoder_name(self) -> str:
        engine = self.fast_engine()
        return engine.backend if engine is not None else "torch"

    def encode(self, image: np.ndarray) -> SamEmbedding:
        import torch

        p = self.predictor
        encoder = self.image_encoder()
        with torch.inference_mode():
            if encoder is not None:
                encoder.set_image(p, image)
            else:
                p.set_image(image)
        return SamEmbedding(p.features, tuple(p.input_size), tuple(p.original_size),
                            long_side=self.sam.long_side)

    def decoder(self, emb: SamEmbedding):
        engine = self.fast_engine()
        if engine is not None:
            return engine.bind(emb.features, emb.input_size, emb.original_size)
        p = self.predictor
        p.features, p.input_size, p.original_size = emb.features, emb.input_size, emb.original_size
        p.is_image_set = True
        return PredictDecoder(p)

    def embedding(self, features, extras: dict[str, Any], hw: tuple[int, int]) -> SamEmbedding:
        from ..frames import sam_input_size

        return SamEmbedding(features, sam_input_size(hw, self.sam.long_side), tuple(hw),
                            long_side=self.sam.long_side)
