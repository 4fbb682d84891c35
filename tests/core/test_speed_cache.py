"""The next image instantly: the disk cache of CLIP tokens and SAM embeddings (hit, miss,
eviction, corruption, deletion), a precomputed image in a fresh Pipeline; model presets."""

import argparse
import os

import numpy as np
import pytest
from synthetic import blob_image

from zsas_gui.core.engine.cache import DiskCache
from zsas_gui.core.engine.pipeline import Pipeline
from zsas_gui.core.engine.presets import PRESETS, get_preset, preset_names
from zsas_gui.core.errors import ZsasError
from zsas_gui.core.types import MethodParams


def _arrays(n=100, value=1.0):
    return {"a": np.full(n, value, np.float32)}


def test_disk_cache_miss_then_hit_counts(tmp_path):
    cache = DiskCache(tmp_path)
    key = DiskCache.key("img", "model", "v1")
    assert cache.load(key) is None and (cache.hits, cache.misses) == (0, 1)
    cache.save(key, _arrays(value=2.0))
    got = cache.load(key)
    assert (cache.hits, cache.misses) == (1, 1) and np.array_equal(got["a"], _arrays(value=2.0)["a"])
    assert DiskCache.key("img", "model", "v1") == key
    assert len({key, DiskCache.key("img", "other-model", "v1"), DiskCache.key("img", "model", "v2")}) == 3


def test_disk_cache_evicts_least_recently_used(tmp_path):
    one = len(_npz_bytes(_arrays()))
    cache = DiskCache(tmp_path, max_bytes=3 * one + one // 2)
    keys = [DiskCache.key(str(i)) for i in range(3)]
    for i, k in enumerate(keys):
        cache.save(k, _arrays())
        os.utime(cache._path(k), (1000 + i, 1000 + i))          # saved in this order, long ago
    assert cache.load(keys[0]) is not None                       # used now: the most recent
    cache.save(DiskCache.key("new"), _arrays())                  # over budget: one file goes
    assert cache.load(keys[1]) is None                           # the least recently used
    assert cache.load(keys[0]) is not None and cache.load(keys[2]) is not None
    assert cache.nbytes <= cache.max_bytes


def _npz_bytes(arrays):
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "pickled_object"])
def test_corrupt_cache_file_is_dropped_never_trusted(tmp_path, damage):
    cache = DiskCache(tmp_path)
    key = DiskCache.key("x")
    cache.save(key, _arrays())
    path = cache._path(key)
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00not an npz" * 10)
    elif damage == "empty":
        path.write_bytes(b"")
    else:                                                         # loading it would need pickle
        np.savez(path.with_suffix(""), a=np.array([object()], dtype=object))
    assert cache.load(key) is None
    assert cache.corrupt == 1 and not path.exists()              # deleted, recomputed next time


def test_precomputed_image_in_a_fresh_pipeline_needs_no_encoder(tiny_bundles, tmp_path):
    clip, sam = tiny_bundles
    image = blob_image((80, 100), [(30, 40)])
    params = MethodParams()
    first = Pipeline(clip, sam, disk_cache=DiskCache(tmp_path)).run("img", image, params)
    fresh = Pipeline(clip, sam, disk_cache=DiskCache(tmp_path))   # a new session: empty memory
    again = fresh.run("img", image, params)
    assert fresh.encoder_calls == {"clip": 0, "sam": 0} and fresh.disk_cache.hits == 2
    assert np.array_equal(first.pred_mask, again.pred_mask)
    np.testing.assert_array_equal(first.prompts.points, again.prompts.points)


def test_cache_folder_deleted_while_running_is_recreated(tiny_bundles, tmp_path):
    import shutil

    clip, sam = tiny_bundles
    folder = tmp_path / "cache"
    image = blob_image((64, 64), [(20, 20)])
    pipe = Pipeline(clip, sam, disk_cache=DiskCache(folder))
    pipe.features("a", image)
    shutil.rmtree(folder)                                         # "safe to delete"
    fresh = Pipeline(clip, sam, disk_cache=DiskCache(folder))
    fresh.features("a", image)
    assert fresh.encoder_calls == {"clip": 1, "sam": 1} and len(list(folder.glob("*/*.npz"))) == 2


def test_wrong_shaped_cached_embedding_is_recomputed(tiny_bundles, tmp_path):
    clip, sam = tiny_bundles
    image = blob_image((64, 64), [(20, 20)])
    Pipeline(clip, sam, disk_cache=DiskCache(tmp_path)).features("a", image)
    for path in tmp_path.glob("*/*.npz"):
        with np.load(path) as data:
            if "features" in data.files:
                np.savez(path.with_suffix(""), features=np.zeros((3, 3), np.float32))
    fresh = Pipeline(clip, sam, disk_cache=DiskCache(tmp_path))
    feats = fresh.features("a", image)
    assert fresh.encoder_calls == {"clip": 0, "sam": 1} and feats.sam.features.ndim == 4


# --------------------------------------------------------------------------- presets


def test_presets_resolve_to_registry_models():
    from zsas_gui.core.models.loading import split_clip_size
    from zsas_gui.core.models.registry import get_spec

    assert preset_names() == ("fast", "balanced", "best")
    for p in PRESETS.values():
        assert get_spec(p.clip, "clip").kind == "clip" and get_spec(p.sam, "sam").kind == "sam"
        assert split_clip_size(p.clip_arg) == (p.clip, p.clip_size)
        assert p.first_result_s > 0 and p.next_image_ms > 0 and p.name in p.describe()
    fast, best = get_preset("fast"), get_preset(" BEST ")
    assert (fast.sam, fast.device, fast.clip_size) == ("mobile_sam", "cpu", 224)
    assert (best.sam, best.clip, best.clip_size, best.device) == ("vit_h", "ViT-L-14-336-quickgelu", 518, "cuda")
    assert fast.first_result_s <= 2.0
    with pytest.raises(ZsasError, match="fast, balanced, best"):
        get_preset("turbo")


def test_clip_size_suffix(tmp_path):
    from zsas_gui.core.models.loading import split_clip_size

    assert split_clip_size("ViT-B-16-quickgelu@336") == ("ViT-B-16-quickgelu", 336)
    assert split_clip_size("ViT-B-16") == ("ViT-B-16", None)
    assert split_clip_size(None) == (None, None)
    odd = tmp_path / "weights@224"                               # an existing path is a path
    odd.mkdir()
    assert split_clip_size(str(odd)) == (str(odd), None)
    assert split_clip_size("x@abc") == ("x@abc", None)


def test_cli_preset_fills_models_and_explicit_flags_win():
    from zsas_gui.cli.common import add_model_args

    p = argparse.ArgumentParser()
    add_model_args(p)
    a = p.parse_args(["--preset", "fast"])
    assert (a.preset, a.clip, a.sam) == ("fast", "ViT-B-16-quickgelu@224", "mobile_sam")
    for argv in (["--preset", "fast", "--sam", "vit_b"], ["--sam", "vit_b", "--preset", "fast"]):
        a = p.parse_args(argv)
        assert (a.clip, a.sam) == ("ViT-B-16-quickgelu@224", "vit_b")
    a = p.parse_args([])
    assert (a.preset, a.clip, a.sam) == (None, None, None)        # registry defaults apply
    with pytest.raises(SystemExit):
        p.parse_args(["--preset", "turbo"])
