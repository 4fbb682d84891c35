"""The parameter panel's Advanced section (issue 13): the CLIP map's §1 choices are settable in
the app, re-run the method and travel with the document's parameters."""

import numpy as np

from zsas_gui.core.types import MapSettings, MethodParams


def test_advanced_fields_round_trip_and_reject_bad_depths(qtbot):
    from zsas_gui.qt.params_panel import ParamsPanel

    panel = ParamsPanel()
    qtbot.addWidget(panel)
    p = MethodParams(d_min_neg_1024=80, outside_weight=0.25,
                     clip_map=MapSettings(vv_start=1, depths=(1, 2), temperature=0.5, blur_sigma_518=2))
    panel.set_params(p)
    assert panel.params() == p
    panel.set_params(MethodParams())
    assert panel.params() == MethodParams()               # "auto" fields give None
    seen = []
    panel.params_changed.connect(lambda params, name: seen.append((params, name)))
    panel.advanced.depths.setText("1, x")
    panel.advanced.depths.editingFinished.emit()
    assert seen == [] and "red" in panel.advanced.depths.styleSheet()
    panel.advanced.depths.setText("1,2")
    panel.advanced.depths.editingFinished.emit()
    assert seen[-1][1] == "clip_map" and seen[-1][0].clip_map.depths == (1, 2)


def test_a_temperature_edit_recomputes_the_heatmap_without_re_encoding(
        make_window, image_folder, tiny_pipeline, qtbot, wait_idle):
    w = make_window(tiny_pipeline, image_folder)
    qtbot.waitUntil(lambda: w.controller.doc.mask is not None, timeout=180000)
    wait_idle(w)
    doc = w.controller.doc
    old_map = w.controller.heatmap
    encodes = dict(tiny_pipeline.encoder_calls)
    w.params_panel.advanced.toggle.setChecked(True)
    w.params_panel.advanced.temperature.setValue(0.5)
    assert doc.state.params.clip_map.temperature == 0.5 and doc.needs_refine
    qtbot.waitUntil(lambda: not doc.needs_refine, timeout=180000)
    wait_idle(w)
    assert w.controller.heatmap is not old_map
    assert not np.array_equal(np.asarray(w.controller.heatmap), np.asarray(old_map))
    assert tiny_pipeline.encoder_calls == encodes            # the tokens were reused
