"""Time the dense V-V anomaly mapper (random weights: timings only, maps are meaningless).

    python benchmarks/bench_clip.py                       # tiny model, seconds
    python benchmarks/bench_clip.py --arch ViT-B-16-quickgelu --size 224
    python benchmarks/bench_clip.py --arch ViT-L-14-336-quickgelu --size 518 --repeat 1   # slow

Reports: model build, text features for the prompt ensemble (cold, then cached), encode_image,
anomaly() from cached tokens, and the token size per image.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TINY = {"embed_dim": 16, "quick_gelu": True,
        "vision_cfg": {"image_size": 32, "layers": 3, "width": 32, "patch_size": 8, "head_width": 8},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 4, "layers": 1}}


def _timed(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default=None, help="open_clip config name (default: a tiny test model)")
    ap.add_argument("--size", type=int, default=None, help="input side (force_image_size)")
    ap.add_argument("--image", default="480x640", help="HxW of the random test image")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--short-prompts", action="store_true", help="2 states x 2 templates per class")
    args = ap.parse_args(argv)

    import open_clip
    import torch

    from zsas_gui.core.maps.anomaly_map import VVAnomalyMapper
    from zsas_gui.core.models.bundles import ClipBundle
    from zsas_gui.core.types import TextPrompts

    if args.threads:
        torch.set_num_threads(args.threads)
    name = args.arch
    t0 = time.perf_counter()
    if name is None:
        name = "zsas-bench-tiny"
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, f"{name}.json").write_text(json.dumps(TINY))
            open_clip.add_model_config(tmp)
    torch.manual_seed(0)
    model = open_clip.create_model(name, pretrained=None, force_image_size=args.size).eval()
    size = int(model.visual.image_size[0])
    bundle = ClipBundle(model=model, tokenizer=open_clip.get_tokenizer(name), model_id=f"{name}@{size}",
                        image_size=size, device="cpu", dtype=torch.float32)
    mapper = VVAnomalyMapper(bundle)
    build_s = time.perf_counter() - t0

    prompts = TextPrompts()
    if args.short_prompts:
        prompts = TextPrompts(normal_states=("{}", "flawless {}"), abnormal_states=("damaged {}", "broken {}"),
                              templates=("a photo of a {}.", "a photo of the {}."))
    n_sent = len(prompts.sentences(False)) + len(prompts.sentences(True))
    t0 = time.perf_counter()
    mapper.text_features(prompts)
    text_cold = time.perf_counter() - t0
    text_warm, _ = _timed(lambda: mapper.text_features(prompts), max(args.repeat, 3))

    h, w = (int(v) for v in args.image.lower().split("x"))
    image = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    mapper.encode_image(image)                                  # warm-up
    enc, tokens = _timed(lambda: mapper.encode_image(image), args.repeat)
    ano, _ = _timed(lambda: mapper.anomaly(tokens, prompts), max(args.repeat, 3))

    print(f"model {name} @ {size} (grid {mapper.grid}, {len(model.visual.transformer.resblocks)} blocks, "
          f"vv_start {mapper.vv_start}, depths {list(mapper.depths)}), torch threads {torch.get_num_threads()}")
    print(f"  build              {build_s * 1e3:9.1f} ms")
    print(f"  text ({n_sent:3d} sent.) {text_cold * 1e3:9.1f} ms cold, {text_warm * 1e3:.3f} ms cached")
    print(f"  encode_image {h}x{w} {enc * 1e3:9.1f} ms")
    print(f"  anomaly()          {ano * 1e3:9.1f} ms")
    print(f"  tokens             {tokens.nbytes / 2**20:9.2f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
