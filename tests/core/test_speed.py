"""Fast refinement paths give SAM's masks: the restructured decoder (torch and onnxruntime), the
lazy upscaling, the ONNX export cache, the fallbacks, and the onnxruntime image encoder."""

import logging

import numpy as np
import pytest
import torch
from synthetic import blob_image

from zsas_gui.core.engine.pipeline import Pipeline
from zsas_gui.core.frames import sam_input_size
from zsas_gui.core.method.refine import iter_cascade
from zsas_gui.core.models.bundles import SamBundle
from zsas_gui.core.models.loading import build_sam_from_arch
from zsas_gui.core.sam import fast_decoder, onnx_cache, onnx_subprocess
from zsas_gui.core.sam.fast_decoder import FastDecoder, LazyMasks, make_decoder, upscale_logits
from zsas_gui.core.types import MethodParams, Prompts

#: SAM ViT-B's prompt encoder and decoder exactly (the decoder is the same for every SAM size);
#: a 1-block, 32-wide image encoder keeps the model small (the embedding is random anyway)
VIT_B_DECODER = dict(embed_dim=32, depth=1, num_heads=2, patch=16, img_size=1024, global_attn_indexes=[0],
                     window_size=14, prompt_dim=256, mask_in_chans=16, decoder_depth=2, decoder_mlp_dim=2048,
                     decoder_num_heads=8, iou_hidden=256)


def _bundle(model, model_id):
    return SamBundle(model=model.eval(), model_id=model_id, device=torch.device("cpu"), dtype=torch.float32,
                     info={"random_test_model": True})


@pytest.fixture(scope="module")
def vit_b_geometry():
    """(SamBundle with SAM ViT-B's decoder geometry, random (1, 256, 64, 64) embedding)."""
    torch.manual_seed(3)
    sam = build_sam_from_arch(VIT_B_DECODER)
    emb = torch.randn(1, 256, 64, 64, generator=torch.Generator().manual_seed(4))
    return _bundle(sam, "random-test:vit_b-decoder"), emb


@pytest.fixture(scope="module")
def tiny_sam_emb(tiny_bundles):
    _, sam = tiny_bundles
    g = sam.model.prompt_encoder.image_embedding_size[0]
    emb = torch.randn(1, sam.model.prompt_encoder.embed_dim, g, g, generator=torch.Generator().manual_seed(5))
    return sam, emb


def _predictor(bundle, emb, hw):
    from segment_anything import SamPredictor

    p = SamPredictor(bundle.model)
    p.features, p.original_size, p.is_image_set = emb, hw, True
    p.input_size = sam_input_size(hw, bundle.long_side)
    return p


def _random_calls(rng, hw, m, n=6):
    """(points, labels, box, mask_input, multimask) tuples covering every prompt combination."""
    calls = []
    for i in range(n):
        k = int(rng.integers(1, 6))
        pts = rng.uniform(0, [hw[1], hw[0]], (k, 2)).astype(np.float32)
        lab = (rng.random(k) < 0.6).astype(np.int32)
        lab[0] = 1
        box = None
        if i % 2:
            x0, y0 = rng.uniform(0, [hw[1] / 2, hw[0] / 2])
            box = np.array([x0, y0, x0 + hw[1] / 3, y0 + hw[0] / 3], np.float32)
        mask = rng.normal(0, 3, (m, m)).astype(np.float32) if i % 3 else None
        calls.append((pts, lab, box, mask, bool(i % 2 == 0)))
    return calls


def _decoder_and_reference(backend, model, request):
    """(bound fast decoder, SamPredictor on the same embedding, image (H, W), mask input side)."""
    bundle, emb = request.getfixturevalue("tiny_sam_emb" if model == "tiny" else model)
    hw = (75, 100) if model == "tiny" else (768, 1024)
    engine = FastDecoder(bundle, backend, threads=2)
    assert engine.backend == backend
    dec = engine.bind(emb, sam_input_size(hw, bundle.long_side), hw)
    return dec, _predictor(bundle, emb, hw), hw, bundle.mask_input_size[0]


def _reference(ref, pts, lab, box, mask, multi):
    """SamPredictor's masks, IoUs, low-res logits and image-size logits for one call."""
    kw = dict(point_coords=pts, point_labels=lab, box=box, multimask_output=multi,
              mask_input=None if mask is None else mask[None])
    r_masks, r_ious, r_low = ref.predict(**kw)
    r_logits, _, _ = ref.predict(**kw, return_logits=True)
    return r_masks, r_ious, r_low, r_logits


