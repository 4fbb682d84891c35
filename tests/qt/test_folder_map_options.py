"""The folder maps' options in the app (issue 12, items 2 and 3): the backbone (the CLIP tower or
a timm model with a local weights file; a bad file says so and keeps the map), the τ mode
(relative / absolute / the gate at the good images' level; a change re-scales the map in use),
both remembered per project, and the file list's scores after a folder pass. Real lane threads
over the tiny random models; the timm backbone is a seeded random efficientnet_lite0 saved as a
state dict here."""

from __future__ import annotations

import json

import pytest

from zsas_gui.core.io.imageio import load_image
from zsas_gui.qt import folder_map_options, folder_map_panel
from zsas_gui.state.project_defaults import MapOptions

STATE_TIMEOUT_MS = 300_000     # a guard against a hang only (tests/qt/conftest.py)


@pytest.fixture(scope="module")
def lite0_weights(tmp_path_factory):
    """A timm ``efficientnet_lite0`` state dict (seeded random init) as .safetensors."""
    import timm
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = timm.create_model("efficientnet_lite0", pretrained=False)
    path = tmp_path_factory.mktemp("weights") / "lite0.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def _choose(w, kind):
    box = w.folder_map.box
    box.combo.setCurrentIndex(box.combo.findData(kind))


def _choose_timm(w, arch, weights):
    form = w.folder_map.box.options
    form.arch.setText(arch)
    form.weights.setText(str(weights))
    form.backbone.setCurrentIndex(form.backbone.findData("timm"))    # reported: name and file given


def _choose_tau(w, mode):
    form = w.folder_map.box.options
    form.tau_mode.setCurrentIndex(form.tau_mode.findData(mode))


def _ready(w, qtbot):
    qtbot.waitUntil(lambda: w.controller.doc is not None and w.controller.doc.mask is not None,
                    timeout=STATE_TIMEOUT_MS)


def _stored(folder):
    return json.loads((folder / ".zsas" / "project.json").read_text())["defaults"]


def test_a_timm_backbone_with_a_weights_file_builds_the_map_and_is_remembered(
        make_window, image_folder, cached_pipeline, lite0_weights, qtbot, wait_idle):
    from zsas_gui.core.engine.pipeline import Pipeline
    from zsas_gui.core.maps.backbones import file_digest

    w = make_window(cached_pipeline, image_folder)
    fm = w.folder_map
    assert not fm.box.options.isEnabled()                    # the text map has no options
    with qtbot.waitSignal(fm.signals.finished, timeout=STATE_TIMEOUT_MS) as clip_done:
        _choose(w, "mutual")
    assert clip_done.args[1]["backbone"].startswith("clip:")   # the default: the CLIP tower
    assert fm.box.options.isEnabled()
    with qtbot.waitSignal(fm.signals.finished, timeout=STATE_TIMEOUT_MS) as done:
        _choose_timm(w, "efficientnet_lite0", lite0_weights)
    info = done.args[1]
    assert done.args[2] == "" and info["mapper"] == "mutual"
    assert info["backbone"] == "timm:efficientnet_lite0" and info["weights"] == file_digest(lite0_weights)
    assert cached_pipeline.mapper.backbone.arch == "efficientnet_lite0"
    assert "timm:efficientnet_lite0" in fm.box.in_use.text()
    assert _stored(image_folder)["map_options"] == {"backbone": "timm:efficientnet_lite0",
                                                    "weights": str(lite0_weights), "tau_mode": "relative"}
    wait_idle(w)
    w.close()
    w2 = make_window(Pipeline(cached_pipeline.clip, cached_pipeline.sam, disk_cache=cached_pipeline.disk_cache))
    with qtbot.waitSignal(w2.folder_map.signals.finished, timeout=STATE_TIMEOUT_MS) as again:
        assert w2.open_folder(image_folder)
    assert again.args[1]["backbone"] == "timm:efficientnet_lite0"
    form = w2.folder_map.box.options
    assert form.backbone.currentData() == "timm" and form.arch.text() == "efficientnet_lite0"
    assert form.weights.text() == str(lite0_weights) and form.timm_rows.isVisibleTo(form)
    wait_idle(w2)


@pytest.mark.parametrize("name", ["broken.safetensors", "broken.pth"])
def test_a_bad_weights_file_names_the_file_and_keeps_the_map(make_window, image_folder, cached_pipeline,
                                                             tmp_path, qtbot, wait_idle, name):
    """Reproduction (.pth): a damaged .pth said only "KeyError: 543911541" (torch's unpickler)."""
    w = make_window(cached_pipeline, image_folder)
    fm = w.folder_map
    with qtbot.waitSignal(fm.signals.finished, timeout=STATE_TIMEOUT_MS):
        _choose(w, "mutual")
    in_use = cached_pipeline.mapper
    bad = tmp_path / name
    bad.write_bytes(b"junk junk")
    with qtbot.waitSignal(fm.signals.finished, timeout=STATE_TIMEOUT_MS) as done:
        _choose_timm(w, "efficientnet_lite0", bad)
    assert done.args[1] is None and str(bad) in done.args[2]
    assert cached_pipeline.mapper is in_use                  # the map stays
    assert "failed" in fm.box.in_use.text() and "this folder (mutual" in fm.box.in_use.text()
    assert w.banner.isVisible() and str(bad) in w.banner.text()
    wait_idle(w)


