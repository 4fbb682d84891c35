"""Presets in the model manager: each shows its models, their state and the expected cost; applying
one loads its models on the lane, or says which are missing and offers their download."""

import pytest
from PySide6.QtCore import Qt

from zsas_gui.core.engine.presets import PRESETS, get_preset
from zsas_gui.qt import model_dialog


@pytest.mark.parametrize("name", list(PRESETS))
def test_each_preset_shows_its_models_and_cost(dialog, name):
    p = get_preset(name)
    dialog.preset.setCurrentText(name)
    text = dialog.preset_info.text()
    assert p.sam in text and p.clip in text and p.cost_text in text and "missing" in text


def test_a_preset_with_missing_models_says_so_and_offers_the_download(dialog, qtbot):
    emitted = []
    dialog.models_chosen.connect(lambda *a: emitted.append(a))
    dialog.preset.setCurrentText("fast")
    qtbot.mouseClick(dialog.preset_btn, Qt.MouseButton.LeftButton)
    msg = dialog.message.text()
    assert "fast needs" in msg and "ViT-B-16-quickgelu" in msg and "mobile_sam" in msg and "Download" in msg
    spec = dialog.selected_spec()
    assert spec is not None and spec.name == "ViT-B-16-quickgelu"        # selected for download
    assert dialog.download_btn.isEnabled()
    assert emitted == []                                                   # nothing loads yet


def test_applying_an_installed_preset_loads_its_models(dialog, qtbot, monkeypatch):
    monkeypatch.setattr(model_dialog, "model_state", lambda spec: "installed")
    p = get_preset("fast")
    with qtbot.waitSignal(dialog.models_chosen) as sig:
        assert dialog.apply_preset("fast")
    assert sig.args == [p.clip_arg, p.sam, "cpu", "auto"]


def test_a_preset_is_applied_once_its_missing_model_is_downloaded(dialog, qtbot, monkeypatch):
    installed = set()
    monkeypatch.setattr(model_dialog, "model_state",
                        lambda spec: "installed" if spec.name in installed else "missing")
    assert not dialog.apply_preset("balanced")
    installed.add("ViT-B-16-quickgelu")
    dialog._on_finished("ViT-B-16-quickgelu", "")          # the download finished: the next one
    assert "vit_b" in dialog.message.text() and dialog.selected_spec().name == "vit_b"
    installed.add("vit_b")
    with qtbot.waitSignal(dialog.models_chosen) as sig:
        dialog._on_finished("vit_b", "")
    assert sig.args[:2] == [get_preset("balanced").clip_arg, "vit_b"]


def test_the_window_applies_a_preset_through_the_lane(make_window, qtbot, monkeypatch, tmp_path):
    monkeypatch.setenv("ZSAS_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setattr(model_dialog, "model_state", lambda spec: "installed")
    w = make_window(None)
    loads = []
    monkeypatch.setattr(w.lane, "load_models", lambda *a: loads.append(a))
    w.show_model_dialog().apply_preset("fast")
    p = get_preset("fast")
    assert loads == [(p.clip_arg, p.sam, "cpu", "auto")] and w.controller.models_state == "loading"
