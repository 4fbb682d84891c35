"""Fast refinement: a :class:`~.refine.MaskDecoder` that gives SAM's masks with less work.

    engine = make_decoder(sam_bundle, "auto")     # None -> use SAM's own predict (reference)
    decoder = engine.bind(features, input_size, original_size)
    mask, ious, low, index = decoder.decode_best(points, labels, box, mask_input, multimask)
    masks, ious, low = decoder.decode(points, labels, box, mask_input, multimask)   # all candidates

Backends (``Pipeline(decoder=...)``):

- ``"onnx"``: :class:`~.decoder_core.DecoderCore` exported once per SAM model and run in
  onnxruntime (CPU); the export is cached on disk and verified (:mod:`.onnx_decoder`);
- ``"fast"``: the same restructured decoder in torch (any device);
- ``"torch"``: SAM's ``SamPredictor.predict`` (the reference; also the fallback);
- ``"auto"``: ``onnx`` on the CPU when onnxruntime is installed, else ``fast``.

Compared with ``SamPredictor.predict`` the fast paths also (1) cache per-image work across edits,
(2) compute the low-res logits and the image-size mask of only the candidate the cascade keeps
(``decode_best``: the single one, or the best of three by predicted IoU, chosen inside the graph),
cropping the padded square before upsampling. ``decode`` (every candidate, upscaled when read)
runs the torch module. The upscaling is SAM's own
(bilinear to the padded square, crop, bilinear to the image), so a candidate's full mask equals
what SAM computes from the same low-res logits.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

DECODERS = ("auto", "onnx", "fast", "torch")


def upscale_logits(low, input_size: tuple[int, int], original_size: tuple[int, int], long_side: int):
    """SAM's ``postprocess_masks`` for one candidate. low: torch (m, m) logits over the padded
    ``long_side`` square -> torch (H, W) logits, (H, W) = ``original_size``.

    Only the rows/columns of the low-res grid that the crop needs are upsampled (same scale, same
    sample positions, so the same values as upsampling the whole square and cropping)."""
    import torch.nn.functional as F

    m = int(low.shape[-1])
    nh, nw = (int(s) for s in input_size)
    x = low[None, None]
    if long_side % m == 0:
        f = long_side // m
        r, c = min(m, math.ceil(nh / f) + 2), min(m, math.ceil(nw / f) + 2)
        x = F.interpolate(x[..., :r, :c], (r * f, c * f), mode="bilinear", align_corners=False)
    else:
        x = F.interpolate(x, (long_side, long_side), mode="bilinear", align_corners=False)
    x = x[..., :nh, :nw]
    if (nh, nw) != tuple(original_size):
        x = F.interpolate(x, tuple(int(s) for s in original_size), mode="bilinear", align_corners=False)
    return x[0, 0]


class LazyMasks:
    """(C, H, W) bool masks of C candidates, each upscaled on first access.

    ``masks[i]`` -> (H, W) bool numpy array, a view of one (C, H, W) buffer that
    ``np.asarray(masks)`` returns whole (computing the candidates not read yet)."""

    dtype = np.dtype(bool)

    def __init__(self, low, input_size, original_size, long_side: int, threshold: float):
        self._low = low                                   # torch (C, m, m)
        self._args = (tuple(input_size), tuple(original_size), int(long_side))
        self._threshold = float(threshold)
        self.shape = (int(low.shape[0]), *(int(s) for s in original_size))
        self._buffer = np.empty(self.shape, bool)         # pages untouched until a candidate is read
        self._done: set[int] = set()

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            n, i = len(self), int(index)
            if not -n <= i < n:
                raise IndexError(f"candidate {index} of {n}")
            i %= n
            if i not in self._done:
                import torch

                with torch.inference_mode():
                    up = upscale_logits(self._low[i].float(), *self._args) > self._threshold
                    self._buffer[i] = up.cpu().numpy()
                self._done.add(i)
            return self._buffer[i]
        return np.asarray(self)[index]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __array__(self, dtype=None, copy=None):
        for i in range(len(self)):
            self[i]
        return self._buffer if dtype is None else self._buffer.astype(dtype)


class FastDecoder:
    """Per SAM model: the restructured decoder (torch or onnxruntime) and per-image caches."""

    def __init__(self, sam_bundle, backend: str = "fast", threads: int | None = None,
                 cache_dir: str | Path | None = None, keep_images: int = 2):
        import torch
        from segment_anything.utils.transforms import ResizeLongestSide

        from .decoder_core import DecoderCore

        if backend not in ("fast", "onnx"):
            raise ValueError(f"backend must be 'fast' or 'onnx', got {backend!r}")
        model = sam_bundle.model
        self.model, self.device = model, sam_bundle.device
        self.dtype = model.mask_decoder.iou_token.weight.dtype   # the decoder's (fp32 when the encoder is fp16)
        self.long_side = int(model.image_encoder.img_size)
        self.threshold = float(model.mask_threshold)
        self.transform = ResizeLongestSide(self.long_side)
        self.core = DecoderCore(model).eval()
        self.backend = backend
        self.ort = None
        self.tokens = None
        if backend == "onnx":
            from .onnx_decoder import load_decoder_graphs

            if torch.device(self.device).type != "cpu" or self.dtype != torch.float32:
                raise ValueError("the onnx backend runs float32 models on the CPU")
            self.ort = load_decoder_graphs(self.core, model, sam_bundle.model_id,
                                           Path(cache_dir) if cache_dir else None,
                                           threads or torch.get_num_threads())
            from .prompt_tokens import PromptTokens

            self.tokens = PromptTokens(model.prompt_encoder)
        self._images: OrderedDict[int, tuple[Any, tuple]] = OrderedDict()
        self._keep = max(1, int(keep_images))

    def per_image(self, features) -> tuple:
        """The per-image tensors of ``features`` (1, C, g, g), computed once per embedding object."""
        key = id(features)
        hit = self._images.get(key)
        if hit is not None and hit[0] is features:
            self._images.move_to_end(key)
            return hit[1]
        import torch

        if self.ort is not None:
            tensors = tuple(self.ort.run("image", features.detach().float().cpu().contiguous().numpy()))
        else:
            with torch.inference_mode():
                tensors = self.core.per_image(features)
        self._images[key] = (features, tensors)      # holding ``features`` keeps its id unique
        while len(self._images) > self._keep:
            self._images.popitem(last=False)
        return tensors

    def bind(self, features, input_size: tuple[int, int], original_size: tuple[int, int]) -> BoundDecoder:
        """A :class:`~.refine.MaskDecoder` on one cached embedding: features (1, C, g, g) torch,
        input_size (h, w) after SAM's resize, original_size (H, W) of the image."""
        return BoundDecoder(self, features, tuple(input_size), tuple(original_size))