@pytest.mark.parametrize("backend", ["fast", "onnx"])
@pytest.mark.parametrize("model", ["tiny", "vit_b_geometry"])
def test_fast_decode_gives_predictor_masks(backend, model, request):
    """Every candidate (the torch module; on the onnx engine fed its per-image tensors)."""
    dec, ref, hw, m = _decoder_and_reference(backend, model, request)
    calls = _random_calls(np.random.default_rng(0), hw, m, n=6 if model == "tiny" else 3)
    for pts, lab, box, mask, multi in calls:
        masks, ious, low = dec.decode(pts, lab, box, mask, multi)
        r_masks, r_ious, r_low, r_logits = _reference(ref, pts, lab, box, mask, multi)
        assert masks.shape == r_masks.shape and low.shape == r_low.shape and ious.shape == r_ious.shape
        assert low.dtype == ious.dtype == np.float32
        np.testing.assert_allclose(low, r_low, atol=1e-4)
        np.testing.assert_allclose(ious, r_ious, atol=1e-5)
        for i in range(len(masks)):
            differ = masks[i] != r_masks[i]
            # a pixel may only differ where SAM's own logit is within rounding of the threshold
            assert np.all(np.abs(r_logits[i][differ]) < 1e-4), f"{differ.sum()} pixels differ"
            assert differ.sum() <= 0.0005 * differ.size


@pytest.mark.parametrize("backend", ["fast", "onnx"])
@pytest.mark.parametrize("model", ["tiny", "vit_b_geometry"])
def test_decode_best_gives_the_candidate_predict_ranks_first(backend, model, request):
    """What the cascade calls: only the kept candidate is computed (in onnxruntime for "onnx")."""
    dec, ref, hw, m = _decoder_and_reference(backend, model, request)
    for pts, lab, box, mask, multi in _random_calls(np.random.default_rng(1), hw, m, n=6):
        got_mask, ious, low, index = dec.decode_best(pts, lab, box, mask, multi)
        r_masks, r_ious, r_low, r_logits = _reference(ref, pts, lab, box, mask, multi)
        best = int(np.argmax(r_ious))
        assert index == best and isinstance(index, int)
        assert got_mask.shape == hw and got_mask.dtype == bool and low.shape == (m, m)
        assert ious.shape == r_ious.shape and low.dtype == ious.dtype == np.float32
        np.testing.assert_allclose(ious, r_ious, atol=1e-5)
        np.testing.assert_allclose(low, r_low[best], atol=1e-4)
        differ = got_mask != r_masks[best]
        assert np.all(np.abs(r_logits[best][differ]) < 1e-4), f"{differ.sum()} pixels differ"


@pytest.mark.parametrize("model", ["tiny", "vit_b_geometry"])
def test_numpy_prompt_tokens_equal_sams_prompt_encoder(model, request):
    from zsas_gui.core.sam.prompt_tokens import PromptTokens

    bundle, _ = request.getfixturevalue("tiny_sam_emb" if model == "tiny" else model)
    enc = bundle.model.prompt_encoder
    tokens = PromptTokens(enc)
    size = enc.input_image_size
    rng = np.random.default_rng(2)
    for n, with_box in ((1, False), (4, True), (7, False), (2, True)):
        pts = rng.uniform(0, [size[1], size[0]], (n, 2)).astype(np.float32)
        lab = rng.integers(0, 2, n).astype(np.int32)
        box = np.sort(rng.uniform(0, size[1], (2, 2)), axis=0).astype(np.float32).reshape(1, 4) if with_box else None
        got = tokens(pts, lab, box)
        with torch.inference_mode():
            ref = enc((torch.from_numpy(pts)[None], torch.from_numpy(lab)[None]),
                      None if box is None else torch.from_numpy(box), None)[0][0].numpy()
        assert got.shape == ref.shape == (n + (2 if with_box else 1), enc.embed_dim)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, ref, atol=2e-5)


@pytest.mark.parametrize("hw", [(768, 1024), (1024, 683), (333, 1000), (1500, 1100), (20, 30)])
def test_upscaling_equals_sam_postprocess(hw, vit_b_geometry, tiny_bundles):
    for bundle in (vit_b_geometry[0], tiny_bundles[1]):
        m = bundle.mask_input_size[0]
        low = torch.randn(1, 1, m, m, generator=torch.Generator().manual_seed(hw[0]))
        input_size = sam_input_size(hw, bundle.long_side)
        ref = bundle.model.postprocess_masks(low, input_size, hw)[0, 0]
        got = upscale_logits(low[0, 0], input_size, hw, bundle.long_side)
        assert torch.equal(got, ref)


