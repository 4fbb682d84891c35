"""Folder maps: the optional text fusion of the references map (ALGORITHM.md §1b) and the
bfloat16 nearest-patch search, on synthetic folders with tiny random models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from synthetic import BACKGROUND, BLOB, part, region

from zsas_gui.core.engine.pipeline import Pipeline
from zsas_gui.core.errors import ZsasError
from zsas_gui.core.maps.anomaly_map import VVAnomalyMapper
from zsas_gui.core.maps.backbones import TimmBackbone
from zsas_gui.core.maps.folder_select import make_folder_mapper
from zsas_gui.core.maps.mutual import MutualMapper, iter_score_folder
from zsas_gui.core.maps.patch_features import as_bank, as_query, best_matches, search_dtype
from zsas_gui.core.maps.references import ReferenceMapper
from zsas_gui.core.maps.text_fusion import FusedTokens, TextFusedMapper
from zsas_gui.core.types import TextPrompts

PROMPTS = TextPrompts(object_name="part")


@pytest.fixture(scope="module")
def backbone():
    return TimmBackbone("resnet18", "random", image_size=64, depths=(2, 3))


@pytest.fixture
def fused(backbone, tiny_bundles):
    clip, _ = tiny_bundles
    m = TextFusedMapper(ReferenceMapper(backbone), VVAnomalyMapper(clip), weight=0.5)
    m.fit([m.encode_image(part(100 + i)) for i in range(4)])
    return m


def test_fusion_is_the_weighted_sum_of_both_maps_scaled_on_the_references(fused):
    tokens = fused.encode_image(part(3, blob=True))
    got = fused.anomaly(tokens, PROMPTS)
    ref = fused.folder.anomaly(tokens.patch)
    text = fused.text.anomaly(tokens.text, PROMPTS)
    text_level = max(np.quantile(fused.text.anomaly(fused.encode_image(part(100 + i)).text, PROMPTS)
                                 .anomaly_map, 0.99) for i in range(4))
    want = 0.5 * ref.anomaly_map / fused.folder.pixel_level + 0.5 * text.anomaly_map / text_level
    np.testing.assert_allclose(got.anomaly_map, want, rtol=1e-5, atol=1e-6)
    assert got.image_score == ref.image_score
    assert got.anomaly_map.shape == tokens.hw
    # the references map's blob survives the fusion (the text map of random weights is noise)
    assert region(got.anomaly_map, BLOB) > 1.1 * region(got.anomaly_map, BACKGROUND)


def test_fusion_weight_one_is_the_scaled_text_map(backbone, tiny_bundles):
    clip, _ = tiny_bundles
    m = TextFusedMapper(ReferenceMapper(backbone), VVAnomalyMapper(clip), weight=1.0)
    m.fit([m.encode_image(part(100 + i)) for i in range(3)])
    tokens = m.encode_image(part(7))
    text = m.text.anomaly(tokens.text, PROMPTS).anomaly_map
    np.testing.assert_allclose(m.anomaly(tokens, PROMPTS).anomaly_map, text / m.text_level(PROMPTS), rtol=1e-5)


def test_fusion_is_off_by_default_and_checked(backbone, tiny_bundles):
    clip, _ = tiny_bundles
    assert isinstance(make_folder_mapper("references", backbone), ReferenceMapper)
    fusedm = make_folder_mapper("references", backbone, text_mapper=VVAnomalyMapper(clip), text_weight=0.5)
    assert isinstance(fusedm, TextFusedMapper) and fusedm.kind == "references"
    assert fusedm.info()["text_fusion"]["weight"] == 0.5
    with pytest.raises(ValueError, match="text weight"):
        TextFusedMapper(ReferenceMapper(backbone), VVAnomalyMapper(clip), weight=0.0)
    with pytest.raises(ZsasError, match="at least 2 good"):
        fusedm.fit([fusedm.encode_image(part(100))])
    with pytest.raises(ValueError, match="needs a text mapper"):
        make_folder_mapper("references", backbone, text_weight=0.5)


def test_fused_tokens_round_trip_and_reject_a_broken_cache(fused):
    tokens = fused.encode_image(part(5))
    back = FusedTokens.from_numpy_dict(tokens.to_numpy_dict())
    np.testing.assert_array_equal(fused.anomaly(back, PROMPTS).anomaly_map,
                                  fused.anomaly(tokens, PROMPTS).anomaly_map)
    broken = {k: v for k, v in tokens.to_numpy_dict().items() if not k.startswith("text.")}
    with pytest.raises(ValueError):
        FusedTokens.from_numpy_dict(broken)


def test_fused_mapper_runs_in_the_pipeline_with_its_own_cache_keys(fused, tiny_bundles):
    clip, sam = tiny_bundles
    pipe = Pipeline(clip, sam, mapper=fused)
    image = part(9, blob=True)
    feats = pipe.features("img9", image, PROMPTS)
    np.testing.assert_allclose(feats.anomaly.anomaly_map,
                               fused.anomaly(fused.encode_image(image), PROMPTS).anomaly_map, rtol=1e-5)
    assert feats.map_info["text_fusion"]["weight"] == 0.5
    assert fused.tokens_key != fused.folder.tokens_key and fused.state_key != fused.folder.state_key


def test_search_dtype_follows_the_hardware_and_bfloat16_changes_little(backbone):
    assert search_dtype("cuda") == torch.bfloat16
    assert search_dtype("cpu") in (torch.float32, torch.bfloat16)
    feats = [backbone.extract(part(i, blob=(i == 2))) for i in range(6)]

    def grids(dtype):
        gen = iter_score_folder(feats, search=dtype)
        while True:
            try:
                next(gen)
            except StopIteration as done:
                return done.value[0]

    exact, fast = grids(torch.float32), grids(torch.bfloat16)
    for a, b in zip(exact, fast, strict=True):
        # bfloat16 inputs (8-bit mantissa) move the small distances of these near-identical
        # textures by < 1 % on average, < 3 % at most (measured 0.7 % / 2.4 %)
        assert np.abs(a - b).mean() < 0.015 * a.mean() and np.abs(a - b).max() < 0.05 * a.max()
    assert np.unravel_index(fast[2].argmax(), fast[2].shape) == np.unravel_index(exact[2].argmax(), exact[2].shape)
    assert MutualMapper(backbone, search="float32").state_key != MutualMapper(backbone, search="bfloat16").state_key
    assert MutualMapper(backbone, search="bfloat16").info()["search"] == "bfloat16"
    with pytest.raises(ValueError, match="search"):
        MutualMapper(backbone, search="float16")


@pytest.mark.parametrize("unit", [True, False])
def test_best_matches_of_images_of_different_sizes(unit):
    g = torch.Generator().manual_seed(0)
    q, bank = 3 * torch.randn(5, 8, generator=g), 3 * torch.randn(7, 8, generator=g)
    if unit:
        q, bank = (torch.nn.functional.normalize(x, dim=1) for x in (q, bank))
    rows, cols = best_matches(as_query(as_bank(q, torch.float32)), as_bank(bank, torch.float32), [3, 4])
    d = torch.cdist(q, bank)
    torch.testing.assert_close(rows, torch.stack([d[:, :3].amin(1), d[:, 3:].amin(1)], dim=1))
    torch.testing.assert_close(cols, d.amin(0))


def test_zsas_eval_fuses_the_references_map_with_the_text_map_on_request(tmp_path, tiny_models):
    import json

    from test_folder_maps_cli import mvtec_category

    from zsas_gui.cli import main

    clip, sam = tiny_models
    root = mvtec_category(tmp_path / "widget")
    common = ["--backbone", "timm:resnet18", "--backbone-weights", "random", "--clip", str(clip),
              "--sam", str(sam), "--device", "cpu", "--no-plots"]
    assert main(["eval", str(root), "-o", str(tmp_path / "fused"), "--map", "references",
                 "--text-weight", "0.5", *common]) == 0
    fused = json.loads((tmp_path / "fused" / "metrics.json").read_text())["map"]
    assert fused["mapper"] == "references" and fused["text_fusion"]["weight"] == 0.5
    assert main(["eval", str(root), "-o", str(tmp_path / "plain"), "--map", "references", *common]) == 0
    assert "text_fusion" not in json.loads((tmp_path / "plain" / "metrics.json").read_text())["map"]
    # fusion is for the references map only: a clear message, no run
    assert main(["eval", str(root), "-o", str(tmp_path / "bad"), "--map", "mutual",
                 "--text-weight", "0.5", *common]) != 0
