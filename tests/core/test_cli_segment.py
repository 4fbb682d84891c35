"""`zsas segment` end to end with tiny models: every output file, bad files skipped by name."""

import json

import numpy as np
import pytest
from PIL import Image
from synthetic import blob_image

from zsas_gui.cli import main


@pytest.fixture
def folder(tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(blob_image((60, 80), [(20, 20)])).save(src / "a.png")
    Image.fromarray(blob_image((50, 50), [(30, 30)])[:, :, 0]).save(src / "sub" / "b.jpg")
    (src / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return src


def test_segment_writes_everything_and_reports_bad_files(folder, tmp_path, tiny_models, capsys):
    clip, sam = tiny_models
    out = tmp_path / "out"
    rc = main(["segment", str(folder), "-o", str(out), "--clip", str(clip), "--sam", str(sam),
               "--device", "cpu", "--save-scores", "--object", "tile"])
    assert rc == 3                                    # some images failed
    err = capsys.readouterr().err
    assert "broken.png" in err and "Traceback" not in err
    for rel, hw in (("a", (60, 80)), ("sub/b", (50, 50))):
        mask = np.asarray(Image.open(out / "masks" / f"{rel}.png"))
        assert mask.shape == hw and set(np.unique(mask)) <= {0, 255}
        assert np.asarray(Image.open(out / "heatmaps" / f"{rel}.png")).shape == (*hw, 3)
        assert np.asarray(Image.open(out / "overlays" / f"{rel}.png")).shape == (*hw, 3)
        scores = np.load(out / "scores" / f"{rel}.npy")
        assert scores.shape == hw and scores.dtype == np.float32
        rec = json.loads((out / "records" / f"{rel}.json").read_text())
        assert rec["text_prompts"]["object_name"] == "tile"
        assert rec["models"]["sam"].startswith("random-test:") and "refine_ms" in rec["timings_ms"]
        assert len(rec["prompts"]["points"]) == len(rec["prompts"]["labels"])
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["images"], summary["succeeded"], summary["failed"]) == (3, 2, 1)
    assert not (out / "masks" / "sub" / "broken.png").exists()


def test_user_errors_are_one_line_messages(tmp_path, tiny_models, capsys):
    clip, sam = tiny_models
    (tmp_path / "empty").mkdir()
    assert main(["segment", str(tmp_path / "empty"), "-o", str(tmp_path / "o")]) == 1
    assert "no images found" in capsys.readouterr().err
    Image.fromarray(blob_image((40, 40))).save(tmp_path / "x.png")
    assert main(["segment", str(tmp_path / "x.png"), "-o", str(tmp_path / "o2"),
                 "--clip", str(tmp_path / "missing-clip"), "--sam", str(sam)]) == 1
    assert "missing-clip" in capsys.readouterr().err
    (tmp_path / "file").write_text("I am a file")
    assert main(["segment", str(tmp_path / "x.png"), "-o", str(tmp_path / "file"),
                 "--clip", str(clip), "--sam", str(sam)]) == 1
    assert "not a folder" in capsys.readouterr().err
    assert main(["segment", str(tmp_path / "x.png"), "-o", str(tmp_path / "o3"), "--tau", "3"]) == 1
    assert "tau" in capsys.readouterr().err


def test_unwritable_output_fails_before_models_load(tmp_path, monkeypatch, capsys):
    from zsas_gui.core.io import atomic  # the one write probe (check_output_folder) lives there

    def refuse(path, data):
        from zsas_gui.core.errors import OutputError
        raise OutputError(f"cannot write {path}: Read-only file system")

    monkeypatch.setattr(atomic, "atomic_write_bytes", refuse)
    Image.fromarray(blob_image((40, 40))).save(tmp_path / "x.png")
    assert main(["segment", str(tmp_path / "x.png"), "-o", str(tmp_path / "ro"),
                 "--clip", "no-such-model-would-fail-later"]) == 1
    assert "cannot write to output folder" in capsys.readouterr().err


@pytest.mark.slow
def test_segment_magnetic_tile_all_50(shared_data, tmp_path, tiny_models):
    clip, sam = tiny_models
    out = tmp_path / "mt"
    assert main(["segment", str(shared_data / "magnetic_tile" / "test"), "-o", str(out),
                 "--clip", str(clip), "--sam", str(sam), "--device", "cpu", "--save-scores"]) == 0
    for sub in ("masks", "heatmaps", "overlays", "records", "scores"):
        assert len(list((out / sub).rglob("*.*"))) == 50, sub
    assert json.loads((out / "summary.json").read_text())["succeeded"] == 50


def _records(out):
    return [json.loads(p.read_text()) for p in sorted((out / "records").rglob("*.json"))]


def test_gated_scores_are_zero_and_records_carry_every_choice(folder, tmp_path, tiny_models):
    """Issue 13: every image gated -> every score map all zeros; each record and summary.json
    carry vv_start, depths, temperature, blur and the checkpoint digests; advanced flags apply;
    every stage-3 box lies inside its image."""
    clip, sam = tiny_models
    base = ["--clip", str(clip), "--sam", str(sam), "--device", "cpu", "--save-scores"]
    gated = tmp_path / "gated"
    assert main(["segment", str(folder), "-o", str(gated), *base, "--gate", "1.0"]) == 3
    assert all(not np.load(p).any() for p in (gated / "scores").rglob("*.npy"))
    out = tmp_path / "advanced"
    assert main(["segment", str(folder), "-o", str(out), *base, "--vv-start", "1", "--depths", "1,2",
                 "--temperature", "0.5", "--blur", "0", "--outside-weight", "0.25"]) == 3
    for folder_out, expect in ((gated, (0, [0, 1, 2], 0.07, 4.0)), (out, (1, [1, 2], 0.5, 0.0))):
        summary = json.loads((folder_out / "summary.json").read_text())
        for rec in (*_records(folder_out), summary):
            m = rec["anomaly_map"]
            assert (m["vv_start"], m["depths"], m["temperature"], m["blur_sigma_518"]) == expect
            assert all(len(rec["checkpoints"][k]) == 64 for k in ("clip", "sam"))
    recs = _records(out)
    assert recs[0]["params"]["outside_weight"] == 0.25 and recs[0]["params"]["clip_map"]["depths"] == [1, 2]
    boxes = [(s["box"], r["size"]) for r in recs for s in r["stages"] if s["box"] is not None]
    assert boxes
    for (x0, y0, x1, y1), (w, h) in boxes:
        assert 0 <= x0 <= x1 <= w - 1 and 0 <= y0 <= y1 <= h - 1


def test_a_depth_before_vv_start_is_a_one_line_error(folder, tmp_path, tiny_models, capsys):
    clip, sam = tiny_models
    rc = main(["segment", str(folder / "a.png"), "-o", str(tmp_path / "o"), "--clip", str(clip),
               "--sam", str(sam), "--device", "cpu", "--vv-start", "2", "--depths", "0,2"])
    err = capsys.readouterr().err
    assert rc == 1 and "before vv_start 2" in err and "Traceback" not in err
    assert not (tmp_path / "o" / "masks").exists()                 # refused before the first image
