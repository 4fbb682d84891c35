"""SAM's image encoder in onnxruntime (CPU), where it pays: small encoders (MobileSAM's TinyViT).

Measured on 2 CPU cores (docs/benchmarks.md): MobileSAM's TinyViT takes ~3-4 s per 1024-px
image in torch eager and ~0.7 s in onnxruntime (embeddings equal to ~5e-6); SAM ViT-B gains
little (~16 s vs ~20 s) for a 40 s export and a 360 MB file, so ``"auto"`` uses onnxruntime
only for encoders of at most :data:`AUTO_MAX_PARAMS` parameters.

    encoder = make_encoder(sam_bundle, "auto")    # None -> SamPredictor.set_image (reference)
    encoder.set_image(predictor, image)           # same effect as predictor.set_image(image)
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

ENCODERS = ("auto", "onnx", "torch")
FORMAT = 1
AUTO_MAX_PARAMS = 20_000_000
#: largest |embedding| difference accepted between a fresh export and torch
EXPORT_TOLERANCE = 1e-3


class OrtImageEncoder:
    """The SAM image encoder of one model as an onnxruntime session."""

    def __init__(self, sam_bundle, threads: int | None = None, cache_dir: str | Path | None = None):
        import torch

        from .onnx_cache import load_or_export, weights_key

        if torch.device(sam_bundle.device).type != "cpu" or sam_bundle.dtype != torch.float32:
            raise ValueError("the onnx encoder runs float32 models on the CPU")
        encoder = sam_bundle.model.image_encoder
        self.backend = "onnx"
        key = weights_key([encoder], f"encoder-v{FORMAT}|{sam_bundle.model_id}")
        self.graphs = load_or_export(key, Path(cache_dir) if cache_dir else None, export_encoder,
                                     verify_encoder, (encoder,), threads or torch.get_num_threads())

    def set_image(self, predictor, image: np.ndarray) -> None:
        """``predictor.set_image(image)`` with the encoder in onnxruntime. image: (H, W, 3) uint8
        RGB. Sets the predictor's ``features`` (1, C, g, g), ``input_size``, ``original_size``."""
        import torch

        model = predictor.model
        if model.image_format != "RGB":
            image = image[..., ::-1]
        x = torch.as_tensor(predictor.transform.apply_image(image), device=predictor.device)
        x = x.permute(2, 0, 1).contiguous()[None, :, :, :]
        predictor.reset_image()
        predictor.original_size = tuple(image.shape[:2])
        predictor.input_size = tuple(x.shape[-2:])
        with torch.inference_mode():
            x = model.preprocess(x)
        predictor.features = torch.from_numpy(self.graphs.run("encoder", x.numpy())[0])
        predictor.is_image_set = True


def export_encoder(encoder) -> dict[str, bytes]:
    """SAM's image ``encoder`` as one ONNX graph, ``encoder``: image (1, 3, S, S) -> features."""
    import torch

    from .onnx_cache import export_onnx

    side = int(encoder.img_size)
    return {"encoder": export_onnx(encoder, (torch.zeros(1, 3, side, side),), ["image"], ["features"])}


def verify_encoder(graphs, encoder) -> None:
    """``RuntimeError`` when ``graphs`` and ``encoder`` differ by more than :data:`EXPORT_TOLERANCE`
    on a random image."""
    import torch

    side = int(encoder.img_size)
    x = torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ref = encoder(x).numpy()
    worst = float(np.abs(graphs.run("encoder", x.numpy())[0] - ref).max())
    if not worst <= EXPORT_TOLERANCE:
        raise RuntimeError(f"exported image encoder differs from torch by {worst:.3g}")


def make_encoder(sam_bundle, choice: str = "auto", threads: int | None = None,
                 cache_dir: str | Path | None = None) -> OrtImageEncoder | None:
    """The onnxruntime encoder for ``choice`` (see :data:`ENCODERS`), or None for SAM's torch
    encoder (also the fallback, with a log message, when onnxruntime is missing or fails)."""
    import torch

    from .onnx_cache import ort_available

    if choice not in ENCODERS:
        raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}, got {choice!r}")
    if choice == "torch":
        return None
    on_cpu = torch.device(sam_bundle.device).type == "cpu" and sam_bundle.dtype == torch.float32
    n_params = sum(p.numel() for p in sam_bundle.model.image_encoder.parameters())
    if choice == "auto" and not (on_cpu and n_params <= AUTO_MAX_PARAMS and ort_available()):
        return None
    if not ort_available():
        log.warning("onnxruntime (or onnx) is not installed: encoding images with torch")
        return None
    try:
        return OrtImageEncoder(sam_bundle, threads, cache_dir)
    except Exception as exc:  # noqa: BLE001 - any export/runtime failure: use torch
        log.warning("ONNX image encoder unavailable (%s: %s); encoding with torch", type(exc).__name__, exc)
        return None
