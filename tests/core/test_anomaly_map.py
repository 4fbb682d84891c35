"""Dense V-V anomaly mapper on tiny random open_clip models (no pretrained weights here).

Random weights cannot say *where* an anomaly is, so these tests check the machinery: the
attention re-implementation against the module, the original stream against ``encode_image``,
an independent reference of the surgery stream, frames/shapes, caching and determinism.
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F

from zsas_gui.core.maps.anomaly_map import (
    AnomalyMapper,
    ImageTokens,
    VVAnomalyMapper,
    blur_sigma_px,
    finish_map,
    preprocess,
)
from zsas_gui.core.maps.clip_surgery import (
    UnsupportedModelError,
    default_depths,
    qk_attention,
    resolve_depths,
    resolve_vv_start,
    surgery_forward,
    vv_attention,
)
from zsas_gui.core.maps.text_features import (
    TextFeatureCache,
    can_trim_context,
    encode_class_features,
    encode_text,
)
from zsas_gui.core.models.bundles import ClipBundle
from zsas_gui.core.types import TextPrompts

TEXT_CFG = {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 4, "layers": 1}
CONFIGS = {
    "zsas-am-tiny": {"image_size": 32, "layers": 3, "width": 32, "patch_size": 8, "head_width": 8},
    "zsas-am-tiny-ls": {"image_size": 32, "layers": 3, "width": 32, "patch_size": 8, "head_width": 8,
                        "ls_init_value": 0.5},
    "zsas-am-tiny-custom": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8,
                            "head_width": 8, "qk_norm": True},
}
# a short ensemble keeps text encoding fast: 2 states x 2 templates per class
PROMPTS = TextPrompts(object_name="bottle", normal_states=("{}", "flawless {}"),
                      abnormal_states=("damaged {}", "{} with defect"),
                      templates=("a photo of a {}.", "a close-up photo of the {}."))


@pytest.fixture(scope="module", autouse=True)
def _register_configs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("oc_cfg")
    for name, vis in CONFIGS.items():
        cfg = {"embed_dim": 16, "quick_gelu": True, "vision_cfg": vis, "text_cfg": TEXT_CFG}
        (folder / f"{name}.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(folder)


def make_bundle(name="zsas-am-tiny", seed=0, force_image_size=None) -> ClipBundle:
    torch.manual_seed(seed)
    model = open_clip.create_model(name, pretrained=None, force_image_size=force_image_size).eval()
    size = int(model.visual.image_size[0])
    return ClipBundle(model=model, tokenizer=open_clip.get_tokenizer(name),
                      model_id=f"{name}/random{seed}@{size}", image_size=size, device="cpu",
                      dtype=torch.float32, info={"random": True})


@pytest.fixture(scope="module")
def bundle(_register_configs):
    return make_bundle()


@pytest.fixture(scope="module")
def mapper(bundle):
    return VVAnomalyMapper(bundle)


def rgb(h=20, w=30, seed=1):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def pixels_for(bundle, image):
    return preprocess(image, bundle.image_size, bundle.mean, bundle.std)


# --- open_clip internals the surgery pass relies on --------------------------------------------

@pytest.mark.parametrize("name", ["zsas-am-tiny", "zsas-am-tiny-ls"])
def test_manual_qk_attention_and_block_reproduce_the_module(name):
    b = make_bundle(name)
    x = torch.randn(2, 17, 32)
    with torch.inference_mode():
        for blk in b.model.visual.transformer.resblocks:
            x_ln = blk.ln_1(x)
            ref = blk.attn(x_ln, x_ln, x_ln, need_weights=False)[0]
            torch.testing.assert_close(qk_attention(blk.attn, x_ln), ref, rtol=1e-5, atol=1e-6)
            # the block is x + ls_1(attn(ln_1 x)), then + ls_2(mlp(ln_2 .)): where V-V plugs in
            y = x + blk.ls_1(qk_attention(blk.attn, x_ln))
            y = y + blk.ls_2(blk.mlp(blk.ln_2(y)))
            torch.testing.assert_close(y, blk(x), rtol=1e-5, atol=1e-6)
            x = blk(x)


def test_vv_attention_matches_the_explicit_formula(bundle):
    blk = bundle.model.visual.transformer.resblocks[0]
    attn = blk.attn
    x_ln = torch.randn(1, 17, 32)
    e, h = attn.embed_dim, attn.num_heads
    with torch.inference_mode():
        v = x_ln @ attn.in_proj_weight[2 * e:].T + attn.in_proj_bias[2 * e:]
        v = v.view(1, 17, h, e // h).permute(0, 2, 1, 3)                 # (B, h, L, hd)
        scores = torch.einsum("bhld,bhmd->bhlm", v, v) * (e // h) ** -0.5
        o = torch.einsum("bhlm,bhmd->bhld", scores.softmax(-1), v)
        ref = attn.out_proj(o.permute(0, 2, 1, 3).reshape(1, 17, e))
        torch.testing.assert_close(vv_attention(attn, x_ln), ref, rtol=1e-5, atol=1e-6)


def test_cls_equals_encode_image_and_original_stream_is_unchanged(bundle, mapper):
    image = rgb()
    tokens = mapper.encode_image(image)
    px = pixels_for(bundle, image)
    with torch.inference_mode():
        ref = F.normalize(bundle.model.encode_image(px), dim=-1)[0]
        torch.testing.assert_close(tokens.cls, ref, rtol=1e-5, atol=1e-6)
        # the default vv_start puts every tapped depth on the surgery stream (ALGORITHM.md §1):
        # none of them is open_clip's own (plain) token map
        visual = bundle.model.visual
        assert mapper.vv_start == 0 and mapper.depths == (0, 1, 2)
        for d in mapper.depths:
            inter = visual.forward_intermediates(px, indices=[d], output_fmt="NLC",
                                                 intermediates_only=True)["image_intermediates"][0]
            plain = F.normalize(visual.ln_post(inter) @ visual.proj, dim=-1)[0]
            assert not torch.allclose(tokens.dense[d], plain, atol=1e-3)   # surgery changed it


def test_default_vv_start_and_depths_before_it_are_refused(bundle):
    """Issue 13: with the old default (1/3) the first tapped depth was a plain CLIP token map."""
    from zsas_gui.core.maps.clip_surgery import default_vv_start

    assert default_vv_start(24, (5, 11, 17, 23)) == 4       # block 5 of 24: AnomalyCLIP's DPAM_layer 20
    assert default_vv_start(12, (2, 5, 8, 11)) == 2
    assert default_vv_start(3, (0, 1, 2)) == 0
    assert VVAnomalyMapper(bundle, depths=[1, 2]).vv_start == 1      # round(3 / 6)
    with pytest.raises(ValueError, match="before vv_start 1"):
        VVAnomalyMapper(bundle, vv_start=1, depths=[0, 1, 2])


def reference_surgery(visual, px, vv_start, depths):
    """Independent reference: hooks record the original stream's block inputs, the surgery
    stream is rebuilt from them with an explicit per-head V-V formula."""
    inputs = []
    hooks = [blk.register_forward_pre_hook(lambda m, a: inputs.append(a[0]))
             for blk in visual.transformer.resblocks]
    outputs = visual.forward_intermediates(px, indices=list(range(len(hooks))), output_fmt="NLC",
                                           intermediates_only=True, output_extra_tokens=True)
    for hk in hooks:
        hk.remove()
    full = [torch.cat([p, t], dim=1) for p, t in zip(outputs["image_intermediates_prefix"],
                                                       outputs["image_intermediates"])]
    xs = inputs[vv_start]
    result = {}
    for i, blk in enumerate(visual.transformer.resblocks):
        if i < vv_start:
            cur = full[i]
        else:
            a = blk.attn
            e, h = a.embed_dim, a.num_heads
            v = blk.ln_1(inputs[i]) @ a.in_proj_weight[2 * e:].T + a.in_proj_bias[2 * e:]
            v = v.view(v.shape[0], v.shape[1], h, e // h).permute(0, 2, 1, 3)
            w = (torch.einsum("bhld,bhmd->bhlm", v, v) / math.sqrt(e // h)).softmax(-1)
            o = torch.einsum("bhlm,bhmd->bhld", w, v).permute(0, 2, 1, 3).reshape(v.shape[0], -1, e)
            xs = xs + blk.ls_1(a.out_proj(o))
            cur = xs
        if i in depths:
            result[i] = F.normalize(visual.ln_post(cur[:, 1:]) @ visual.proj, dim=-1)[0]
    return [result[d] for d in depths]


@pytest.mark.parametrize("name,vv_start", [("zsas-am-tiny", 1), ("zsas-am-tiny-ls", 0),
                                           ("zsas-am-tiny-ls", 2)])
def test_surgery_stream_matches_an_independent_reference(name, vv_start):
    b = make_bundle(name)
    depths = [d for d in (0, 1, 2) if d >= vv_start]
    m = VVAnomalyMapper(b, vv_start=vv_start, depths=depths)
    image = rgb(24, 24, seed=3)
    tokens = m.encode_image(image)
    with torch.inference_mode():
        ref = reference_surgery(b.model.visual, pixels_for(b, image), vv_start, depths)
    for i in range(len(depths)):
        torch.testing.assert_close(tokens.dense[i], ref[i], rtol=1e-5, atol=1e-5)


# --- outputs, frames, caching -------------------------------------------------------------------

def test_shapes_dtypes_and_frames_for_a_non_square_image(mapper):
    assert isinstance(mapper, AnomalyMapper)
    tokens = mapper.encode_image(rgb(20, 30))
    assert tokens.dense.shape == (3, 16, 16) and tokens.dense.dtype == torch.float32
    assert tokens.cls.shape == (16,) and tokens.grid == 4 and tokens.hw == (20, 30)
    assert tokens.dense.device.type == "cpu" and not tokens.dense.is_inference()
    torch.testing.assert_close(tokens.dense.norm(dim=-1), torch.ones(3, 16))
    assert tokens.nbytes == (3 * 16 * 16 + 16) * 4
    res = mapper.anomaly(tokens, PROMPTS)
    assert res.anomaly_map.shape == (20, 30) and res.anomaly_map.dtype == np.float32
    assert np.isfinite(res.anomaly_map).all()
    assert 0.0 <= res.anomaly_map.min() and res.anomaly_map.max() <= 1.0   # mean over depths
    assert isinstance(res.image_score, float) and 0.0 <= res.image_score <= 1.0
    assert res.normalized.shape == (20, 30)


def test_encode_then_anomaly_equals_compute_and_is_deterministic(mapper):
    image = rgb(40, 26, seed=5)
    a = mapper.compute(image, PROMPTS)
    b = mapper.anomaly(mapper.encode_image(image), PROMPTS)
    c = mapper.compute(image, PROMPTS)
    np.testing.assert_array_equal(a.anomaly_map, b.anomaly_map)
    np.testing.assert_array_equal(a.anomaly_map, c.anomaly_map)
    assert a.image_score == b.image_score == c.image_score


def test_image_score_and_map_follow_the_formulas(mapper):
    tokens = mapper.encode_image(rgb(32, 32, seed=7))
    text = mapper.text_features(PROMPTS)
    res = mapper.anomaly(tokens, PROMPTS)
    expect = torch.softmax(tokens.cls @ text.T / 0.07, dim=-1)[1].item()
    assert res.image_score == pytest.approx(expect, rel=1e-6)
    # same size, no blur: the raw map is the upsampled per-depth abnormal probability averaged
    # over depths (ALGORITHM.md §1: the sum divided by the number of depths)
    m0 = VVAnomalyMapper(mapper.clip, blur_sigma_518=0.0)
    raw = m0.anomaly(tokens, PROMPTS).anomaly_map
    prob = torch.softmax(tokens.dense @ text.T / 0.07, dim=-1)[..., 1].reshape(3, 1, 4, 4)
    up = F.interpolate(prob, size=(32, 32), mode="bilinear", align_corners=False).sum(0)[0] / 3
    np.testing.assert_allclose(raw, up.numpy(), rtol=1e-5, atol=1e-6)


def test_text_features_are_cached_and_keyed_by_prompts(bundle):
    calls = []   # batch sizes seen by the text tower (both encode paths embed tokens first)
    hook = bundle.model.token_embedding.register_forward_pre_hook(
        lambda mod, args: calls.append(len(args[0])))
    try:
        m = VVAnomalyMapper(bundle, text_batch_size=3)
        t1 = m.text_features(PROMPTS)
        assert calls == [3, 1, 3, 1]                    # 4 sentences per class, batches of 3
        assert t1.shape == (2, 16) and t1.dtype == torch.float32
        torch.testing.assert_close(t1.norm(dim=-1), torch.ones(2))
        t2 = m.text_features(TextPrompts.from_dict(PROMPTS.to_dict()))
        m.compute(rgb(), PROMPTS)
        assert len(calls) == 4 and torch.equal(t1, t2)  # cache hits, no encoding
        other = TextPrompts(object_name="cable", normal_states=PROMPTS.normal_states,
                            abnormal_states=PROMPTS.abnormal_states, templates=PROMPTS.templates)
        assert other.key() != PROMPTS.key()
        t3 = m.text_features(other)
        assert len(calls) == 8 and not torch.equal(t1, t3)
        assert len(m.text_cache) == 2 and (bundle.model_id, other.key()) in m.text_cache
        # a mapper sharing the cache does not re-encode; one with its own cache does
        VVAnomalyMapper(bundle, text_cache=m.text_cache).text_features(PROMPTS)
        assert len(calls) == 8
        VVAnomalyMapper(bundle, text_cache=TextFeatureCache()).text_features(PROMPTS)
        assert calls[8:] == [4, 4]                     # default batch size 64: one per class
    finally:
        hook.remove()


def test_trimmed_text_encoding_equals_open_clip_encode_text(bundle):
    sentences = ["a photo of a bottle.", "x", ("a close-up photo of the damaged bottle with a long "
                 "scratch near the neck and a dent."), PROMPTS.sentences(True)[0]]
    tokens = bundle.tokenizer(sentences)
    assert can_trim_context(bundle.model)
    with torch.inference_mode():
        torch.testing.assert_close(encode_text(bundle.model, tokens),
                                   bundle.model.encode_text(tokens), rtol=1e-5, atol=1e-5)


def test_text_encoding_falls_back_to_encode_text_for_other_towers(bundle):
    class Tower:   # e.g. CustomTextCLIP: has .text, no causal-mask attributes at the top level
        text = object()

        def __init__(self):
            self.calls = 0

        def encode_text(self, tokens):
            self.calls += 1
            return bundle.model.encode_text(tokens)

    tower = Tower()
    assert not can_trim_context(tower)
    feats = encode_class_features(tower, bundle.tokenizer, PROMPTS, "cpu", batch_size=64)
    assert tower.calls == 2
    with torch.inference_mode():
        torch.testing.assert_close(feats, encode_class_features(bundle.model, bundle.tokenizer,
                                                                PROMPTS, "cpu"), rtol=1e-5, atol=1e-6)


def test_text_features_average_normalised_sentence_embeddings(bundle, mapper):
    with torch.inference_mode():
        rows = []
        for abnormal in (False, True):
            f = bundle.model.encode_text(bundle.tokenizer(PROMPTS.sentences(abnormal)))
            rows.append(F.normalize(F.normalize(f, dim=-1).mean(0), dim=-1))
    torch.testing.assert_close(mapper.text_features(PROMPTS), torch.stack(rows), rtol=1e-5, atol=1e-6)


def test_tokens_round_trip_through_plain_numpy_arrays(mapper):
    tokens = mapper.encode_image(rgb(21, 13, seed=9))
    buf = io.BytesIO()
    np.savez(buf, **tokens.to_numpy_dict())
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as npz:
        back = ImageTokens.from_numpy_dict(npz)
    assert back.grid == tokens.grid and back.hw == (21, 13)
    assert torch.equal(back.dense, tokens.dense) and torch.equal(back.cls, tokens.cls)
    np.testing.assert_array_equal(mapper.anomaly(back, PROMPTS).anomaly_map,
                                  mapper.anomaly(tokens, PROMPTS).anomaly_map)
    bad = tokens.to_numpy_dict()
    del bad["cls"]
    with pytest.raises(ValueError, match="missing"):
        ImageTokens.from_numpy_dict(bad)
    with pytest.raises(ValueError, match="dense"):
        ImageTokens.from_numpy_dict({**tokens.to_numpy_dict(), "grid": np.asarray(5)})


def test_grid_is_read_from_a_resized_model(_register_configs):
    b = make_bundle(force_image_size=48)
    m = VVAnomalyMapper(b)
    assert m.grid == 6
    tokens = m.encode_image(rgb(10, 50))
    assert tokens.dense.shape == (3, 36, 16)
    assert m.anomaly(tokens, PROMPTS).anomaly_map.shape == (10, 50)
    with pytest.raises(ValueError, match="another model"):
        m.anomaly(VVAnomalyMapper(make_bundle()).encode_image(rgb()), PROMPTS)
    wrong = make_bundle()
    wrong.image_size = 48
    with pytest.raises(ValueError, match="force_image_size"):
        VVAnomalyMapper(wrong)


def test_unsupported_towers_and_bad_inputs_are_refused(mapper):
    with pytest.raises(UnsupportedModelError, match="nn.MultiheadAttention"):
        VVAnomalyMapper(make_bundle("zsas-am-tiny-custom"))
    for bad in (np.zeros((8, 8), np.uint8), np.zeros((8, 8, 3), np.float32),
                np.zeros((8, 8, 4), np.uint8), np.zeros((0, 8, 3), np.uint8)):
        with pytest.raises(ValueError, match="uint8 RGB"):
            mapper.encode_image(bad)


# --- numpy/config helpers ------------------------------------------------------------------------

def test_block_index_rules():
    assert default_depths(24) == (5, 11, 17, 23)
    assert default_depths(12) == (2, 5, 8, 11)
    assert default_depths(3) == (0, 1, 2) and default_depths(2) == (0, 1) and default_depths(1) == (0,)
    assert resolve_vv_start(1 / 3, 24) == 8 and resolve_vv_start(1 / 3, 12) == 4
    assert resolve_vv_start(1 / 3, 2) == 1 and resolve_vv_start(0.99, 2) == 1
    assert resolve_vv_start(0.0, 24) == 0 and resolve_vv_start(5, 24) == 5
    assert resolve_vv_start(-1, 24) == 23
    for bad in (24, 1.0, -0.1, True):
        with pytest.raises((ValueError, TypeError)):
            resolve_vv_start(bad, 24)
    assert resolve_depths([-1, 5], 24) == (5, 23) and resolve_depths(None, 24) == (5, 11, 17, 23)
    for bad in ([], [3, 3], [24], [1.5]):
        with pytest.raises(ValueError):
            resolve_depths(bad, 24)


def test_preprocess_and_map_finishing():
    grey = np.full((7, 9, 3), 128, np.uint8)
    px = preprocess(grey, 16, (0.5, 0.25, 0.0), (0.5, 0.5, 1.0))
    assert px.shape == (1, 3, 16, 16) and px.dtype == torch.float32
    expect = torch.tensor([(128 / 255 - 0.5) / 0.5, (128 / 255 - 0.25) / 0.5, 128 / 255])
    torch.testing.assert_close(px[0, :, 5, 5], expect)
    assert blur_sigma_px(4.0, 518) == 4.0 and blur_sigma_px(4.0, 259) == 2.0
    sq = np.random.default_rng(0).random((16, 16)).astype(np.float32)
    np.testing.assert_array_equal(finish_map(sq, 0.0, (16, 16)), sq)
    out = finish_map(sq, 1.5, (5, 40))
    assert out.shape == (5, 40) and out.dtype == np.float32 and out.std() < sq.std()


def test_surgery_forward_is_batch_general(bundle):
    px = torch.cat([pixels_for(bundle, rgb(seed=s)) for s in (1, 2)])
    with torch.inference_mode():
        pooled, dense = surgery_forward(bundle.model.visual, px, 1, (0, 2))
        single, dense1 = surgery_forward(bundle.model.visual, px[1:], 1, (0, 2))
    assert pooled.shape == (2, 16) and [d.shape for d in dense] == [(2, 16, 16)] * 2
    torch.testing.assert_close(pooled[1:], single, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(dense[1][1:], dense1[1], rtol=1e-5, atol=1e-6)


def test_with_settings_is_the_mapper_itself_for_its_own_settings(mapper):
    from zsas_gui.core.types import MapSettings

    assert mapper.with_settings(MapSettings()) is mapper
    assert mapper.with_settings(MapSettings(vv_start=0, depths=(0, 1, 2))) is mapper   # same, resolved
    other = mapper.with_settings(MapSettings(temperature=0.5))
    assert other is not mapper and other.temperature == 0.5 and other.text_cache is mapper.text_cache
    assert mapper.with_settings(MapSettings(temperature=0.5)) is other                 # made once
