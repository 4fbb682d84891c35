"""Time the three-stage refinement (CPS) on a cached SAM embedding: ours against SAM's torch
``predict`` and against SAM's decoder exported to ONNX (``SamOnnxModel``) in onnxruntime.

    python benchmarks/bench_refine.py                  # full-size vit_b decoder, ~1-2 min
    python benchmarks/bench_refine.py --repeat 9 --threads 1

Random weights (timings only). The decoder is vit_b's exactly (timings do not depend on the
encoder, and the decoder is the same for vit_b/l/h); the image encoder is NOT run: a random
(1, 256, 64, 64) embedding is restored into the predictor, as the pipeline restores cached ones.
Every method runs in the same process, interleaved, `--repeat` rounds; medians are printed as
``name: value`` lines. ``drag_refines_per_s``: ``Pipeline.refine`` (cascade + cleanup) back to
back while the first positive point moves 3 px right and 2 px down each time (a drag), in
``--drag-rounds`` rounds of ``--drag`` refinements; the median round, with the slowest and
fastest round beside it (a burst of load from other tenants slows one round, not the figure).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VIT_B = dict(embed_dim=768, depth=12, num_heads=12, patch=16, img_size=1024, global_attn_indexes=[2, 5, 8, 11],
             window_size=14, prompt_dim=256, mask_in_chans=16, decoder_depth=2, decoder_mlp_dim=2048,
             decoder_num_heads=8, iou_hidden=256)
HW = (768, 1024)                                   # a 1024x768 (W x H) image
POINTS = np.array([[420, 300], [470, 330], [440, 380],          # 3 positive
                   [250, 150], [700, 560], [620, 120]], np.float32)   # 3 negative, (x, y)
LABELS = np.array([1, 1, 1, 0, 0, 0], np.int32)


def _drain(gen):
    out = []
    try:
        while True:
            out.append(next(gen))
    except StopIteration:
        return out


def export_reference(sam, path: Path) -> None:
    """SAM's own ONNX export of the decoder (all 4 masks; traced at this image size)."""
    import torch
    from segment_anything.utils.onnx import SamOnnxModel

    model = SamOnnxModel(sam, return_single_mask=False)
    dummy = (torch.randn(1, 256, 64, 64), torch.randint(0, 1024, (1, 5, 2), dtype=torch.float),
             torch.randint(0, 4, (1, 5), dtype=torch.float), torch.randn(1, 1, 256, 256),
             torch.tensor([1], dtype=torch.float), torch.tensor(HW, dtype=torch.float))
    names = ["image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input", "orig_im_size"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, dummy, str(path), input_names=names,
                          output_names=["masks", "iou_predictions", "low_res_masks"], opset_version=17,
                          dynamic_axes={"point_coords": {1: "n"}, "point_labels": {1: "n"}}, dynamo=False)


class _NoMapper:
    """Stands in for the CLIP mapper: refinement does not use it."""

    model_id = tokens_key = "none"


