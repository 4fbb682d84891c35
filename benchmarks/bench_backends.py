"""Time each SAM backend on the CPU: image encoder, one decoder call, the three-stage cascade.

    python benchmarks/bench_backends.py                       # default set, ~5-10 min on 2 cores
    python benchmarks/bench_backends.py --backends sam2.1_tiny,mobile_sam --repeat 20
    python benchmarks/bench_backends.py --backends all        # + SAM 2.1 large, HQ ViT-L/H

Full-size architectures with random weights (timings only; pretrained weights cannot be
downloaded here), built from the real classes and run through the backend protocol the
pipeline uses (``core.sam.backends``). Per backend ``NAME``:

- ``NAME.encode_s``: median seconds of ``backend.encode`` on a 1024x768 image (after a warm-up);
  ``NAME.encode_cpu_s``: its CPU time (the process, all threads: stable on a loaded machine);
- ``NAME.decoder_call_ms``: median of one decoder call (3+3 points + mask_input, 3 candidates)
  on the cached embedding: the call the cascade makes twice;
- ``NAME.cascade_ms``: median of the whole cascade (``method.refine.iter_cascade``, 3 passes);
  ``NAME.cascade_cpu_ms``: its CPU time;
- ``NAME.cascade_vs_sam1_ratio``: ``cascade_ms`` over SAM 1 ViT-B's in the same run through
  SAM's own predictor (``decoder="torch"``);
- ``NAME.cascade_vs_sam1_fast_ratio``: the same over SAM 1 ViT-B's default decoder (onnxruntime
  restructured decoder, ``decoder="auto"``), what the SAM 1 presets actually run;
- every backend runs its default decoder (``decoder="auto"``: SAM 2.1 the restructured decoder,
  HQ-SAM the cached-HQ-feature decoder); for SAM 2.1 and HQ-SAM also ``NAME_torch.decoder_call_ms``
  / ``.cascade_ms`` / ``.cascade_cpu_ms`` (their package's ``predict``, same embedding) and
  ``NAME.fast_vs_torch_cascade_ratio`` (by wall time) / ``NAME.fast_vs_torch_cascade_cpu_ratio``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import emit, median_ms, test_image

HW = (768, 1024)
POINTS = np.array([[420, 300], [470, 330], [440, 380], [250, 150], [700, 560], [620, 120]], np.float32)
LABELS = np.array([1, 1, 1, 0, 0, 0], np.int32)
VIT_B = {"embed_dim": 768, "depth": 12, "num_heads": 12, "patch": 16, "img_size": 1024,
         "global_attn_indexes": [2, 5, 8, 11], "window_size": 14, "prompt_dim": 256, "mask_in_chans": 16,
         "decoder_depth": 2, "decoder_mlp_dim": 2048, "decoder_num_heads": 8, "iou_hidden": 256}
VIT_L = {**VIT_B, "embed_dim": 1024, "depth": 24, "num_heads": 16, "global_attn_indexes": [5, 11, 17, 23]}
VIT_H = {**VIT_B, "embed_dim": 1280, "depth": 32, "num_heads": 16, "global_attn_indexes": [7, 15, 23, 31]}
SAM2 = {"sam2.1_tiny": (96, (1, 2, 7, 2)), "sam2.1_small": (96, (1, 2, 11, 2)),
        "sam2.1_base_plus": (112, (2, 3, 16, 3)), "sam2.1_large": (144, (2, 6, 36, 4))}
DEFAULT = ("sam1_vit_b", "mobile_sam", "sam2.1_tiny", "sam2.1_small", "sam2.1_base_plus", "hq_vit_b",
           "hq_vit_tiny")
ALL = DEFAULT + ("sam2.1_large", "hq_vit_l", "hq_vit_h")
TIMES = ("encode_s", "encode_cpu_s", "decoder_call_ms", "cascade_ms", "cascade_cpu_ms")


def build_bundle(name: str):
    """(SamBundle with random weights, decoder choice) for a backend name."""
    import torch

    from zsas_gui.core.models.bundles import SamBundle
    from zsas_gui.core.models.loading import build_sam_from_arch
    from zsas_gui.core.models.mobile_sam import mobile_sam_arch

    torch.manual_seed(0)
    family = "sam1"
    if name in SAM2:
        from zsas_gui.core.models.sam2_loading import PACKAGE_CONFIGS, build_sam2_model, package_config_file

        family = "sam2"
        model = build_sam2_model(package_config_file(PACKAGE_CONFIGS[(True, *SAM2[name])]))
    elif name.startswith("hq_"):
        from zsas_gui.core.models.hq_loading import build_hq_from_arch

        family = "sam_hq"
        if name == "hq_vit_tiny":
            arch = {**mobile_sam_arch(), "hq": True, "vit_dim": 160}
        else:
            base = {"hq_vit_b": VIT_B, "hq_vit_l": VIT_L, "hq_vit_h": VIT_H}[name]
            arch = {**base, "hq": True, "vit_dim": base["embed_dim"]}
        model = build_hq_from_arch(arch)
    elif name == "mobile_sam":
        model = build_sam_from_arch(mobile_sam_arch())
    else:
        model = build_sam_from_arch(VIT_B)
    return SamBundle(model=model.eval(), model_id=f"random:{name}", device=torch.device("cpu"),
                     dtype=torch.float32, info={"random_test_model": True}, family=family)


def encode(backend, image, repeat: int, warmup: int):
    """(embedding, median wall seconds, median CPU seconds of ``backend.encode``)."""
    for _ in range(warmup):
        backend.encode(image)
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        emb = backend.encode(image)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return emb, statistics.median(wall), statistics.median(cpu)


def measure(bundle, image, decoder: str, repeat: int, encode_repeat: int, warmup: int,
            emb=None) -> dict[str, float]:
    """Timings of one backend; ``emb``: an embedding of ``image`` to reuse (no encoder run)."""
    import torch

    from zsas_gui.core.method.refine import best_candidate, iter_cascade
    from zsas_gui.core.sam.backends import make_backend
    from zsas_gui.core.types import Prompts

    backend = make_backend(bundle, decoder=decoder)
    _ = backend.decoder_name                              # builds (exports) a fast decoder now, untimed
    getattr(backend, "image_encoder", lambda: None)()     # and SAM 1's onnxruntime encoder (MobileSAM)
    encode_s = encode_cpu_s = float("nan")
    if emb is None:
        emb, encode_s, encode_cpu_s = encode(backend, image, encode_repeat, warmup)
    dec = backend.decoder(emb)
    prompts = Prompts(POINTS, LABELS)
    _, _, low, _ = best_candidate(dec, POINTS, LABELS, None, None, multimask=False)
    with torch.inference_mode():
        call = median_ms(lambda: best_candidate(dec, POINTS, LABELS, None, low, multimask=True), repeat, 2)
        cascade = median_ms(lambda: list(iter_cascade(dec, prompts)), repeat, 1)
        cascade_cpu = median_ms(lambda: list(iter_cascade(dec, prompts)), repeat, 0, time.process_time)
    stages = len(list(iter_cascade(dec, prompts)))
    params = sum(p.numel() for p in bundle.model.parameters()) / 1e6
    return {"encode_s": encode_s, "encode_cpu_s": encode_cpu_s, "decoder_call_ms": call,
            "cascade_ms": cascade, "cascade_cpu_ms": cascade_cpu,
            "stages": stages, "params_m": params, "decoder": backend.decoder_name, "embedding": emb}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", default=",".join(DEFAULT), help=f"comma list of {', '.join(ALL)}, or 'all'")
    ap.add_argument("--repeat", type=int, default=15, help="decoder/cascade repetitions (median)")
    ap.add_argument("--encode-repeat", type=int, default=2, help="timed encodes (median)")
    ap.add_argument("--encode-warmup", type=int, default=1, help="untimed encodes first")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    names = ALL if args.backends == "all" else tuple(n.strip() for n in args.backends.split(",") if n.strip())
    unknown = sorted(set(names) - set(ALL))
    if unknown:
        ap.error(f"unknown backends {unknown}; known: {', '.join(ALL)}")
    image, what = test_image(HW)
    emit("image", what)
    emit("torch_threads", torch.get_num_threads())
    warnings.simplefilter("ignore")                       # third-party deprecations
    ref, emb = {}, None
    vit_b = build_bundle("sam1_vit_b")
    for path in ("torch", "auto"):       # SAM 1 ViT-B: predictor path, default path (same embedding)
        r = measure(vit_b, image, path, args.repeat, args.encode_repeat, args.encode_warmup, emb)
        ref[path], emb = r, r["embedding"]
        tag = "sam1_vit_b" if path == "torch" else f"sam1_vit_b_{r['decoder']}"
        keys = TIMES if path == "torch" else TIMES[2:]
        for key in keys:
            emit(f"{tag}.{key}", r[key])
    del vit_b, emb
    for name in names:
        if name == "sam1_vit_b":
            continue
        bundle = build_bundle(name)
        r = measure(bundle, image, "auto", args.repeat, args.encode_repeat, args.encode_warmup)
        if name.startswith(("hq_", "sam2")):     # their package's predict too, on the same embedding
            t = measure(bundle, image, "torch", args.repeat, args.encode_repeat, args.encode_warmup, r["embedding"])
            for key in TIMES[2:]:
                emit(f"{name}_torch.{key}", t[key])
            emit(f"{name}.fast_vs_torch_cascade_ratio", r["cascade_ms"] / t["cascade_ms"])
            emit(f"{name}.fast_vs_torch_cascade_cpu_ratio", r["cascade_cpu_ms"] / t["cascade_cpu_ms"])
        del bundle
        emit(f"{name}.params_m", r["params_m"])
        emit(f"{name}.decoder", r["decoder"])
        for key in TIMES:
            emit(f"{name}.{key}", r[key])
        emit(f"{name}.cascade_vs_sam1_ratio", r["cascade_ms"] / ref["torch"]["cascade_ms"])
        emit(f"{name}.cascade_vs_sam1_fast_ratio", r["cascade_ms"] / ref["auto"]["cascade_ms"])
        emit(f"{name}.cascade_cpu_vs_sam1_ratio", r["cascade_cpu_ms"] / ref["torch"]["cascade_cpu_ms"])
        emit(f"{name}.stages", r["stages"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