def test_lazy_masks_upscale_only_what_is_read(tiny_bundles):
    sam = tiny_bundles[1]
    low = torch.randn(3, 64, 64)
    masks = LazyMasks(low, (48, 64), (75, 100), sam.long_side, 0.0)
    assert masks.shape == (3, 75, 100) and len(masks) == 3 and not masks._done
    first = masks[1]
    assert first.shape == (75, 100) and first.dtype == bool and set(masks._done) == {1}
    assert np.shares_memory(masks[-2], first) and masks._done == {1}   # cached, negative index
    with pytest.raises(IndexError):
        masks[3]
    full = np.asarray(masks)
    assert full.shape == (3, 75, 100) and np.shares_memory(full, first) and masks._done == {0, 1, 2}
    ref = sam.model.postprocess_masks(low[None], (48, 64), (75, 100))[0] > 0
    assert np.array_equal(full, ref.numpy())


def test_cascade_identical_through_every_decoder(tiny_bundles):
    clip, sam = tiny_bundles
    image = blob_image((90, 120), [(40, 30), (90, 60)])
    prompts = Prompts(np.array([[40, 30], [44, 35], [90, 60], [5, 5], [115, 85]], np.float32),
                      np.array([1, 1, 1, 0, 0], np.int32))
    finals = {}
    for choice in ("torch", "fast", "onnx"):
        pipe = Pipeline(clip, sam, decoder=choice, encoder="torch")
        feats = pipe.features("k", image)
        stages = list(iter_cascade(pipe._decoder_for(feats), prompts))
        assert pipe.decoder_backend == choice and len(stages) == 3
        finals[choice] = [s.mask for s in stages]
        result = pipe.refine(feats, prompts, MethodParams())
        assert result.provenance["decoder"] == choice
    for choice in ("fast", "onnx"):
        for a, b in zip(finals[choice], finals["torch"]):
            assert (a & b).sum() / max(1, (a | b).sum()) >= 0.999


def test_pipeline_rejects_unknown_backends(tiny_bundles):
    clip, sam = tiny_bundles
    with pytest.raises(ValueError, match="decoder must be one of"):
        Pipeline(clip, sam, decoder="gpu")
    with pytest.raises(ValueError, match="encoder must be one of"):
        Pipeline(clip, sam, encoder="tpu")


def test_fallbacks_are_logged(tiny_bundles, monkeypatch, caplog):
    sam = tiny_bundles[1]
    monkeypatch.setattr(onnx_cache, "ort_available", lambda: False)
    assert fast_decoder.resolve_backend("auto", sam) == "fast"
    with caplog.at_level(logging.WARNING):
        engine = make_decoder(sam, "onnx")
    assert engine.backend == "fast" and "onnxruntime" in caplog.text
    monkeypatch.undo()

    def broken_export(*args, **kwargs):
        raise onnx_subprocess.ExportFailed("the ONNX export process failed (exit 1): exporter exploded")

    onnx_cache.clear_memory()
    monkeypatch.setattr(onnx_subprocess, "export_in_subprocess", broken_export)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        engine = make_decoder(sam, "onnx")
    assert engine.backend == "fast" and "exporter exploded" in caplog.text

    def odd_decoder(model):
        raise ValueError("SAM decoder of an unexpected structure")

    monkeypatch.setattr("zsas_gui.core.sam.decoder_core.DecoderCore", odd_decoder)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert make_decoder(sam, "auto") is None
    assert "unexpected structure" in caplog.text
    clip = tiny_bundles[0]
    pipe = Pipeline(clip, sam)
    assert pipe.decoder_backend == "torch"                     # SAM's predict, the reference
    assert pipe.run("x", blob_image((64, 64), [(20, 20)])).pred_mask.shape == (64, 64)
    onnx_cache.clear_memory()


