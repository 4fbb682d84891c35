"""Waiting is visible: an overlay on the canvas while models load and while an image is encoded
for the first time; a permanent badge while random-weight test models are loaded."""

#: a guard against a hang, never the expected time
STATE_TIMEOUT_MS = 300_000


def test_model_loading_and_first_encode_show_an_overlay_and_test_models_a_badge(
        make_window, image_folder, tiny_models, qtbot, wait_idle):
    w = make_window(None, image_folder)
    overlay, badge = w.canvas_overlay, w.waiting.badge
    assert not overlay.isVisible() and not badge.isVisible()
    seen_encoding = []
    w.controller.progress.connect(              # connected after the indicator: sees its effect
        lambda text, *_: seen_encoding.append(overlay.isVisible() and "Encoding" in overlay.text())
        if text.startswith("encoding") else None)
    clip_dir, sam_dir = tiny_models
    w.load_models(str(clip_dir), str(sam_dir), "cpu")
    assert overlay.isVisible() and "Loading the models" in overlay.text() and w.waiting.waiting_for == "models"
    qtbot.waitUntil(lambda: w.controller.models_state == "ready", timeout=300_000)
    assert badge.isVisible() and "random weights" in badge.text()
    qtbot.waitUntil(lambda: w.controller.doc.mask is not None, timeout=300_000)
    wait_idle(w)
    assert seen_encoding and all(seen_encoding)  # the first encode of the open image was shown
    assert not overlay.isVisible() and w.waiting.waiting_for == ""


def test_a_text_prompt_change_shows_progress_until_the_new_heatmap(make_window, image_folder, tiny_pipeline,
                                                                   qtbot, wait_idle):
    w = make_window(tiny_pipeline, image_folder)
    qtbot.waitUntil(lambda: w.controller.heatmap is not None, timeout=300_000)
    wait_idle(w)
    old = w.controller.heatmap
    w.text_box.object_name.setText("tile")
    w.text_box.object_name.editingFinished.emit()
    assert w.canvas_overlay.isVisible() and "tile" in w.canvas_overlay.text()
    qtbot.waitUntil(lambda: w.controller.heatmap is not old, timeout=300_000)
    wait_idle(w)
    assert not w.canvas_overlay.isVisible()


def test_closing_the_window_during_the_warm_up_stops_the_onnx_export_child(make_window, tiny_pipeline, qtbot,
                                                                          tmp_path, monkeypatch):
    """The decoder's ONNX export runs in a child process while the lane warms up; closing the
    window kills it (no process left behind) and the lane falls back and ends."""

    from zsas_gui.core.sam import onnx_cache, onnx_subprocess

    monkeypatch.setenv("ZSAS_MODELS_DIR", str(tmp_path / "models"))   # no cached graphs
    onnx_cache.clear_memory()                       # the warm-up exports again
    w = make_window(tiny_pipeline)
    qtbot.waitUntil(lambda: bool(onnx_subprocess.export_pids()), timeout=STATE_TIMEOUT_MS)
    (pid,) = onnx_subprocess.export_pids()
    w.close()                                        # joins the lane: it returned from the warm-up
    assert onnx_subprocess.export_pids() == [] and _process_gone(pid)
    assert tiny_pipeline.decoder_backend == "fast"   # the torch decoder (the reason is logged)
    onnx_cache.clear_memory()


def _process_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"     # exited, not reaped by init
    except FileNotFoundError:
        return True
