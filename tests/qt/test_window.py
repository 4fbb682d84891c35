"""Opening a folder, the no-models path, persistence of the window layout."""



def test_open_folder_lists_images_and_shows_the_first(make_window, image_folder, tiny_pipeline, qtbot, wait_idle):
    w = make_window(tiny_pipeline, image_folder)
    rels = w.file_list.ordered()
    assert len(rels) == 7 and rels[0] == "test/hole/000.png"
    assert w.controller.doc.image_id == rels[0]
    assert w.canvas.image_hw == (96, 128)
    # the lane computes the heatmap and the automatic mask
    qtbot.waitUntil(lambda: w.controller.doc.mask is not None and w.controller.heatmap is not None, timeout=20000)
    wait_idle(w)
    doc = w.controller.doc
    assert doc.state.auto and doc.state.mask_source == "auto" and doc.image_score is not None
    assert w.file_list.score_of(rels[0]) is not None
    assert len(w.canvas.point_items()) == len(doc.prompts)