class BoundDecoder:
    """:class:`~.refine.MaskDecoder` (``SamPredictor.predict`` semantics) on one embedding.

    ``decode_best`` (what the cascade calls) returns only the candidate ``predict`` ranks first,
    computed in the engine's backend; ``decode`` returns every candidate (indexing its masks
    gives (H, W) bool arrays, see :class:`LazyMasks`) and always runs the torch module."""

    def __init__(self, engine: FastDecoder, features, input_size, original_size):
        self.engine, self.features = engine, features
        self.input_size, self.original_size = input_size, original_size

    def _prompts(self, points, labels, box, mask_input):
        """-> sparse prompt tokens (N, C) torch, mask prompt (1, 1, m, m) torch or None."""
        import torch

        e = self.engine
        coords = e.transform.apply_coords(np.asarray(points, np.float32), self.original_size)
        pts = (torch.as_tensor(coords, dtype=torch.float, device=e.device)[None],
               torch.as_tensor(np.asarray(labels), dtype=torch.int, device=e.device)[None])
        box_t = None
        if box is not None:
            b = e.transform.apply_boxes(np.asarray(box, np.float32), self.original_size)
            box_t = torch.as_tensor(b, dtype=torch.float, device=e.device)[None]
        sparse = e.model.prompt_encoder(pts, box_t, None)[0][0].to(e.dtype)          # (N, C)
        mask_t = None
        if mask_input is not None:
            mask_t = torch.as_tensor(np.asarray(mask_input, np.float32), device=e.device)[None, None]
        return sparse, mask_t

    def _torch(self, sparse, mask_t, multimask):
        """The torch module on the per-image tensors (the onnx engine's, numpy, are the same
        numbers: the export is verified)."""
        import torch

        e = self.engine
        pim = e.per_image(self.features)
        if e.ort is not None:
            pim = [torch.from_numpy(a) for a in pim]
        if mask_t is None:
            return e.core.forward_nomask(sparse, *pim[4:], multimask=multimask)
        return e.core.forward_mask(sparse, mask_t.to(e.dtype), *pim[:4], multimask=multimask)

    def decode_best(self, points, labels, box, mask_input, multimask):
        """-> mask (H, W) bool, ious (C,) float32, low (m, m) float32, index: the candidate
        ``predict`` ranks first (``index`` into the C = 3 or 1 candidates ``predict`` returns)."""
        import torch

        e = self.engine
        with torch.inference_mode():
            if e.ort is not None:
                coords = e.transform.apply_coords(np.asarray(points, np.float32), self.original_size)
                if box is not None:
                    box = e.transform.apply_boxes(np.asarray(box, np.float32), self.original_size)
                sparse = e.tokens(coords, labels, box)
                pim = e.per_image(self.features)
                flag = np.array(bool(multimask))
                if mask_input is None:
                    low_np, iou_np, index = e.ort.run("nomask", sparse, *pim[4:], flag)
                else:
                    mask_np = np.asarray(mask_input, np.float32)[None, None]
                    low_np, iou_np, index = e.ort.run("mask", sparse, mask_np, *pim[:4], flag)
                low = torch.from_numpy(low_np[0])
            else:
                sparse, mask_t = self._prompts(points, labels, box, mask_input)
                low, iou, index = self._torch(sparse, mask_t, torch.tensor(bool(multimask), device=e.device))
                low, iou_np = low[0], iou.float().cpu().numpy()
            index = int(index)
            mask = (upscale_logits(low.float(), self.input_size, self.original_size, e.long_side)
                    > e.threshold).cpu().numpy()
            low_np = low.float().cpu().numpy()
        sel = slice(1, None) if multimask else slice(0, 1)
        return (mask, np.ascontiguousarray(iou_np[sel], dtype=np.float32), low_np,
                index - 1 if multimask else index)

    def decode(self, points, labels, box, mask_input, multimask):
        import torch

        e = self.engine
        with torch.inference_mode():
            sparse, mask_t = self._prompts(points, labels, box, mask_input)
            low, iou = self._torch(sparse, mask_t, None)
            sel = slice(1, None) if multimask else slice(0, 1)
            low, iou_np = low[sel], iou.float().cpu().numpy()[sel]
            low_np = low.float().cpu().numpy()
        masks = LazyMasks(low, self.input_size, self.original_size, e.long_side, e.threshold)
        return masks, np.ascontiguousarray(iou_np, dtype=np.float32), low_np.astype(np.float32, copy=False)


