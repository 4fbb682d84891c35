"""SAM 2.1 and HQ-SAM checkpoints: family and architecture read from the file, released layouts
recognised without a manifest, clear errors for what cannot be built."""

from __future__ import annotations

import pytest
import torch

from zsas_gui.core.errors import CheckpointError
from zsas_gui.core.models.loading import load_sam
from zsas_gui.core.models.sam2_loading import PACKAGE_CONFIGS, hiera_layout, package_config_file
from zsas_gui.core.models.sam_families import sam_family


def test_package_config_table_matches_the_configs_sam2_ships():
    for (is_21, width, stages), name in PACKAGE_CONFIGS.items():
        assert ("sam2.1/" in name) == is_21
        trunk = package_config_file(name)["image_encoder"]["trunk"]
        assert (trunk["embed_dim"], tuple(trunk.get("stages", (2, 3, 16, 3)))) == (width, stages), name


def test_released_sam2_1_tiny_layout_loads_without_a_manifest(tmp_path):
    """A full-size SAM 2.1 Hiera-T saved as Meta ships it ({"model": state dict}, random weights)."""
    from zsas_gui.core.models.sam2_loading import build_sam2_model

    torch.manual_seed(0)
    model = build_sam2_model(package_config_file(PACKAGE_CONFIGS[(True, 96, (1, 2, 7, 2))]))
    sd = model.state_dict()
    assert hiera_layout(sd, "x") == (True, 96, (1, 2, 7, 2)) and sam_family({"model": sd}) == "sam2"
    path = tmp_path / "sam2.1_hiera_tiny.pt"
    torch.save({"model": sd}, path)
    sam = load_sam(str(path), device="cpu")
    assert (sam.family, sam.long_side, sam.mask_input_size) == ("sam2", 1024, (256, 256))
    assert sam.info["arch"]["sam2_config"]["image_encoder"]["trunk"]["stages"] == [1, 2, 7, 2]
    got = sam.model.state_dict()
    assert all(torch.equal(got[k], v) for k, v in sd.items())


def test_released_hq_vit_tiny_layout_loads_without_a_manifest(tmp_path):
    """HQ-SAM's Light (TinyViT) model at full size, random weights, saved as a plain state dict."""
    from zsas_gui.core.models.hq_loading import build_hq_from_arch
    from zsas_gui.core.models.mobile_sam import mobile_sam_arch

    torch.manual_seed(0)
    sd = build_hq_from_arch({**mobile_sam_arch(), "hq": True, "vit_dim": 160}).state_dict()
    path = tmp_path / "sam_hq_vit_tiny.pth"
    torch.save(sd, path)
    sam = load_sam(str(path), device="cpu")
    assert sam.family == "sam_hq" and sam.info["arch"]["vit_dim"] == 160
    assert sam.info["arch"]["encoder"] == "tiny_vit" and sam.long_side == 1024


def test_sam2_checkpoint_of_an_unknown_layout_says_what_to_do(tmp_path, tiny_models):
    sd = torch.load(tiny_models[0].parent / "tiny-sam2" / "model.pt", weights_only=True)
    path = tmp_path / "odd_sam2.pt"
    torch.save(sd, path)                       # the tiny layout without its manifest
    with pytest.raises(CheckpointError, match=r"odd_sam2\.pt: SAM 2 checkpoint with Hiera width 8.*sam2_config"):
        load_sam(str(path), device="cpu")


def test_missing_package_is_named(monkeypatch, tiny_models):
    import sys

    monkeypatch.setitem(sys.modules, "segment_anything_hq", None)     # as if not installed
    with pytest.raises(CheckpointError, match="segment-anything-hq"):
        load_sam(str(tiny_models[0].parent / "tiny-sam-hq"), device="cpu")
