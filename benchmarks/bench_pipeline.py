"""Engine speed on the CPU with full-size random-weight models (issue 2).

    python benchmarks/bench_pipeline.py [--sam vit_b] [--clip ViT-B-16-quickgelu] [--clip-size 448]
                                        [--repeats 3] [--threads N]

Prints ``name: value`` lines:
- clip_forward_ms: one bare CLIP image-tower forward (``model.encode_image``) at --clip-size
- sam_encode_ms: one bare ``SamPredictor.set_image``
- first_pass_ms: our whole first pass on a new image (V-V map + SAM encode + PPG + cascade),
  text features already cached (they are per prompt set, not per image; see text_features_ms)
- first_pass_overhead_ratio: first_pass / (clip_forward + sam_encode)       (aim <= 1.10)
- decoder_call_ms: one bare ``SamPredictor.predict`` (3 + 3 points, single mask)
- refine_ms: our three-stage cascade on the cached embedding (``Pipeline.refine``)
- refine_ratio: refine / (3 x decoder_call)                                  (aim <= 1.3)
Each quantity and its reference are measured interleaved in the same run; medians are reported.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from _common import emit, median_ms, random_clip_bundle, random_sam_bundle, test_image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sam", default="vit_b", choices=("vit_b", "vit_l", "vit_h"))
    ap.add_argument("--clip", default="ViT-B-16-quickgelu")
    ap.add_argument("--clip-size", type=int, default=448)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()

    import torch

    from zsas_gui.core.engine.pipeline import Pipeline
    from zsas_gui.core.models.device import describe
    from zsas_gui.core.types import MethodParams, Prompts, TextPrompts

    if args.threads:
        torch.set_num_threads(args.threads)
    image, image_desc = test_image((768, 1024))
    clip, sam = random_clip_bundle(args.clip, args.clip_size), random_sam_bundle(args.sam)
    pipe = Pipeline(clip, sam)
    params, tp = MethodParams(), TextPrompts(object_name="carpet")
    emit("image", image_desc)
    emit("models", f"{clip.model_id} + {sam.model_id} (random weights)")
    emit("device", f"{describe(clip.device, clip.dtype)}, torch threads {torch.get_num_threads()}")

    t0 = time.perf_counter()
    pipe.mapper.text_features(tp)
    emit("text_features_ms", (time.perf_counter() - t0) * 1e3)

    from zsas_gui.core.maps.anomaly_map import preprocess

    x = preprocess(image, clip.image_size, clip.mean, clip.std, clip.device, clip.dtype)
    predictor = pipe.backend.predictor

    def clip_forward():
        with torch.inference_mode():
            clip.model.encode_image(x)

    def sam_encode():
        with torch.inference_mode():
            predictor.set_image(image)

    def first_pass():
        pipe.clear_caches()
        pipe.run("bench", image, params, tp)

    clip_forward(), sam_encode(), first_pass()          # warm-up
    c, s, f = [], [], []
    for _ in range(args.repeats):                        # interleaved: same machine state
        c.append(median_ms(clip_forward, 1, 0))
        s.append(median_ms(sam_encode, 1, 0))
        f.append(median_ms(first_pass, 1, 0))
    clip_ms, sam_ms, first_ms = (statistics.median(v) for v in (c, s, f))
    emit("clip_forward_ms", clip_ms)
    emit("sam_encode_ms", sam_ms)
    emit("first_pass_ms", first_ms)
    emit("first_pass_overhead_ratio", first_ms / (clip_ms + sam_ms))

    feats = pipe.features("bench", image, tp)
    prompts = Prompts([[400, 300], [520, 330], [610, 280], [300, 200], [700, 450], [520, 500]],
                      [1, 1, 1, 0, 0, 0])
    pipe._decoder_for(feats)                              # restore the embedding (no encode)

    def decoder_call():
        predictor.predict(point_coords=prompts.points, point_labels=prompts.labels,
                          multimask_output=False)

    def refine():
        pipe.refine(feats, prompts, params)

    d, r = [], []
    for _ in range(max(5, args.repeats * 3)):
        d.append(median_ms(decoder_call, 1, 1))
        r.append(median_ms(refine, 1, 0))
    dec_ms, ref_ms = statistics.median(d), statistics.median(r)
    emit("decoder_call_ms", dec_ms)
    emit("refine_ms", ref_ms)
    emit("refine_ratio", ref_ms / (3 * dec_ms))
    emit("encoder_calls", f"clip={pipe.encoder_calls['clip']} sam={pipe.encoder_calls['sam']}")
    emit("peak_rss_mb", _peak_rss_mb())


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
