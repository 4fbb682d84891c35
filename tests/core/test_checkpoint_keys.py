"""Issue 13, fix 5: every cache is keyed by the checkpoint's content, the preprocessing and the
precision; a CLIP's activation comes from its config or the file is refused."""

import json
import shutil

import numpy as np
import pytest
from synthetic import blob_image

from zsas_gui.core.engine.cache import DiskCache
from zsas_gui.core.engine.pipeline import Pipeline
from zsas_gui.core.errors import CheckpointError
from zsas_gui.core.models.loading import load_clip, load_sam
from zsas_gui.core.models.testmodels import make_test_models


@pytest.fixture(scope="module")
def two_model_sets(tmp_path_factory):
    """Two tiny CLIP + SAM pairs of the same architecture, same names, different weights."""
    a = make_test_models(tmp_path_factory.mktemp("seed0"), seed=0)
    b = make_test_models(tmp_path_factory.mktemp("seed5"), seed=5)
    return a, b


def test_second_checkpoint_of_the_same_architecture_is_not_served_the_first_ones_cache(
        two_model_sets, tmp_path):
    (clip_a, sam_a), (clip_b, sam_b) = two_model_sets
    image = blob_image((64, 64), [(20, 20)])
    disk = DiskCache(tmp_path / "cache")
    first = Pipeline(load_clip(str(clip_a), device="cpu"), load_sam(str(sam_a), device="cpu"), disk_cache=disk)
    fa = first.features("img", image)
    second = Pipeline(load_clip(str(clip_b), device="cpu"), load_sam(str(sam_b), device="cpu"), disk_cache=disk)
    fb = second.features("img", image)
    assert second.encoder_calls == {"clip": 1, "sam": 1}       # nothing served from the first's cache
    assert first.model_ids["clip"] != second.model_ids["clip"]
    assert first.model_ids["sam"] != second.model_ids["sam"]
    assert not np.allclose(fa.anomaly.anomaly_map, fb.anomaly.anomaly_map)
    third = Pipeline(load_clip(str(clip_a), device="cpu"), load_sam(str(sam_a), device="cpu"), disk_cache=disk)
    third.features("img", image)
    assert third.encoder_calls == {"clip": 0, "sam": 0}       # the same checkpoint still hits


def test_model_ids_hold_digest_and_precision(two_model_sets):
    (clip_a, sam_a), _ = two_model_sets
    clip, sam = load_clip(str(clip_a), device="cpu"), load_sam(str(sam_a), device="cpu")
    for bundle in (clip, sam):
        digest = bundle.info["sha256"]
        assert len(digest) == 64 and f"sha256:{digest[:16]}" in bundle.model_id
        assert "/fp32/" in bundle.model_id


def test_changed_file_gets_a_new_digest(two_model_sets, tmp_path):
    (_, sam_a), (_, sam_b) = two_model_sets
    folder = shutil.copytree(sam_a, tmp_path / "sam")
    before = load_sam(str(folder), device="cpu").model_id
    shutil.copyfile(sam_b / "model.pth", folder / "model.pth")   # same path, new content
    assert load_sam(str(folder), device="cpu").model_id != before


def test_clip_config_change_changes_the_id(two_model_sets, tmp_path):
    (clip_a, _), _ = two_model_sets
    folder = shutil.copytree(clip_a, tmp_path / "clip")
    before = load_clip(str(folder), device="cpu")
    cfg = json.loads((folder / "open_clip_config.json").read_text())
    cfg["model_cfg"]["quick_gelu"] = False                       # GELU: another model, same weights
    (folder / "open_clip_config.json").write_text(json.dumps(cfg))
    after = load_clip(str(folder), device="cpu")
    assert after.model_id != before.model_id
    assert before.info["quick_gelu"] and not after.info["quick_gelu"]


def test_bare_clip_file_without_config_is_refused(two_model_sets):
    """A bare weights file says nothing of its activation; it used to be loaded as QuickGELU."""
    (clip_a, _), _ = two_model_sets
    with pytest.raises(CheckpointError, match="activation"):
        load_clip(str(clip_a / "open_clip_model.safetensors"), device="cpu")


def test_bare_clip_file_is_loaded_when_its_checksum_is_a_registry_checkpoint(two_model_sets, monkeypatch,
                                                                            tmp_path):
    """The activation then comes from the registry entry's architecture."""
    import open_clip

    from zsas_gui.core.models import registry
    from zsas_gui.core.models.digest import file_sha256
    from zsas_gui.core.models.testmodels import TINY_CLIP_CFG

    (clip_a, _), _ = two_model_sets
    monkeypatch.setattr(registry, "_SPECS", dict(registry._SPECS))
    monkeypatch.setattr(registry, "_ALIASES", dict(registry._ALIASES))
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "zsas-keys-tiny-quickgelu.json").write_text(json.dumps(TINY_CLIP_CFG))
    open_clip.add_model_config(tmp_path / "cfg")
    weights = clip_a / "open_clip_model.safetensors"
    registry.register_spec(registry.ModelSpec(
        name="zsas-keys-tiny", kind="clip", arch="zsas-keys-tiny-quickgelu", file_name="zsas-keys-tiny.st",
        url="https://example.invalid/zsas-keys-tiny.st", size_bytes=weights.stat().st_size,
        checksum=file_sha256(weights), checksum_algo="sha256", image_size=112, licence="test",
        description="tiny test CLIP"))
    bundle = load_clip(str(weights), device="cpu")
    assert bundle.info["registry_name"] == "zsas-keys-tiny"
    assert bundle.model_id.startswith("zsas-keys-tiny-quickgelu@112/fp32/sha256:")
    assert type(bundle.model.visual.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"
