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