class OnnxReference:
    """The cascade the way ONNX-based tools run SAM's decoder (one session call per stage)."""

    def __init__(self, path: Path, emb: np.ndarray, threads: int, spinning: bool = True):
        import onnxruntime as ort
        from segment_anything.utils.transforms import ResizeLongestSide

        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        self.sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.tr, self.emb = ResizeLongestSide(1024), emb

    def _call(self, points, labels, box=None, mask=None):
        c = self.tr.apply_coords(points, HW)
        lab = labels.astype(np.float32)
        if box is None:
            c, lab = np.concatenate([c, [[0.0, 0.0]]]), np.append(lab, -1)
        else:
            c = np.concatenate([c, self.tr.apply_boxes(box, HW).reshape(2, 2)])
            lab = np.append(lab, [2, 3])
        feed = {"image_embeddings": self.emb, "point_coords": c[None].astype(np.float32),
                "point_labels": lab[None].astype(np.float32),
                "mask_input": (np.zeros((256, 256), np.float32) if mask is None else mask)[None, None],
                "has_mask_input": np.array([0.0 if mask is None else 1.0], np.float32),
                "orig_im_size": np.array(HW, np.float32)}
        masks, iou, low = self.sess.run(None, feed)
        return masks[0] > 0.0, iou[0], low[0]

    def cascade(self, points, labels):
        from zsas_gui.core.frames import mask_to_box

        m, _, low = self._call(points, labels)                            # stage 1: token 0
        out = [m[0]]
        if not m[0].any():
            return out
        m, iou, low = self._call(points, labels, mask=low[0])
        b = 1 + int(np.argmax(iou[1:]))                                   # stages 2-3: best of 1..3
        out.append(m[b])
        box = mask_to_box(m[b])
        if box is None:
            return out
        m, iou, _ = self._call(points, labels, box=box + np.array([0, 0, 1, 1], np.float32), mask=low[b])
        out.append(m[1 + int(np.argmax(iou[1:]))])
        return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=7, help="interleaved rounds (medians reported)")
    ap.add_argument("--inner", type=int, default=3, help="calls per method per round")
    ap.add_argument("--threads", type=int, default=None, help="torch and onnxruntime threads")
    ap.add_argument("--drag", type=int, default=20, help="refinements per round of the drag test")
    ap.add_argument("--drag-rounds", type=int, default=5, help="rounds of the drag test (median reported)")
    args = ap.parse_args(argv)

    import torch
    from segment_anything import SamPredictor

    from zsas_gui.core.engine.features import ImageFeatures, SamEmbedding
    from zsas_gui.core.engine.pipeline import Pipeline
    from zsas_gui.core.method.refine import PredictorDecoder, iter_cascade
    from zsas_gui.core.models.bundles import SamBundle
    from zsas_gui.core.models.loading import build_sam_from_arch
    from zsas_gui.core.sam.fast_decoder import FastDecoder
    from zsas_gui.core.types import AnomalyResult, MethodParams, Prompts

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    torch.manual_seed(0)
    sam = build_sam_from_arch(VIT_B)
    bundle = SamBundle(model=sam, model_id="bench:vit_b-random", device=torch.device("cpu"),
                       dtype=torch.float32, info={"random_test_model": True})
    emb = torch.randn(1, 256, 64, 64, generator=torch.Generator().manual_seed(1))
    pred = SamPredictor(sam)
    pred.features, pred.input_size, pred.original_size, pred.is_image_set = emb, HW, HW, True
    prompts = Prompts(POINTS, LABELS)
    print("model: SAM vit_b architecture, random weights; encoder not run (random 1x256x64x64 embedding "
          f"restored into the predictor); image {HW[1]}x{HW[0]}; 3 positive + 3 negative points; "
          f"{threads} threads; fp32 CPU")

    t0 = time.perf_counter()
    engines = {"onnx": FastDecoder(bundle, "onnx", threads), "fast": FastDecoder(bundle, "fast", threads)}
    print(f"fast_decoder_setup_s: {time.perf_counter() - t0:.2f}")
    ref_path = Path(tempfile.mkdtemp()) / "sam_decoder.onnx"
    t0 = time.perf_counter()
    export_reference(sam, ref_path)
    onnx_ref = OnnxReference(ref_path, emb.numpy(), threads)                 # onnxruntime defaults
    onnx_ref_nospin = OnnxReference(ref_path, emb.numpy(), threads, spinning=False)
    print(f"reference_onnx_export_s: {time.perf_counter() - t0:.2f}")

    ref_dec = PredictorDecoder(pred)
    bound = {k: e.bind(emb, HW, HW) for k, e in engines.items()}

    def torch_cascade():
        return [s.mask for s in _drain(iter_cascade(ref_dec, prompts))]

    def fast_cascade(kind):
        return [s.mask for s in _drain(iter_cascade(bound[kind], prompts))]

    methods = {
        "decoder_call_ms": lambda: pred.predict(POINTS, LABELS, multimask_output=True),
        "torch_cascade_ms": torch_cascade,
        "onnx_cascade_default_ms": lambda: onnx_ref.cascade(POINTS, LABELS),
        "onnx_cascade_nospin_ms": lambda: onnx_ref_nospin.cascade(POINTS, LABELS),
        "refine_ms": lambda: fast_cascade("onnx"),
        "refine_torch_fast_ms": lambda: fast_cascade("fast"),
    }
    with torch.inference_mode():
        ref_masks = torch_cascade()
        results = {"refine_ms": fast_cascade("onnx"), "refine_torch_fast_ms": fast_cascade("fast"),
                   "onnx_cascade_ms": onnx_ref.cascade(POINTS, LABELS)}
        times: dict[str, list[float]] = {k: [] for k in methods}
        cpu: dict[str, list[float]] = {k: [] for k in methods}
        for _ in range(args.repeat):
            for name, fn in methods.items():
                for _ in range(args.inner):
                    t, c = time.perf_counter(), time.process_time()
                    fn()
                    times[name].append((time.perf_counter() - t) * 1e3)
                    cpu[name].append((time.process_time() - c) * 1e3)
    med = {k: statistics.median(v) for k, v in times.items()}
    # the reference is the faster of onnxruntime's default options and ours (no spin-waiting)
    med["onnx_cascade_ms"] = min(med["onnx_cascade_default_ms"], med["onnx_cascade_nospin_ms"])
    for k in ("decoder_call_ms", "torch_cascade_ms", "onnx_cascade_ms", "onnx_cascade_default_ms",
              "onnx_cascade_nospin_ms", "refine_ms", "refine_torch_fast_ms"):
        print(f"{k}: {med[k]:.1f}")
    print(f"refine_vs_onnx_ratio: {med['refine_ms'] / med['onnx_cascade_ms']:.2f}")
    print(f"refine_vs_torch_ratio: {med['refine_ms'] / med['torch_cascade_ms']:.2f}")
    if threads == 1:   # CPU time of one thread: what the wall time would be on an idle core
        cmed = {k: statistics.median(v) for k, v in cpu.items()}
        connx = min(cmed["onnx_cascade_default_ms"], cmed["onnx_cascade_nospin_ms"])
        print(f"cpu_time_ms (1 thread, immune to other load): torch_cascade {cmed['torch_cascade_ms']:.1f}, "
              f"onnx_cascade {connx:.1f}, refine {cmed['refine_ms']:.1f}, "
              f"refine_torch_fast {cmed['refine_torch_fast_ms']:.1f}; ratio {cmed['refine_ms'] / connx:.2f}")

    # a dragged point: the app's refine (cascade + cleanup) with the first positive point moving
    S = np.zeros(HW, np.float32)
    feats = ImageFeatures("bench", HW, AnomalyResult(S, 0.5), SamEmbedding(emb, HW, HW), "t")
    pipe = Pipeline(None, bundle, mapper=_NoMapper(), decoder="auto")
    params = MethodParams()
    pipe.refine(feats, prompts, params)
    rates, cpu_rates = [], []
    for r in range(args.drag_rounds):        # the point keeps moving along one path across rounds
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(r * args.drag, (r + 1) * args.drag):
            pts = POINTS.copy()
            pts[0] += (3.0 * (i + 1), 2.0 * (i + 1))          # 3 px right, 2 px down each time
            pipe.refine(feats, Prompts(pts, LABELS), params)
        rates.append(args.drag / (time.perf_counter() - t0))
        cpu_rates.append(args.drag / (time.process_time() - c0))
    print(f"drag_refines_per_s: {statistics.median(rates):.1f}   ({pipe.decoder_backend} decoder, Pipeline.refine "
          f"incl. cleanup; median of {args.drag_rounds} rounds of {args.drag} refinements, rounds "
          f"{min(rates):.1f}-{max(rates):.1f}"
          + (f"; {statistics.median(cpu_rates):.1f} by CPU time)" if threads == 1 else ")"))

    def iou_min(masks):
        if len(masks) != len(ref_masks):
            return 0.0
        return min(float((a & b).sum() / max(1, (a | b).sum())) for a, b in zip(masks, ref_masks))

    with torch.inference_mode():   # SAM's own logits of each reference stage mask, at image size
        ref_logits = [sam.postprocess_masks(torch.from_numpy(st.low_res_logits)[None, None], HW, HW)[0, 0].numpy()
                      for st in _drain(iter_cascade(ref_dec, prompts))]
    diff = [a ^ b for a, b in zip(results["refine_ms"], ref_masks)]
    tie = max((float(np.abs(lg[d] - sam.mask_threshold).max()) for lg, d in zip(ref_logits, diff) if d.any()),
              default=0.0)
    print(f"masks_identical: {iou_min(results['refine_ms']):.6f}   (min IoU over the {len(ref_masks)} stages vs "
          f"SamPredictor; differing pixels: {sum(int(d.sum()) for d in diff)}, where SAM's own logit is at most "
          f"{tie:.1e} from the threshold: float rounding)")
    print(f"masks_iou_torch_fast: {iou_min(results['refine_torch_fast_ms']):.6f}")
    print(f"masks_iou_onnx_reference: {iou_min(results['onnx_cascade_ms']):.6f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
