""":class:`~.decoder_core.DecoderCore` as ONNX graphs for onnxruntime (cached by :mod:`.onnx_cache`).

Three graphs per SAM model: ``image`` (the embedding (1, C, g, g) -> the 8 per-image tensors of
``DecoderCore.per_image``), ``nomask`` and ``mask`` (one decoder call without/with a mask prompt;
inputs: the prompt tokens ``sparse`` (N, C) (N dynamic), 4 of the per-image tensors and
``multimask`` (0-d bool); outputs ``low`` (1, m, m) logits over SAM's padded square of the
candidate SAM ranks first, ``iou`` (4,) and ``index`` (0-d int64, that candidate's token)). No image
size is baked in: the crop/resize to the image happens outside (in torch, as SAM does it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .onnx_cache import OrtGraphs, export_onnx, load_or_export, weights_key

FORMAT = 5
INPUTS = {"image": ["features"],
          "nomask": ["sparse", "keys", "k0", "v0", "q0", "multimask"],
          "mask": ["sparse", "mask_input", "img", "pk", "pv", "pq", "multimask"]}
OUTPUTS = ["low", "iou", "index"]
#: largest |logit| or |iou| difference accepted between a fresh export and the torch module
EXPORT_TOLERANCE = 1e-3


def export_graphs(core) -> dict[str, bytes]:
    """``core`` (a CPU float32 :class:`DecoderCore`) as ONNX bytes, one per graph."""
    import torch

    class _NoMask(torch.nn.Module):
        def __init__(self, c):
            super().__init__()
            self.c = c

        def forward(self, sparse, keys, k0, v0, q0, multimask):
            return self.c.forward_nomask(sparse, keys, k0, v0, q0, multimask)

    class _Mask(_NoMask):
        def forward(self, sparse, mask_input, img, pk, pv, pq, multimask):
            return self.c.forward_mask(sparse, mask_input, img, pk, pv, pq, multimask)

    class _Image(_NoMask):
        def forward(self, features):
            return self.c.per_image(features)

    per_image = _random_inputs(core, 0)[1]
    sparse, mask = torch.zeros(3, core.C), torch.zeros(1, 1, 4 * core.g, 4 * core.g)
    features, multi = torch.zeros(1, core.C, core.g, core.g), torch.tensor(True)
    return {"image": export_onnx(_Image(core), (features,), INPUTS["image"],
                                 ["img", "pk", "pv", "pq", "keys", "k0", "v0", "q0"]),
            "nomask": export_onnx(_NoMask(core), (sparse, *per_image, multi), INPUTS["nomask"], OUTPUTS,
                                  {"sparse": {0: "n"}}),
            "mask": export_onnx(_Mask(core), (sparse, mask, *per_image, multi), INPUTS["mask"], OUTPUTS,
                                {"sparse": {0: "n"}})}


def _random_inputs(core, seed: int):
    import torch

    gen = torch.Generator().manual_seed(seed)
    hw, C, ci = core.g * core.g, core.C, core.pk_dim
    per_image = [torch.randn(hw, n, generator=gen) for n in (C, ci, ci, ci)]
    return gen, per_image


def verify(graphs: OrtGraphs, core, seed: int = 0) -> float:
    """Largest difference between the sessions and the torch module on random inputs (both
    graphs, two prompt counts, single and multimask; a different chosen candidate counts as 1);
    ``RuntimeError`` above :data:`EXPORT_TOLERANCE`."""
    import torch

    gen, per_image = _random_inputs(core, seed)
    mask = torch.randn(1, 1, 4 * core.g, 4 * core.g, generator=gen)
    worst = 0.0
    with torch.inference_mode():
        for n, multi in ((2, True), (7, False), (7, True)):
            sparse = torch.randn(n, core.C, generator=gen)
            for graph, args in (("nomask", [sparse, *per_image]), ("mask", [sparse, mask, *per_image])):
                args.append(torch.tensor(multi))
                ref = (core.forward_nomask if graph == "nomask" else core.forward_mask)(*args)
                got = graphs.run(graph, *[a.numpy() for a in args])
                worst = max([worst] + [float(np.abs(a - b.numpy()).max()) for a, b in zip(got, ref)])
        features = torch.randn(1, core.C, core.g, core.g, generator=gen)
        got = graphs.run("image", features.numpy())
        worst = max([worst] + [float(np.abs(a - b.numpy()).max()) for a, b in zip(got, core.per_image(features))])
    if not worst <= EXPORT_TOLERANCE:
        raise RuntimeError(f"exported decoder differs from torch by {worst:.3g}")
    return worst


def load_decoder_graphs(core, sam, model_id: str, cache_dir: Path | None, threads: int) -> OrtGraphs:
    """Sessions running ``core`` (exported once per model; see :func:`.onnx_cache.load_or_export`)."""
    key = weights_key([sam.prompt_encoder, sam.mask_decoder], f"decoder-v{FORMAT}|{model_id}")
    return load_or_export(key, cache_dir, export_graphs, verify, (core,), threads)
