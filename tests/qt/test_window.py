"""Opening a folder, the no-models path, persistence of the window layout."""



def test_open_folder_lists_images_and_shows_the_first(make_window, image_folder, tiny_pipeline, qtbot, wait_idle):
    w = make_window(tiny_pipeline, image_folder)
    rels = w.file_list.ordered()
    assert len(rels) == 7 and rels[0] == "test/hole/000.png"
    assert w.controller.doc.image_id == rels[0]
    assert w.canvas.image_hw == (96, 128)
    # the lane computes the heatmap and the automatic mask
    qtbot.waitUntil(lambda: w.controller.doc.mask is not None and w.controller.heatmap is not None, timeout=300_000)
    wait_idle(w)
    doc = w.controller.doc
    assert doc.state.auto and doc.state.mask_source == "auto" and doc.image_score is not None
    assert w.file_list.score_of(rels[0]) is not None
    assert len(w.canvas.point_items()) == len(doc.prompts)


def test_an_unreadable_image_shows_a_message_not_a_crash(make_window, image_folder, tiny_pipeline, qtbot,
                                                         wait_idle):
    (image_folder / "broken.png").write_bytes(b"not a png at all")
    w = make_window(tiny_pipeline, image_folder)           # broken.png sorts first: opened first
    wait_idle(w)
    assert w.file_list.current_rel() == "broken.png"
    assert w.banner.isVisible() and "broken.png" in w.banner.text()
    assert w.controller.doc is None and w.canvas.image_hw is None
    w.file_list.select("test/hole/001.png")                 # the app goes on
    assert w.controller.doc.image_id == "test/hole/001.png"
    wait_idle(w)


def test_lane_errors_appear_in_the_banner(make_window, image_folder, qtbot, monkeypatch):
    w = make_window(None, image_folder)
    monkeypatch.setattr(w.lane, "load_models", lambda *a: None)   # asked, but the lane gets none
    w.load_models("some-clip", "some-sam")
    assert w.controller.models_state == "loading" and w.controller.submit_now()
    qtbot.waitUntil(lambda: w.banner.isVisible(), timeout=300_000)
    assert "no models loaded" in w.banner.text()


def test_models_load_on_the_lane_then_the_image_is_processed(make_window, image_folder, tiny_models, qtbot,
                                                            wait_idle):
    w = make_window(None, image_folder)
    clip_dir, sam_dir = tiny_models
    with qtbot.waitSignal(w.lane.models_loaded, timeout=300_000) as sig:
        w.load_models(str(clip_dir), str(sam_dir), "cpu", "auto")
        assert w.status.device.text() == "loading models…"     # the window did not wait
    info = sig.args[0]
    assert info["random"] and info["models"]["sam"] and "CPU" in info["describe"]
    assert w.controller.models_state == "ready" and w.status.device.text().startswith("CPU")
    qtbot.waitUntil(lambda: w.controller.doc.mask is not None, timeout=300_000)
    wait_idle(w)
    assert w.controller.heatmap is not None


def test_a_model_that_cannot_load_opens_the_explanation(make_window, image_folder, tmp_path, qtbot):
    w = make_window(None, image_folder)
    with qtbot.waitSignal(w.lane.models_failed, timeout=300_000):
        w.load_models(str(tmp_path / "nothing-here.safetensors"), None, "cpu", "auto")
    assert w.controller.models_state == "missing"
    assert w._no_models_dialog.isVisible() and "nothing-here" in w._no_models_dialog.detailedText()
