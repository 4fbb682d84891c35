"""The CLI for a newcomer: defaults in --help, the user docs named, test models announced, and a
missing model reported before anything is created."""

import numpy as np
import pytest
from PIL import Image

from zsas_gui.cli import build_parser, main


def _help(capsys, *argv) -> str:
    with pytest.raises(SystemExit):
        build_parser().parse_args([*argv, "--help"])
    return capsys.readouterr().out


def test_help_shows_defaults_and_names_the_user_docs(capsys):
    text = " ".join(_help(capsys, "segment").split())
    assert "docs/method.md" in text and "ALGORITHM.md" not in text
    assert "(default: 0.5)" in text and "(default: auto)" in text
    assert text.count("MobileSAM") == 1                  # the preset text once


def test_label_with_a_missing_model_fails_before_creating_the_store(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ZSAS_MODELS_DIR", str(tmp_path / "no-models"))
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(folder / "a.png")
    assert main(["label", str(folder), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "not installed" in err and "zsas models download" in err
    assert not (folder / ".zsas").exists()


def test_segment_warns_when_test_models_are_used(tmp_path, tiny_models, capsys):
    clip_dir, sam_dir = tiny_models
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8)).save(folder / "a.png")
    assert main(["segment", str(folder), "-o", str(tmp_path / "out"), "--clip", str(clip_dir),
                 "--sam", str(sam_dir), "--device", "cpu"]) == 0
    assert "RANDOM-weight test models loaded" in capsys.readouterr().err
