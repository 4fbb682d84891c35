"""A model running out of memory mid-run: the window says so and offers "Switch to CPU" and "Use a
smaller model"; the lane keeps working for the next request, and both offers work."""

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog

from zsas_gui.core.errors import DeviceMemoryError

OOM = "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total capacity)"


def _fail_once(monkeypatch, pipe, exc, image_key):
    """The pipeline's decoder raises ``exc`` on its next use for ``image_key``, then works again
    (other images' uses, e.g. the next images' results computed ahead, are not counted)."""
    real = pipe._decoder_for
    calls = []

    def decoder_for(feats):
        if feats.image_key != image_key:
            return real(feats)
        calls.append(1)
        if len(calls) == 1:
            raise exc
        return real(feats)

    monkeypatch.setattr(pipe, "_decoder_for", decoder_for)
    return calls


def _shown(w):
    doc = w.controller.doc
    return doc is not None and doc.mask is not None and not doc.needs_refine


@pytest.mark.parametrize("exc", [RuntimeError(OOM), DeviceMemoryError(f"out of memory on cuda:0 ({OOM})")])
def test_out_of_memory_is_said_with_two_offers_and_the_lane_keeps_working(
        make_window, image_folder, tiny_pipeline, qtbot, wait_idle, monkeypatch, exc):
    w = make_window(tiny_pipeline, image_folder)
    qtbot.waitUntil(lambda: _shown(w), timeout=300_000)
    wait_idle(w)
    c = w.controller
    calls = _fail_once(monkeypatch, tiny_pipeline, exc, c.image_key)
    c.add_point(30, 30, True)
    with qtbot.waitSignal(w.lane.out_of_memory, timeout=300_000):
        c.submit_now()
    box = w.oom.box
    qtbot.waitUntil(box.isVisible, timeout=300_000)
    assert "out of memory" in box.text() and "cpu" in box.text().lower()
    assert box.cpu_button.text() == "Switch to CPU" and box.smaller_button.text() == "Use a smaller model"
    assert w.banner.isVisible() and "out of memory" in w.banner.text()
    assert c.doc.needs_refine                                        # the failed edit shows no mask
    c.add_point(60, 40, False)                                       # the next request works
    c.submit_now()
    qtbot.waitUntil(lambda: _shown(w), timeout=300_000)
    assert len(calls) == 2 and len(c.doc.prompts) >= 2
    box.close()


def test_switch_to_cpu_reloads_the_models_on_the_lane(make_window, image_folder, tiny_pipeline, qtbot,
                                                     wait_idle, monkeypatch):
    w = make_window(tiny_pipeline, image_folder)
    qtbot.waitUntil(lambda: _shown(w), timeout=300_000)
    wait_idle(w)
    _fail_once(monkeypatch, tiny_pipeline, RuntimeError(OOM), w.controller.image_key)
    w.controller.add_point(30, 30, True)
    with qtbot.waitSignal(w.lane.out_of_memory, timeout=300_000):
        w.controller.submit_now()
    qtbot.waitUntil(w.oom.box.isVisible, timeout=300_000)
    with qtbot.waitSignal(w.lane.models_loaded, timeout=300_000) as loaded:
        qtbot.mouseClick(w.oom.box.cpu_button, Qt.MouseButton.LeftButton)
    assert str(loaded.args[0]["device"]) == "cpu"
    assert w.lane.pipeline is not tiny_pipeline and str(w.lane.pipeline.sam.device) == "cpu"
    qtbot.waitUntil(lambda: _shown(w), timeout=300_000)               # the image is sent again
    assert w.controller.models_state == "ready" and not w.oom.box.isVisible()
    wait_idle(w)


def test_use_a_smaller_model_applies_the_fast_preset(make_window, image_folder, tiny_pipeline, qtbot,
                                                    wait_idle, monkeypatch, tmp_path):
    monkeypatch.setenv("ZSAS_MODELS_DIR", str(tmp_path / "models"))
    w = make_window(tiny_pipeline, image_folder)
    qtbot.waitUntil(lambda: _shown(w), timeout=300_000)
    wait_idle(w)
    w.oom.on_out_of_memory(None, f"out of memory on cuda:0 ({OOM})")
    qtbot.mouseClick(w.oom.box.smaller_button, Qt.MouseButton.LeftButton)
    dlg = w.findChild(QDialog, "model_dialog")
    assert dlg is not None and dlg.isVisible() and dlg.preset.currentText() == "fast"
    assert "fast needs" in dlg.message.text()                        # not installed here: offered
    assert dlg.selected_spec().name == "ViT-B-16-quickgelu" and dlg.download_btn.isEnabled()
