"""The folder maps' timm backbones in the registry (DINOv2 ViT-S/14 and ViT-B/14, Wide-ResNet-50-2):
the entries, their sizes against timm's state-dict layout, and a tiny timm model going through the
same download -> verify -> ``--backbone timm:NAME`` path, served from 127.0.0.1."""

from __future__ import annotations

import hashlib
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from test_download import fetch, server, spec_for  # noqa: F401  (server: the 127.0.0.1 file server)

from zsas_gui.cli import main as cli_main
from zsas_gui.core.errors import CheckpointError, ModelNotFoundError, ZsasError
from zsas_gui.core.maps.backbones import DEFAULT_TIMM_SIZE, DEFAULT_VIT_SIZE, load_backbone
from zsas_gui.core.models import registry

TOOL = Path(__file__).resolve().parents[2] / "tools" / "safetensors_size.py"
#: (name, timm arch.tag, bytes, SHA-256, input side): the numbers docs/models.md gives the sources of
EXPECTED = [
    ("dinov2_vits14", "vit_small_patch14_dinov2.lvd142m", 88_240_510,
     "04d27f3400d059fc0cfd7d17dd1909a75bf3ea8fb3eeb48b97cb99e57ee20081", DEFAULT_VIT_SIZE),
    ("dinov2_vitb14", "vit_base_patch14_dinov2.lvd142m", 346_334_872,
     "55cbb5d887b336d430e649c277b85a1429e724871f9d02ac16203235886d8c7b", DEFAULT_VIT_SIZE),
    ("wide_resnet50_2", "wide_resnet50_2.tv_in1k", 275_835_296,
     "df6fb6c4824769769de18e14088475fd6ee94236849aa4e5d8022ba9d9a9a16c", DEFAULT_TIMM_SIZE),
]


@pytest.fixture
def scratch_registry(monkeypatch):
    monkeypatch.setattr(registry, "_SPECS", dict(registry._SPECS))
    monkeypatch.setattr(registry, "_ALIASES", dict(registry._ALIASES))
    return registry


def test_the_three_backbones_are_pinned_timm_safetensors():
    specs = registry.list_specs("backbone")
    assert [(s.name, f"{s.arch}.{s.pretrained_tag}", s.size_bytes, s.checksum, s.image_size) for s in specs] \
        == EXPECTED
    for s in specs:
        repo = f"{s.arch}.{s.pretrained_tag}"
        assert re.fullmatch(rf"https://huggingface\.co/timm/{re.escape(repo)}/resolve/[0-9a-f]{{40}}/"
                            r"model\.safetensors", s.url), s.url
        assert s.file_name.endswith(".safetensors") and s.checksum_algo == "sha256", s
        assert s.licence in ("Apache-2.0", "BSD-3-Clause") and "docs/models.md" in s.source, s
        # the timm names resolve to the entry too, and it is not a CLIP or SAM model
        assert registry.get_spec(repo, "backbone") is s and registry.get_spec(s.arch, "backbone") is s
        with pytest.raises(ModelNotFoundError, match="is a backbone model, but a SAM model"):
            registry.get_spec(s.name, "sam")
    assert registry.get_spec("wrn50") is registry.get_spec("wide_resnet50_2")


@pytest.mark.slow
def test_registered_sizes_agree_with_timms_state_dict_layout():
    """The sizes public projects record, against a safetensors file of zeros in the layout of
    timm's own model: ViT-B/14 and WRN-50-2 byte for byte; ViT-S/14's tensor data exactly, its
    header between our unpadded and padded serialisation (15,731-15,736 bytes; the Hub file's is
    15,734: written by a safetensors version that did not pad)."""
    module_spec = importlib.util.spec_from_file_location("safetensors_size", TOOL)
    tool = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(tool)
    for name, repo, nbytes, _sha, _side in EXPECTED:
        size, data, unpadded, padded = tool.safetensors_layout_size(tool.state_dict_layout(repo))
        if name == "dinov2_vits14":
            assert unpadded <= nbytes - 8 - data <= padded, (name, size, data, unpadded, padded)
        else:
            assert size == nbytes, (name, size)


@pytest.mark.parametrize("arch", ["test_vit", "test_resnet"])
def test_a_tiny_timm_model_downloads_verifies_and_serves_as_backbone(arch, server, scratch_registry,  # noqa: F811
                                                                     tmp_path, monkeypatch):
    """The registry path of the real entries with a tiny timm model (a ViT whose position
    embedding is resampled, like DINOv2's; a ResNet, like WRN-50-2): not installed -> a message
    naming the download command; downloaded from 127.0.0.1 and checked against its SHA-256 and
    size; ``--backbone timm:NAME`` without ``--backbone-weights`` loads those weights."""
    import timm
    from safetensors.torch import save

    cache = tmp_path / "cache"
    monkeypatch.setenv(registry.MODELS_DIR_ENV, str(cache))
    torch.manual_seed(3)
    state = timm.create_model(arch, pretrained=None).state_dict()
    data = save(state)
    server.state.files[f"/{arch}.safetensors"] = data
    name = f"tiny-{arch}"
    spec = spec_for(server.url + f"/{arch}.safetensors", data, name=name, kind="backbone", arch=arch,
                    file_name=f"{arch}.safetensors", image_size=DEFAULT_TIMM_SIZE)
    registry.register_spec(spec, aliases=(f"{arch}.tiny",))

    with pytest.raises(ModelNotFoundError, match=f"zsas models download {name}"):
        load_backbone(f"timm:{name}", None, None)
    assert fetch(spec, cache) == cache / spec.file_name

    backbone = load_backbone(f"timm:{arch}.tiny", None, None)
    assert backbone.arch == arch and backbone.weights_tag == hashlib.sha256(data).hexdigest()[:16]
    loaded = backbone.model.state_dict()
    same = [k for k in state if k != "pos_embed" and not k.startswith(("head.", "fc."))]
    assert same and all(torch.equal(loaded[k], state[k]) for k in same)
    feats = backbone.extract(np.full((40, 56, 3), 128, np.uint8))
    assert feats.layers and all(layer.dtype == torch.float16 for layer in feats.layers)

    # the cached copy is stat-checked on every load: a truncated one is an error, never loaded
    (cache / spec.file_name).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="delete it and run `zsas models download"):
        load_backbone(f"timm:{name}", None, None)


def test_an_unknown_timm_name_without_weights_lists_the_registry_backbones():
    with pytest.raises(ZsasError, match="dinov2_vits14, dinov2_vitb14, wide_resnet50_2"):
        load_backbone("timm:efficientnet_lite0", None, None)


def test_models_list_shows_the_backbones(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(registry.MODELS_DIR_ENV, str(tmp_path))
    assert cli_main(["models", "list", "--kind", "backbone"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:4]]
    assert [(r[0], r[1], r[2] + r[3], r[4]) for r in rows] == [
        ("dinov2_vits14", "backbone", "88MB", "missing"), ("dinov2_vitb14", "backbone", "346MB", "missing"),
        ("wide_resnet50_2", "backbone", "276MB", "missing")]


def test_docs_models_lists_every_entry_and_the_backbones_numbers():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "models.md").read_text(encoding="utf-8")
    for s in registry.list_specs():
        assert f"| {s.kind} | `{s.name}` | {s.size_text} |" in doc, s.name
    for s in registry.list_specs("backbone"):
        rev = s.url.split("/resolve/")[1].split("/")[0]
        assert f"| `{s.name}` | `timm/{s.arch}.{s.pretrained_tag}` @ `{rev}` | {s.size_bytes:,} | `{s.checksum}` |" \
            in doc, s.name
