"""SAM 1, SAM 2.1 and HQ-SAM behind one backend protocol: the cascade equals each package's own
predictor called stage by stage; PPG, the caches, explain, eval and `zsas segment` run on each."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from synthetic import blob_image

from zsas_gui.cli import main
from zsas_gui.core.engine.cache import DiskCache
from zsas_gui.core.engine.pipeline import Pipeline
from zsas_gui.core.frames import mask_to_box
from zsas_gui.core.method.ppg import feature_similarity
from zsas_gui.core.types import MethodParams, Prompts

FAMILIES = {"tiny-sam": "sam1", "tiny-sam2": "sam2", "tiny-sam-hq": "sam_hq"}
IMAGE = blob_image((90, 140), [(50, 40), (100, 60)], radius=12)     # non-square: frames matter
PROMPTS = Prompts(np.array([[50, 40], [56, 44], [120, 20]], np.float32), np.array([1, 1, 0], np.int32))


@pytest.fixture(scope="module")
def bundles(tiny_models):
    from zsas_gui.core.models.loading import load_clip, load_sam

    folder = tiny_models[0].parent
    return load_clip(str(tiny_models[0]), device="cpu"), {
        name: load_sam(str(folder / name), device="cpu") for name in FAMILIES}


def sam2_predictor(model):
    import warnings

    from sam2.sam2_image_predictor import SAM2ImagePredictor
    with warnings.catch_warnings():      # its transforms use torch.jit.script (deprecated)
        warnings.simplefilter("ignore", FutureWarning)
        p = SAM2ImagePredictor(model)
    s = model.image_size     # the predictor assumes 1024 px; the tiny model takes 256
    p._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]
    return p


def reference_cascade(family: str, model, image, prompts):
    """The cascade written out with the package's own predictor (masks (H, W) bool, ious)."""
    if family == "sam2":
        p = sam2_predictor(model)
    elif family == "sam_hq":
        from segment_anything_hq import SamPredictor
        p = SamPredictor(model)
    else:
        from segment_anything import SamPredictor
        p = SamPredictor(model)
    p.set_image(image)
    pts, lab = prompts.points, prompts.labels
    out = []
    masks, ious, low = p.predict(point_coords=pts, point_labels=lab, multimask_output=False)
    out.append((masks[0] > 0.5, ious))
    if not out[-1][0].any():
        return out
    masks, ious, low2 = p.predict(point_coords=pts, point_labels=lab, mask_input=low[:1],
                                  multimask_output=True)
    best = int(np.argmax(ious))
    out.append((masks[best] > 0.5, ious))
    box = mask_to_box(out[-1][0])
    if box is None:
        return out
    # the stage-3 box: M2's inclusive pixel box (ALGORITHM.md §3; inside the image already)
    masks, ious, _ = p.predict(point_coords=pts, point_labels=lab, box=box,
                               mask_input=low2[best:best + 1], multimask_output=True)
    out.append((masks[int(np.argmax(ious))] > 0.5, ious))
    return out


@pytest.mark.parametrize(("name", "decoder"), [(name, "torch") for name in FAMILIES]
                         + [("tiny-sam2", "auto"), ("tiny-sam-hq", "auto")])
def test_cascade_equals_the_packages_predictor_stage_by_stage(bundles, name, decoder, tmp_path):
    """``torch``: each backend's reference path; ``auto``: SAM 2.1's restructured decoder and
    HQ-SAM's cached-HQ-feature decoder."""
    clip, sams = bundles
    sam = sams[name]
    assert sam.family == FAMILIES[name]
    ref = reference_cascade(sam.family, sam.model, IMAGE, PROMPTS)
    assert len(ref) == 3, "the test prompts should run all three stages"
    disk = DiskCache(tmp_path / "cache")
    first = Pipeline(clip, sam, decoder=decoder, disk_cache=disk)
    again = Pipeline(clip, sam, decoder=decoder, disk_cache=disk)     # embedding from the disk cache
    for pipe in (first, first, again):                               # fresh, memory cache, disk cache
        result = pipe.run("img", IMAGE, MethodParams(), prompts=PROMPTS)
        assert len(result.stages) == 3
        for stage, (mask, ious) in zip(result.stages, ref):
            assert stage.mask.shape == IMAGE.shape[:2] and stage.mask.dtype == bool
            np.testing.assert_array_equal(stage.mask, mask)
            np.testing.assert_allclose(stage.candidates_iou, ious, rtol=1e-5, atol=1e-6)
            assert stage.low_res_logits.shape == sam.mask_input_size
    assert first.encoder_calls["sam"] == 1 and again.encoder_calls["sam"] == 0
    assert first.backend.name == sam.family
    if sam.family != "sam1":
        assert first.backend.decoder_name == {"torch": "torch", "auto": "fast"}[decoder]


