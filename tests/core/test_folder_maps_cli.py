"""Folder maps in the pipeline and the CLI: features cached in memory and on disk (hit, miss,
corrupt file), the map cache follows the folder, provenance names the map, ``zsas eval``/
``segment``/``explain`` with ``--map``; timm state dicts loaded or refused with a clear message."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from synthetic import BACKGROUND, BLOB, part, region

from zsas_gui.cli import main
from zsas_gui.core.engine.cache import DiskCache
from zsas_gui.core.engine.folder_maps import fit_folder
from zsas_gui.core.engine.pipeline import Pipeline
from zsas_gui.core.errors import CheckpointError, ZsasError
from zsas_gui.core.maps.backbones import TimmBackbone, load_backbone, parse_backbone
from zsas_gui.core.maps.folder_select import resolve_map_kind
from zsas_gui.core.maps.mutual import MutualMapper


@pytest.fixture(scope="module")
def backbone():
    return TimmBackbone("resnet18", "random", image_size=64, depths=(2, 3))


def write_folder(folder: Path, n: int, blob_at: tuple[int, ...] = (2,), seed0: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"{i:03d}.png"
        Image.fromarray(part(seed0 + i, blob=i in blob_at)).save(p)
        paths.append(p)
    return paths


def test_features_cached_in_memory_and_on_disk(tmp_path, tiny_bundles, backbone):
    _, sam = tiny_bundles
    paths = write_folder(tmp_path / "in", 4)
    disk = DiskCache(tmp_path / "cache")
    pipe = Pipeline(None, sam, mapper=MutualMapper(backbone), disk_cache=disk)
    fit_folder(pipe, paths)
    assert pipe.encoder_calls["clip"] == 4 and disk.misses == 4
    fit_folder(pipe, paths)                        # memory hits: no encoder, no disk read
    assert pipe.encoder_calls["clip"] == 4 and disk.hits == 0
    fresh = Pipeline(None, sam, mapper=MutualMapper(backbone), disk_cache=disk)
    fit_folder(fresh, paths)                       # disk hits
    assert fresh.encoder_calls["clip"] == 0 and disk.hits == 4
    victim = min((tmp_path / "cache").glob("*/*.npz"))
    victim.write_bytes(b"not an npz")
    again = Pipeline(None, sam, mapper=MutualMapper(backbone), disk_cache=disk)
    fit_folder(again, paths)                       # the corrupt file is dropped and recomputed
    assert again.encoder_calls["clip"] == 1 and disk.corrupt == 1
    grids = [again.mapper.score_grid(f) for f in again.mapper.folder]
    for a, b in zip(grids, [pipe.mapper.score_grid(f) for f in pipe.mapper.folder], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5)


def test_map_cache_follows_the_folder_and_provenance_names_the_map(tmp_path, tiny_bundles, backbone):
    _, sam = tiny_bundles
    with_blob = write_folder(tmp_path / "a", 4, blob_at=(2,))
    pipe = Pipeline(None, sam, mapper=MutualMapper(backbone))
    fit_folder(pipe, with_blob)
    image = np.asarray(Image.open(with_blob[2]))
    first = pipe.run(None, image)
    assert region(first.anomaly.anomaly_map, BLOB) > 1.4 * region(first.anomaly.anomaly_map, BACKGROUND)
    assert first.provenance["map"]["mapper"] == "mutual"
    assert first.provenance["map"]["folder_images"] == 4
    # the same image now also in two other folders' images: its map must be recomputed
    fit_folder(pipe, [with_blob[2], *write_folder(tmp_path / "b", 3, blob_at=(0, 1, 2), seed0=50)])
    second = pipe.run(None, image)
    assert second.provenance["map"]["folder_images"] == 4
    assert not np.allclose(first.anomaly.anomaly_map, second.anomaly.anomaly_map)
    assert pipe.encoder_calls["clip"] == 7          # the shared image was encoded once


def test_resolve_map_kind():
    assert resolve_map_kind("auto", 3, 10) == "references"
    assert resolve_map_kind("auto", 0, 10) == "mutual"
    assert resolve_map_kind("auto", 0, 2) == "text"
    assert resolve_map_kind("text", 5, 50) == "text"
    with pytest.raises(ZsasError, match="--references"):
        resolve_map_kind("references", 0, 10)
    with pytest.raises(ZsasError, match="at least 3 images"):
        resolve_map_kind("mutual", 0, 2)


def test_timm_state_dict_loads_and_bad_files_are_refused(tmp_path):
    from safetensors.torch import save_file

    ref = TimmBackbone("resnet18", "random", image_size=64, depths=(2, 3))
    good = tmp_path / "r18.safetensors"
    save_file({k: v.contiguous() for k, v in ref.model.state_dict().items()}, str(good))
    loaded = TimmBackbone("resnet18", good, image_size=64, depths=(2, 3))
    img = part(3)
    for a, b in zip(ref.extract(img).layers, loaded.extract(img).layers, strict=True):
        torch.testing.assert_close(a, b)
    pth = tmp_path / "r18.pth"
    torch.save(ref.model.state_dict(), pth)
    assert TimmBackbone("resnet18", pth, image_size=64, depths=(2, 3)).model_id != ref.model_id
    with pytest.raises(CheckpointError, match="not a timm"):
        TimmBackbone("resnet34", good, image_size=64)
    with pytest.raises(CheckpointError, match="not found"):
        TimmBackbone("resnet18", tmp_path / "missing.pth")
    with pytest.raises(ZsasError, match="timm has no model"):
        TimmBackbone("no_such_net", good)
    with pytest.raises(ZsasError, match="--backbone-weights"):
        load_backbone("timm:resnet18", None, None)
    with pytest.raises(ZsasError, match="timm:ARCH"):
        parse_backbone("resnet18")


def test_clip_tower_backbone_gives_plain_stream_tokens(tiny_bundles):
    clip, _ = tiny_bundles
    bb = load_backbone(None, None, clip)
    feats = bb.extract(part(1))
    g = clip.model.visual.grid_size
    assert feats.grid == tuple(g) and len(feats.layers) == len(bb.depths)
    assert all(t.dtype == torch.float16 for t in feats.layers)


def mvtec_category(root: Path) -> Path:
    """test/good (3), test/blob (2 + masks), train/good (3)."""
    for i, p in enumerate(write_folder(root / "test" / "good", 3, blob_at=(), seed0=0)):
        assert p.exists(), i
    write_folder(root / "train" / "good", 3, blob_at=(), seed0=20)
    (root / "ground_truth" / "blob").mkdir(parents=True)
    yy, xx = np.mgrid[:96, :96]
    mask = (((yy - 40) ** 2 + (xx - 60) ** 2) < 100).astype(np.uint8) * 255
    for i in range(2):
        p = root / "test" / "blob" / f"{i:03d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(part(10 + i, blob=True)).save(p)
        Image.fromarray(mask).save(root / "ground_truth" / "blob" / f"{i:03d}_mask.png")
    return root


@pytest.mark.parametrize("kind", ["mutual", "references"])
def test_zsas_eval_with_a_folder_map(tmp_path, tiny_models, kind):
    _, sam = tiny_models
    root = mvtec_category(tmp_path / "widget")
    out = tmp_path / "out"
    rc = main(["eval", str(root), "-o", str(out), "--map", kind, "--backbone", "timm:resnet18",
               "--backbone-weights", "random", "--sam", str(sam), "--device", "cpu", "--no-plots"])
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["map"]["used"] == kind and metrics["map"]["mapper"] == kind
    if kind == "references":
        assert metrics["map"]["references"] == 3        # ROOT/train/good
    else:
        assert metrics["map"]["folder_images"] == 5     # the category's test images
    heat = metrics["categories"]["widget"]["all"]["predictors"]["heatmap"]
    assert heat["pixel_auroc"] > 0.8


def test_patch_distance_and_density_flags_reach_the_mapper(tmp_path, tiny_models):
    """--patch-distance / --no-density (D39, D40) change the map and are recorded with it."""
    _, sam = tiny_models
    root = mvtec_category(tmp_path / "widget")
    common = ["--map", "mutual", "--backbone", "timm:resnet18", "--backbone-weights", "random",
              "--sam", str(sam), "--device", "cpu", "--no-plots"]
    maps = {}
    for name, flags in {"default": [], "plain": ["--patch-distance", "cosine", "--no-density"]}.items():
        assert main(["eval", str(root), "-o", str(tmp_path / name), *common, *flags]) == 0
        maps[name] = json.loads((tmp_path / name / "metrics.json").read_text())["map"]
    assert (maps["default"]["distance"], maps["default"]["density"]) == ("euclidean", True)
    assert (maps["plain"]["distance"], maps["plain"]["density"]) == ("cosine", False)


def test_zsas_segment_and_explain_with_auto_map(tmp_path, tiny_models):
    _, sam = tiny_models
    paths = write_folder(tmp_path / "in", 4)
    refs = write_folder(tmp_path / "refs", 2, blob_at=(), seed0=30)
    out = tmp_path / "seg"
    common = ["--backbone", "timm:resnet18", "--backbone-weights", "random", "--sam", str(sam),
              "--device", "cpu"]
    assert main(["segment", str(tmp_path / "in"), "-o", str(out), "--map", "auto", *common]) == 0
    record = json.loads((out / "records" / "002.json").read_text())
    assert record["map"]["mapper"] == "mutual"
    assert main(["segment", str(tmp_path / "in"), "-o", str(out), "--map", "auto",
                 "--references", str(refs[0].parent), *common]) == 0
    assert json.loads((out / "records" / "002.json").read_text())["map"]["mapper"] == "references"
    fig = tmp_path / "fig.png"
    assert main(["explain", str(paths[2]), "-o", str(fig), "--map", "mutual", *common]) == 0
    assert fig.stat().st_size > 10_000


def test_the_only_reference_inside_the_folder_fails_alone_with_a_clear_message(tmp_path, tiny_models, capsys):
    """``segment FOLDER --map references --references FOLDER/good`` with one good image: that
    image cannot be scored against itself. Before: an uncaught ValueError ended the whole run."""
    _, sam = tiny_models
    write_folder(tmp_path / "in", 3)
    write_folder(tmp_path / "in" / "good", 1, blob_at=(), seed0=30)
    out = tmp_path / "seg"
    rc = main(["segment", str(tmp_path / "in"), "-o", str(out), "--map", "references",
               "--references", str(tmp_path / "in" / "good"), "--backbone", "timm:resnet18",
               "--backbone-weights", "random", "--sam", str(sam), "--device", "cpu"])
    assert rc == 3
    captured = capsys.readouterr()
    assert "3/4 images segmented" in captured.out
    assert "good/000.png" in captured.err and "only good reference" in captured.err
    assert sorted(p.name for p in (out / "records").rglob("*.json")) == ["000.json", "001.json", "002.json"]


def test_a_state_dict_of_other_shapes_is_a_clear_error_naming_the_file(tmp_path):
    """Reproduction: parameters with timm's names but other shapes (another variant's weights)
    raised torch's bare RuntimeError (a traceback in the CLI)."""
    sd = TimmBackbone("resnet18", "random", image_size=64).model.state_dict()
    sd["conv1.weight"] = torch.zeros(8, 3, 7, 7)
    bad = tmp_path / "other_shapes.pth"
    torch.save(sd, bad)
    with pytest.raises(CheckpointError, match="other_shapes.pth: parameters of another shape"):
        TimmBackbone("resnet18", str(bad), image_size=64)