def test_a_timm_backbone_without_weights_asks_for_the_file(make_window, image_folder, cached_pipeline,
                                                          qtbot, wait_idle):
    w = make_window(cached_pipeline, image_folder)
    fm = w.folder_map
    with qtbot.waitSignal(fm.signals.finished, timeout=STATE_TIMEOUT_MS):
        _choose(w, "mutual")
    in_use = cached_pipeline.mapper
    _choose_timm(w, "efficientnet_lite0", "")
    assert fm.job is None and "choose the weights file of timm:efficientnet_lite0" in fm.box.in_use.text()
    wait_idle(w)
    assert cached_pipeline.mapper is in_use


def test_a_registry_backbone_goes_to_core_without_a_weights_file(make_window, image_folder, cached_pipeline,
                                                                   monkeypatch, qtbot, wait_idle):
    """A backbone the model registry knows needs no file chosen here: the pass goes to core's
    ``load_backbone`` (which loads the downloaded file, or says how to download it)."""
    from zsas_gui.core.models import registry

    class Spec:
        kind = "backbone"

    with monkeypatch.context() as m:
        m.setattr(registry, "find_spec", lambda name: Spec() if name == "efficientnet_lite0" else None)
        assert folder_map_options.registry_knows("efficientnet_lite0")
        assert not folder_map_options.registry_knows("resnet18")
    monkeypatch.setattr(folder_map_panel, "registry_knows", lambda arch: arch == "efficientnet_lite0")
    w = make_window(cached_pipeline, image_folder)
    fm = w.folder_map
    with qtbot.waitSignal(fm.signals.finished, timeout=STATE_TIMEOUT_MS):
        _choose(w, "mutual")
    with qtbot.waitSignal(fm.signals.finished, timeout=STATE_TIMEOUT_MS) as done:
        _choose_timm(w, "efficientnet_lite0", "")
    assert done.args[1] is None and "efficientnet_lite0" in done.args[2]      # core's own answer
    assert "choose the weights file" not in fm.box.in_use.text()
    wait_idle(w)


def test_the_tau_mode_rescales_the_map_in_use_without_fitting_it_again(
        make_window, image_folder, cached_pipeline, counted, qtbot, wait_idle):
    w = make_window(cached_pipeline, image_folder)
    fm = w.folder_map
    with qtbot.waitSignal(fm.signals.finished, timeout=STATE_TIMEOUT_MS):
        _choose(w, "mutual")
    _ready(w, qtbot)
    wait_idle(w)
    fitted, encoded = cached_pipeline.mapper, counted["calls"]
    assert fitted.absolute is False and w.controller.doc.state.params.gate is None
    with qtbot.waitSignal(fm.signals.finished, timeout=STATE_TIMEOUT_MS) as done:
        _choose_tau(w, "absolute")
    assert done.args[1]["absolute_scale"] is True
    mapper = cached_pipeline.mapper
    assert mapper.absolute and mapper is not fitted and mapper.folder is fitted.folder   # same fit
    assert "τ on the folder scale" in fm.box.in_use.text()
    wait_idle(w)
    assert counted["calls"] == encoded                       # nothing encoded again
    # the current image's heatmap is the folder-scale one: S = map / (2 * pixel level), clipped
    expected = mapper.anomaly(cached_pipeline.image_tokens(None, w.controller.image))
    assert expected.scale == pytest.approx(2 * mapper.pixel_level)
    qtbot.waitUntil(lambda: w.controller.heatmap is not None
                    and abs(float(w.controller.heatmap.max()) - float(expected.normalized.max())) < 1e-6,
                    timeout=STATE_TIMEOUT_MS)
    assert _stored(image_folder)["map_options"]["tau_mode"] == "absolute"
    # the gate mode: absolute, and the gate at the good images' level (a parameter edit)
    _choose_tau(w, "gate")
    assert w.controller.doc.state.params.gate == 0.5 and w.params_panel.gate_on.isChecked()
    assert w.controller.project_defaults.value[0].gate == 0.5
    wait_idle(w)
    assert cached_pipeline.mapper.absolute and "gate at the calibration level" in fm.box.in_use.text()
    with qtbot.waitSignal(fm.signals.finished, timeout=STATE_TIMEOUT_MS):
        _choose(w, "text")                                   # the gate reads folder-map scores only
    assert w.controller.doc.state.params.gate is None
    with qtbot.waitSignal(fm.signals.finished, timeout=STATE_TIMEOUT_MS):
        _choose(w, "mutual")
    assert w.controller.doc.state.params.gate == 0.5 and cached_pipeline.mapper.absolute
    wait_idle(w)
    with qtbot.waitSignal(fm.signals.finished, timeout=STATE_TIMEOUT_MS):
        _choose_tau(w, "relative")                           # back: the gate it set is taken back
    assert w.controller.doc.state.params.gate is None and not cached_pipeline.mapper.absolute
    assert _stored(image_folder)["map_options"]["tau_mode"] == "relative"
    wait_idle(w)