@pytest.mark.parametrize("name", ["tiny-sam2", "tiny-sam-hq"])
def test_fast_decoders_return_every_candidate_as_the_package_does(bundles, name):
    """``decode`` (all candidates: masks, IoU, clamped low-res logits) against the package's
    ``predict`` for each prompt kind the cascade sends, single- and multi-mask."""
    from zsas_gui.core.sam.backends import make_backend

    sam = bundles[1][name]
    fast, reference = make_backend(sam), make_backend(sam, decoder="torch")
    assert fast.decoder_name == "fast"
    emb = fast.encode(IMAGE)
    pts, lab = PROMPTS.points, PROMPTS.labels
    rng = np.random.default_rng(0)
    mask_input = rng.normal(0, 4, sam.mask_input_size).astype(np.float32)
    box = np.array([30, 20, 80, 70], np.float32)
    for box_, mask_ in ((None, None), (None, mask_input), (box, mask_input), (box, None)):
        for multimask in (False, True):
            got = fast.decoder(emb).decode(pts, lab, box_, mask_, multimask)
            want = reference.decoder(emb).decode(pts, lab, box_, mask_, multimask)
            assert [a.shape for a in got] == [b.shape for b in want]
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(got[2], want[2], rtol=1e-4, atol=1e-4)


def test_hq_decoder_computes_the_hq_feature_once_per_embedding(bundles):
    from zsas_gui.core.method.refine import iter_cascade
    from zsas_gui.core.sam.backends import make_backend

    sam = bundles[1]["tiny-sam-hq"]
    calls = []
    hook = sam.model.mask_decoder.compress_vit_feat.register_forward_hook(lambda *_: calls.append(1))
    try:
        backend = make_backend(sam)
        emb = backend.encode(IMAGE)
        for _ in range(2):                         # two edits on the same image
            assert len(list(iter_cascade(backend.decoder(emb), PROMPTS))) == 3
        assert len(calls) == 1, "6 decoder calls, one HQ feature"
        other = backend.encode(IMAGE[::-1].copy())
        list(iter_cascade(backend.decoder(other), PROMPTS))
        assert len(calls) == 2, "a new embedding gets its own HQ feature"
        reference = make_backend(sam, decoder="torch")
        list(iter_cascade(reference.decoder(reference.encode(IMAGE)), PROMPTS))
        assert len(calls) == 2 + 3, "the package's predict recomputes it on every call"
    finally:
        hook.remove()


def package_embedding(sam, image) -> np.ndarray:
    """(C, g, g) image embedding computed by the package's own predictor."""
    if sam.family == "sam2":
        p = sam2_predictor(sam.model)
        p.set_image(image)
        return p.get_image_embedding()[0].numpy()
    from segment_anything import SamPredictor
    from segment_anything_hq import SamPredictor as HqPredictor
    p = (HqPredictor if sam.family == "sam_hq" else SamPredictor)(sam.model)
    p.set_image(image)
    return p.get_image_embedding()[0].numpy()


@pytest.mark.parametrize("name", FAMILIES)
def test_ppg_negatives_use_the_backends_features(bundles, name):
    from zsas_gui.core.sam.sam2_backend import stretched_to_padded

    clip, sams = bundles
    sam = sams[name]
    pipe = Pipeline(clip, sam)
    params = MethodParams(negative_rule="sam_similarity", tau=0.5, k_neg=3)
    feats = pipe.features("img", IMAGE)
    ppg = pipe.propose(feats, params)
    assert ppg.similarity is not None and ppg.region.any() and (ppg.prompts.labels == 0).any()
    emb = package_embedding(sam, IMAGE)
    if sam.family == "sam2":     # the stretched map resampled into the padded square
        import torch
        emb = stretched_to_padded(torch.from_numpy(emb)[None], IMAGE.shape[:2], sam.long_side)
    np.testing.assert_allclose(feats.sam_features_np(), emb, atol=1e-5)
    expected = feature_similarity(emb, ppg.region, sam.long_side, ppg.S)
    np.testing.assert_allclose(ppg.similarity, expected, atol=1e-5)
    neg = ppg.prompts.points[ppg.prompts.labels == 0].astype(int)
    assert ppg.ring[neg[:, 1], neg[:, 0]].all()