def resolve_backend(choice: str, sam_bundle) -> str:
    """The backend ``choice`` means for this model: "onnx", "fast" or "torch"."""
    import torch

    if choice not in DECODERS:
        raise ValueError(f"decoder must be one of {', '.join(DECODERS)}, got {choice!r}")
    if choice != "auto":
        return choice
    from .onnx_cache import ort_available

    on_cpu = (torch.device(sam_bundle.device).type == "cpu"
              and sam_bundle.model.mask_decoder.iou_token.weight.dtype == torch.float32)
    return "onnx" if on_cpu and ort_available() else "fast"


def make_decoder(sam_bundle, choice: str = "auto", threads: int | None = None,
                 cache_dir: str | Path | None = None) -> FastDecoder | None:
    """The fast decoder engine for ``choice`` (see :data:`DECODERS`), falling back
    onnx -> fast -> None (None: use SAM's own ``predict``), with a log message for each step."""
    backend = resolve_backend(choice, sam_bundle)
    if backend == "onnx":
        from .onnx_cache import ort_available

        if not ort_available():
            log.warning("onnxruntime (or onnx) is not installed: refining with the torch fast path "
                        "(pip install onnx onnxruntime for the faster one)")
            backend = "fast"
        else:
            try:
                return FastDecoder(sam_bundle, "onnx", threads, cache_dir)
            except Exception as exc:  # noqa: BLE001 - any export/runtime failure: use the next path
                log.warning("ONNX decoder unavailable (%s: %s); using the torch fast path",
                            type(exc).__name__, exc)
                backend = "fast"
    if backend == "fast":
        try:
            return FastDecoder(sam_bundle, "fast", threads)
        except Exception as exc:  # noqa: BLE001
            log.warning("fast decoder unavailable (%s: %s); using SAM's predict", type(exc).__name__, exc)
    return None


def default_cache_dir() -> Path | None:
    """Where exported decoders are kept: ``<models dir>/decoders`` (None if it cannot be known)."""
    try:
        from ..models.registry import models_dir

        return models_dir() / "decoders"
    except Exception:  # noqa: BLE001 - no cache only costs the export time
        return None
