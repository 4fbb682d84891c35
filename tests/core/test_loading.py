"""Checkpoint loading: the tiny models load through the real code path; bad files are refused."""

import pickle

import pytest
import torch

from zsas_gui.core.errors import CheckpointError, ModelNotFoundError
from zsas_gui.core.models.loading import load_clip, load_sam, sam_arch_from_state_dict


def test_tiny_models_load_like_real_ones(tiny_bundles):
    clip, sam = tiny_bundles
    assert clip.model_id.startswith("random-test:") and clip.image_size == 112
    assert sam.long_side == 256 and sam.mask_input_size == (64, 64)
    assert clip.info["random_test_model"] and sam.info["random_test_model"]


def test_real_sam_geometry_is_read_from_shapes():
    from segment_anything import sam_model_registry

    sd = sam_model_registry["vit_b"](checkpoint=None).state_dict()
    a = sam_arch_from_state_dict(sd, "vit_b.pth")
    assert (a["embed_dim"], a["depth"], a["num_heads"], a["img_size"]) == (768, 12, 12, 1024)
    assert a["global_attn_indexes"] == [2, 5, 8, 11] and a["window_size"] == 14
    assert (a["prompt_dim"], a["decoder_mlp_dim"], a["iou_hidden"]) == (256, 2048, 256)


def test_sam_from_a_bare_pth_file(tiny_models):
    _, sam_dir = tiny_models
    sam = load_sam(str(sam_dir / "model.pth"), device="cpu")
    assert sam.long_side == 256


def test_clip_file_given_as_sam_is_refused(tiny_models):
    clip_dir, _ = tiny_models
    with pytest.raises(CheckpointError, match="not a SAM checkpoint"):
        load_sam(str(clip_dir / "open_clip_model.safetensors"), device="cpu")


def test_sam_folder_given_as_clip_is_refused(tiny_models):
    _, sam_dir = tiny_models
    with pytest.raises(CheckpointError, match="open_clip_config.json"):
        load_clip(str(sam_dir), device="cpu")


def test_truncated_checkpoint(tiny_models, tmp_path):
    _, sam_dir = tiny_models
    data = (sam_dir / "model.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="cut.pth.*truncated or corrupt"):
        load_sam(str(tmp_path / "cut.pth"), device="cpu")


class _Evil:
    def __reduce__(self):
        import os
        return (os.system, ("echo pwned > /dev/null",))


def test_pickle_that_runs_code_is_refused(tmp_path):
    torch.save({"image_encoder.pos_embed": _Evil()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="refused to load"):
        load_sam(str(tmp_path / "evil.pth"), device="cpu")
    with open(tmp_path / "evil2.pth", "wb") as f:
        pickle.dump(_Evil(), f)
    with pytest.raises(CheckpointError):
        load_sam(str(tmp_path / "evil2.pth"), device="cpu")


def test_missing_checkpoint_and_unknown_name(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSAS_MODELS_DIR", str(tmp_path / "cache"))
    with pytest.raises(ModelNotFoundError) as err:
        load_sam("vit_b", device="cpu")
    msg = str(err.value)
    assert "sam_vit_b_01ec64.pth" in msg and str(tmp_path / "cache") in msg and "zsas models download" in msg
    with pytest.raises(ModelNotFoundError, match="vit_q"):
        load_sam("vit_q", device="cpu")
    with pytest.raises(ModelNotFoundError, match="nothing.pth"):
        load_sam(str(tmp_path / "nothing.pth"), device="cpu")


def test_half_precision_encoder_wrapper_keeps_fp32_interface(tiny_bundles):
    """On CUDA the SAM encoder runs in fp16 behind an fp32 interface; the wrapper's contract is
    checked here in bfloat16 on the CPU (fp16 convolutions need a GPU)."""
    from zsas_gui.core.models.half import HalfPrecisionEncoder

    _, sam = tiny_bundles
    enc = sam.model.image_encoder
    wrapped = HalfPrecisionEncoder(__import__("copy").deepcopy(enc), torch.bfloat16)
    x = torch.randn(1, 3, 256, 256)
    with torch.inference_mode():
        ref, out = enc(x), wrapped(x)
    assert out.dtype == torch.float32 and out.shape == ref.shape and wrapped.img_size == enc.img_size
    assert torch.allclose(out, ref, atol=0.1, rtol=0.1)