def test_stretched_to_padded_keeps_a_square_image_and_zeroes_the_padding():
    import torch

    from zsas_gui.core.sam.sam2_backend import stretched_to_padded

    f = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(stretched_to_padded(f, (50, 50), 1024), f[0].numpy(), atol=1e-6)
    wide = stretched_to_padded(f, (50, 100), 1024)          # the image fills the top half
    assert np.abs(wide[:, :8]).min(axis=0).max() > 0 and not wide[:, 8:].any()
    # the stretched map's row r lands in padded row r / 2 (columns unchanged)
    ramp = torch.arange(16, dtype=torch.float32).view(1, 1, 16, 1).expand(1, 1, 16, 16)
    np.testing.assert_allclose(stretched_to_padded(ramp, (50, 100), 1024)[0, :8, 0],
                               np.arange(8) * 2 + 0.5, atol=1e-5)


@pytest.mark.parametrize("name", ["tiny-sam2", "tiny-sam-hq"])
def test_explain_and_eval_run_with_each_tiny_model(bundles, name, tiny_models, tmp_path, capsys):
    from zsas_gui.core.explain.explain import explain_run, render_step
    from zsas_gui.core.explain.explain_figure import figure_png

    clip, sams = bundles
    e = explain_run(Pipeline(clip, sams[name]), IMAGE, MethodParams(tau=0.5))
    assert len(e.steps()) == 8 and [s.index for s in e.stages] == [1, 2, 3][: len(e.stages)]
    for step in e.steps():
        assert render_step(IMAGE, step).shape[2] == 3
    assert figure_png(IMAGE, e, "blob.png").startswith(b"\x89PNG")

    sam_dir = tiny_models[0].parent / name
    data = tmp_path / "data" / "widget"
    for cls, n in (("good", 2), ("dent", 2)):
        (data / "test" / cls).mkdir(parents=True)
        for i in range(n):
            img = blob_image((64, 64), [(20 + 10 * i, 30)], seed=i) if cls == "dent" else blob_image((64, 64), [], seed=i)
            Image.fromarray(img).save(data / "test" / cls / f"{i:03d}.png")
            if cls == "dent":
                (data / "ground_truth" / cls).mkdir(parents=True, exist_ok=True)
                gt = np.zeros((64, 64), np.uint8)
                gt[22:38, 12 + 10 * i:28 + 10 * i] = 255
                Image.fromarray(gt).save(data / "ground_truth" / cls / f"{i:03d}_mask.png")
    out = tmp_path / "eval"
    assert main(["eval", str(data), "-o", str(out), "--clip", str(tiny_models[0]), "--sam", str(sam_dir),
                 "--device", "cpu"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_images"] == 4 and metrics["n_failed"] == 0
    assert metrics["categories"]["widget"]["all"]["predictors"]["cps"]["mean_iou"] is not None


def test_make_test_models_writes_all_four_and_each_loads_with_its_family(tmp_path, capsys):
    from zsas_gui.core.models.loading import load_sam

    assert main(["models", "make-test-models", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / n) for n in ("tiny-clip", "tiny-sam", "tiny-sam2", "tiny-sam-hq")]
    for name, family in FAMILIES.items():
        sam = load_sam(str(tmp_path / name), device="cpu")
        assert (sam.family, sam.info["random_test_model"]) == (family, True)
        assert sam.model_id.startswith(f"random-test:{name}/fp32/")   # + heads and the content digest


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tiny-sam2", "tiny-sam-hq"])
def test_segment_magnetic_tile_with_each_tiny_model(shared_data, tmp_path, tiny_models, name):
    out = tmp_path / "mt"
    assert main(["segment", str(shared_data / "magnetic_tile" / "test"), "-o", str(out),
                 "--clip", str(tiny_models[0]), "--sam", str(tiny_models[0].parent / name),
                 "--device", "cpu", "--save-scores"]) == 0
    for sub in ("masks", "heatmaps", "overlays", "records", "scores"):
        assert len(list((out / sub).rglob("*.*"))) == 50, sub
    assert json.loads((out / "summary.json").read_text())["succeeded"] == 50
    rec = json.loads(next((out / "records").rglob("*.json")).read_text())
    assert rec["models"]["sam"].startswith(f"random-test:{name}/")