def test_onnx_export_cache_is_verified(tiny_bundles, tmp_path, monkeypatch):
    from zsas_gui.core.sam import onnx_decoder
    from zsas_gui.core.sam.decoder_core import DecoderCore

    sam = tiny_bundles[1]
    core = DecoderCore(sam.model).eval()
    exports = []
    real_export = onnx_subprocess.export_in_subprocess

    def counting_export(*args, **kwargs):
        exports.append(1)
        return real_export(*args, **kwargs)

    monkeypatch.setattr(onnx_subprocess, "export_in_subprocess", counting_export)

    def load():
        onnx_cache.clear_memory()
        return onnx_decoder.load_decoder_graphs(core, sam.model, "m", tmp_path, threads=1)

    load()
    folders = list(tmp_path.iterdir())
    assert len(exports) == 1 and len(folders) == 1
    assert {p.name for p in folders[0].iterdir()} == {
        "image.onnx", "nomask.onnx", "mask.onnx", "image.data", "nomask.data", "mask.data", "manifest.json"}
    load()
    assert len(exports) == 1                                   # read back from disk, digests matched
    data = bytearray((folders[0] / "mask.data").read_bytes())
    data[len(data) // 2] ^= 0xFF                                # one flipped byte inside the weights
    (folders[0] / "mask.data").write_bytes(bytes(data))
    graphs = load()
    assert len(exports) == 2                                   # never trusted: exported again
    assert onnx_decoder.verify(graphs, core) <= onnx_decoder.EXPORT_TOLERANCE
    (folders[0] / "manifest.json").write_text("{not json")
    load()
    assert len(exports) == 3
    (folders[0] / "manifest.json").unlink()
    load()
    assert len(exports) == 4 and (folders[0] / "manifest.json").is_file()
    onnx_cache.clear_memory()


# --------------------------------------------------------------------------- MobileSAM


@pytest.fixture(scope="module")
def tiny_mobile_sam(tmp_path_factory):
    """A tiny random MobileSAM (TinyViT encoder) written as a bare state dict and loaded back."""
    from zsas_gui.core.models.loading import load_sam
    from zsas_gui.core.models.mobile_sam import TINY_TINY_VIT, mobile_sam_arch

    torch.manual_seed(6)
    arch = mobile_sam_arch(TINY_TINY_VIT, decoder_depth=1, decoder_mlp_dim=64, iou_hidden=32)
    path = tmp_path_factory.mktemp("mobile") / "mobile_tiny.pt"
    torch.save(build_sam_from_arch(arch).state_dict(), path)
    return load_sam(str(path), device="cpu"), arch


def test_mobile_sam_checkpoint_is_recognised(tiny_mobile_sam):
    from segment_anything import SamPredictor

    sam, arch = tiny_mobile_sam
    assert sam.info["arch"]["encoder"] == "tiny_vit"
    assert sam.info["arch"]["tiny_vit"]["embed_dims"] == arch["tiny_vit"]["embed_dims"]
    assert sam.long_side == 1024 and sam.mask_input_size == (256, 256)
    p = SamPredictor(sam.model)
    with torch.inference_mode():
        p.set_image(blob_image((96, 128), [(40, 30)]))
    assert tuple(p.features.shape) == (1, 256, 64, 64)


def test_mobile_sam_encoder_in_onnxruntime_matches_torch(tiny_mobile_sam):
    from segment_anything import SamPredictor

    from zsas_gui.core.sam.fast_encoder import make_encoder

    sam, _ = tiny_mobile_sam
    onnx_cache.clear_memory()
    encoder = make_encoder(sam, "auto")                         # small encoder on the CPU: onnx
    assert encoder is not None and encoder.backend == "onnx"
    image = blob_image((96, 128), [(40, 30)])
    ref, got = SamPredictor(sam.model), SamPredictor(sam.model)
    with torch.inference_mode():
        ref.set_image(image)
    encoder.set_image(got, image)
    assert got.is_image_set and got.input_size == ref.input_size and got.original_size == ref.original_size
    np.testing.assert_allclose(got.features.numpy(), ref.features.numpy(), atol=1e-4)
    assert make_encoder(sam, "torch") is None
    onnx_cache.clear_memory()


def test_mobile_sam_without_its_package_names_it(tiny_mobile_sam, monkeypatch):
    import sys

    from zsas_gui.core.errors import CheckpointError
    from zsas_gui.core.models.mobile_sam import tiny_vit_class

    monkeypatch.setitem(sys.modules, "mobile_sam.modeling.tiny_vit_sam", None)
    with pytest.raises(CheckpointError, match="pip install mobilesam-mirror"):
        tiny_vit_class()
