"""Bad checkpoints and model folders: every one is a CheckpointError naming the file, nothing in
them runs, and a model folder cannot point the loader outside itself. (Truncated SAM .pth, CLIP
given as SAM, SAM folder as CLIP and a pickled os.system in a SAM .pth are in
tests/core/test_loading.py; here the payload is also proven never to run, through every path.)"""

from __future__ import annotations

import json
import pickle
import shutil

import pytest
import torch

from zsas_gui.cli import main
from zsas_gui.core.errors import CheckpointError
from zsas_gui.core.models.loading import load_clip, load_sam


class _Payload:
    """Unpickling this creates the file ``marker`` (what a hostile checkpoint would do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def models(tiny_models, tmp_path):
    """Private copies of the tiny model folders (tests damage them)."""
    clip, sam = tiny_models
    return (shutil.copytree(clip, tmp_path / "clip"), shutil.copytree(sam, tmp_path / "sam"))


def _edit_json(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("where", ["sam-pth", "sam-folder", "clip-bin", "clip-bare", "cli"])
def test_a_pickle_that_runs_code_is_refused_and_never_runs(models, tmp_path, where, capsys):
    clip, sam = models
    marker = tmp_path / "PWNED"
    evil_sd = {"image_encoder.pos_embed": _Payload(marker), "w": torch.zeros(1)}
    if where in ("sam-pth", "cli"):
        torch.save(evil_sd, tmp_path / "evil.pth")
    if where == "sam-pth":
        with pytest.raises(CheckpointError, match="evil.pth.*refused to load"):
            load_sam(str(tmp_path / "evil.pth"), device="cpu")
    elif where == "sam-folder":
        torch.save(evil_sd, sam / "model.pth")
        with pytest.raises(CheckpointError, match="refused to load"):
            load_sam(str(sam), device="cpu")
    elif where == "clip-bin":
        (clip / "open_clip_model.safetensors").unlink()
        with open(clip / "open_clip_pytorch_model.bin", "wb") as fh:
            pickle.dump({"visual.conv1.weight": _Payload(marker)}, fh)
        with pytest.raises(CheckpointError):
            load_clip(str(clip), device="cpu")
    elif where == "clip-bare":
        torch.save({"visual.conv1.weight": _Payload(marker)}, tmp_path / "clip.pth")
        with pytest.raises(CheckpointError, match="refused to load"):
            load_clip(str(tmp_path / "clip.pth"), device="cpu")
    else:
        (tmp_path / "x.png").write_bytes((clip / "open_clip_config.json").read_bytes())
        rc = main(["segment", str(tmp_path / "x.png"), "-o", str(tmp_path / "out"), "--clip", str(clip),
                   "--sam", str(tmp_path / "evil.pth"), "--device", "cpu"])
        err = capsys.readouterr().err
        assert rc == 1 and "refused to load" in err and "Traceback" not in err
    assert not marker.exists(), "the pickle ran code"


def test_zero_byte_and_truncated_safetensors(models, tmp_path):
    clip, _ = models
    (tmp_path / "zero.pth").write_bytes(b"")
    for loader in (load_sam, load_clip):
        with pytest.raises(CheckpointError, match="zero.pth.*truncated or corrupt"):
            loader(str(tmp_path / "zero.pth"), device="cpu")
    weights = clip / "open_clip_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="open_clip_model.safetensors"):
        load_clip(str(clip), device="cpu")
    weights.write_bytes(b"\xff" * 8 + b"{}")                # header length beyond the file
    with pytest.raises(CheckpointError, match="open_clip_model.safetensors"):
        load_clip(str(clip), device="cpu")


def _png() -> bytes:
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((40, 48, 3), 128, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _sam_state(sam):
    return torch.load(sam / "model.pth", weights_only=True)


@pytest.mark.parametrize("damage", ["extra-key", "wrong-shape", "missing-rel-pos", "missing-block"])
def test_sam_of_the_wrong_architecture(models, tmp_path, damage):
    _, sam = models
    sd = _sam_state(sam)
    if damage == "extra-key":
        sd["extra.weight"] = torch.zeros(1)
    elif damage == "wrong-shape":
        k = "mask_decoder.output_upscaling.0.weight"
        sd[k] = torch.zeros(sd[k].shape[0] + 1, *sd[k].shape[1:])
    elif damage == "missing-rel-pos":
        sd = {k: v for k, v in sd.items() if ".attn.rel_pos" not in k}
    else:
        sd = {k: v for k, v in sd.items() if not k.startswith("image_encoder.blocks.0.")}   # a gap
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="bad.pth"):
        load_sam(str(tmp_path / "bad.pth"), device="cpu")


@pytest.mark.parametrize("config", [
    "[1, 2]",
    '{"model_cfg": {"embed_dim": 32}}',
    "width",                       # vision width changed: weights do not fit
    "bogus-key",                   # an argument open_clip does not know
    "[" * 50_000,
])
def test_clip_folder_with_a_bad_config(models, config):
    clip, _ = models
    cfg_file = clip / "open_clip_config.json"
    if config == "width":
        _edit_json(cfg_file, lambda d: d["model_cfg"]["vision_cfg"].update(width=64))
    elif config == "bogus-key":
        _edit_json(cfg_file, lambda d: d["model_cfg"]["vision_cfg"].update(bogus=1))
    else:
        cfg_file.write_text(config)
    with pytest.raises(CheckpointError, match=str(clip)):
        load_clip(str(clip), device="cpu")


@pytest.mark.parametrize("manifest", ["[1]", "[" * 50_000, "{not json"])
@pytest.mark.parametrize("kind", ["clip", "sam"])
def test_unreadable_model_manifest(models, kind, manifest):
    clip, sam = models
    folder = clip if kind == "clip" else sam
    (folder / "zsas_model.json").write_text(manifest)
    loader = load_clip if kind == "clip" else load_sam
    with pytest.raises(CheckpointError, match="zsas_model.json"):
        loader(str(folder), device="cpu")


@pytest.mark.parametrize("weights, heads", [("../outside/model.pth", 2), ("/etc/passwd", 2), (5, 2),
                                            ("model.pth", 3), ("model.pth", "x")])
def test_sam_manifest_cannot_point_outside_or_break_the_builder(models, tmp_path, weights, heads):
    _, sam = models
    (tmp_path / "outside").mkdir()
    shutil.copy(sam / "model.pth", tmp_path / "outside" / "model.pth")
    _edit_json(sam / "zsas_model.json", lambda d: d.update(weights=weights, decoder_num_heads=heads))
    with pytest.raises(CheckpointError, match="zsas_model.json|model.pth"):
        load_sam(str(sam), device="cpu")


# -- issue 14: checkpoints that stopped a batch or exhausted memory ------------------------------
def test_truncated_or_lying_bare_safetensors_as_clip_or_sam(models, tmp_path, capsys):
    """A bare ``.safetensors`` given as ``--clip``/``--sam``: truncated, or a header whose sizes
    lie about the data, is a one-line error naming the file (was a SafetensorError traceback)."""
    import struct

    from safetensors.torch import save_file

    clip, sam = models
    ok = tmp_path / "ok.safetensors"
    save_file({k: v.contiguous() for k, v in _sam_state(sam).items()}, str(ok))
    data = ok.read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(data[:len(data) // 2])
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    first = next(k for k in header if k != "__metadata__")
    header[first]["shape"], header[first]["data_offsets"] = [100000, 100000], [0, 40_000_000_000]
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    (tmp_path / "lie.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n:])
    for name in ("trunc", "lie"):
        path = tmp_path / f"{name}.safetensors"
        for loader in (load_sam, load_clip):
            with pytest.raises(CheckpointError, match=f"{name}.safetensors"):
                loader(str(path), device="cpu")
        img = tmp_path / "img"
        if not img.exists():
            img.mkdir()
            (img / "a.png").write_bytes(_png())
        assert main(["segment", str(img), "-o", str(tmp_path / "out"), "--clip", str(clip), "--sam", str(path),
                     "--device", "cpu"]) == 1
        err = capsys.readouterr().err
        assert "Traceback" not in err and f"{name}.safetensors" in err


@pytest.mark.parametrize("trick", ["expanded-views", "empty-tensors", "missing-blocks"])
def test_a_small_sam_declaring_a_huge_architecture_is_refused_before_building(models, tmp_path, trick,
                                                                                monkeypatch):
    """A few-KB SAM .pth whose shapes declare a 4096-wide, 200-block encoder: refused from the
    file alone (was ~5 GB allocated by the builder before a misleading error). The builder is
    made to fail the test if it is ever asked to build for real."""
    from zsas_gui.core.models import loading

    _, sam = models
    sd = _sam_state(sam)
    big = 4096
    huge = {}
    for k, v in sd.items():
        if not k.startswith("image_encoder."):
            huge[k] = v
    shapes = {"image_encoder.patch_embed.proj.weight": (big, 3, 16, 16), "image_encoder.pos_embed": (1, 64, 64, big)}
    blocks = range(200) if trick != "missing-blocks" else (0, 199)
    for i in blocks:
        shapes[f"image_encoder.blocks.{i}.attn.rel_pos_h"] = (127 if i == 199 else 27, 128)
        shapes[f"image_encoder.blocks.{i}.attn.rel_pos_w"] = (127 if i == 199 else 27, 128)
        shapes[f"image_encoder.blocks.{i}.mlp.lin1.weight"] = (4 * big, big)
    for k, shape in shapes.items():
        if trick == "empty-tensors":
            huge[k] = torch.zeros(shape[0], 0, *shape[2:]) if len(shape) > 2 else torch.zeros(shape[0], 0)
            huge[k] = huge[k] if k != "image_encoder.pos_embed" else torch.zeros(1, 64, 64, 0)
        else:
            huge[k] = torch.zeros(1).expand(*shape)
    path = tmp_path / "huge.pth"
    torch.save(huge, path)
    assert path.stat().st_size < 2_000_000

    built = []

    def no_real_build(arch):
        built.append((arch.get("embed_dim"), arch.get("depth")))
        raise MemoryError("the test stops the real build here")

    real_build = loading.build_sam_from_arch
    monkeypatch.setattr(loading, "build_sam_from_arch",
                        lambda a: real_build(a) if torch.empty(0).device.type == "meta" else no_real_build(a))
    with pytest.raises(CheckpointError, match="huge.pth"):
        load_sam(str(path), device="cpu")
    assert built == []



@pytest.mark.parametrize("junk", [b"junk junk", b"\x80\x02junk"])
def test_junk_bytes_in_a_pth_name_the_file(tmp_path, junk):
    """Reproduction (the app's re-check): junk bytes in a .pth raised a bare ``KeyError: 543911541``
    (or ``struct.error``) from torch's legacy reader, a message without the file's name."""
    from zsas_gui.core.models.loading import load_state_dict

    bad = tmp_path / "junk.pth"
    bad.write_bytes(junk)
    with pytest.raises(CheckpointError, match="junk.pth: cannot read checkpoint"):
        load_state_dict(bad)