def test_the_tau_mode_chosen_during_a_pass_applies_to_its_map(make_window, image_folder, cached_pipeline,
                                                              counted, qtbot, wait_idle):
    w = make_window(cached_pipeline, image_folder)
    fm = w.folder_map
    _ready(w, qtbot)
    wait_idle(w)
    counted["gate"].clear()
    _choose(w, "mutual")
    qtbot.waitUntil(counted["started"].is_set, timeout=STATE_TIMEOUT_MS)
    with qtbot.waitSignal(fm.signals.finished, timeout=STATE_TIMEOUT_MS) as done:
        _choose_tau(w, "absolute")
        counted["gate"].set()
    assert done.args[1]["mapper"] == "mutual" and done.args[1]["absolute_scale"] is True
    assert cached_pipeline.mapper.absolute
    wait_idle(w)


def test_a_references_pass_puts_every_image_score_on_the_new_map_in_the_list(
        make_window, image_folder, cached_pipeline, qtbot, wait_idle):
    """Reproduction: after a references pass, the list kept the text map's scores of the images
    not computed again (the ranking mixed two maps' scales)."""
    w = make_window(cached_pipeline, image_folder)
    rels = w.file_list.ordered()
    _ready(w, qtbot)
    wait_idle(w)
    first = w.controller.doc.image_id
    with qtbot.waitSignal(w.folder_map.signals.finished, timeout=STATE_TIMEOUT_MS) as done:
        _choose(w, "references")
    assert done.args[1]["mapper"] == "references"
    mapper = cached_pipeline.mapper
    project = w.controller.project
    for rel in rels:
        feats = cached_pipeline.image_tokens(None, load_image(project.entry(rel).path))
        expected = mapper.anomaly(feats).image_score
        assert w.file_list.score_of(rel) == pytest.approx(expected, abs=1e-3), rel
    assert w.controller.docs.get(first).image_score == pytest.approx(
        w.file_list.score_of(first), abs=1e-3)                # the open document's score too
    wait_idle(w)


def test_map_options_read_back_what_was_stored_and_ignore_the_rest():
    assert MapOptions.from_stored({"backbone": "timm:x", "weights": "/w.pth", "tau_mode": "gate"}) == \
        MapOptions("timm:x", "/w.pth", "gate")
    assert MapOptions.from_stored({"backbone": "resnet", "weights": "/w.pth", "tau_mode": "odd"}) == MapOptions()
    assert MapOptions.from_stored("junk") == MapOptions()
    assert not MapOptions().absolute and MapOptions(tau_mode="gate").absolute


def test_back_to_the_text_map_the_list_drops_the_folder_map_scores(
        make_window, image_folder, cached_pipeline, qtbot, wait_idle):
    """Reproduction: after going back to the text map, the list kept the mutual map's scores of
    every image not computed again (two maps' scales ranked together)."""
    w = make_window(cached_pipeline, image_folder)
    rels = w.file_list.ordered()
    _ready(w, qtbot)
    wait_idle(w)
    with qtbot.waitSignal(w.folder_map.signals.finished, timeout=STATE_TIMEOUT_MS):
        _choose(w, "mutual")
    qtbot.waitUntil(lambda: all(w.file_list.score_of(r) is not None for r in rels), timeout=STATE_TIMEOUT_MS)
    with qtbot.waitSignal(w.folder_map.signals.finished, timeout=STATE_TIMEOUT_MS) as done:
        _choose(w, "text")
    assert done.args[1].get("mapper", "vv") == "vv" and w.folder_map.info is None
    wait_idle(w)
    text_mapper, project = cached_pipeline.mapper, w.controller.project
    prompts = w.controller.doc.state.text_prompts
    shown = {r: w.file_list.score_of(r) for r in rels}
    assert shown[w.controller.doc.image_id] is not None       # the current image, computed again
    for rel, score in shown.items():                           # the text map's score, or none yet
        if score is not None:
            tokens = cached_pipeline.image_tokens(None, load_image(project.entry(rel).path))
            assert score == pytest.approx(text_mapper.anomaly(tokens, prompts).image_score, abs=1e-3), rel
