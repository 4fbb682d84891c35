"""The object name belongs to the project: derived from the folder name, editable, stored in the
project; parameters and text prompts are project defaults, and an image whose values differ
says so."""

import json
import shutil

from zsas_gui.core.types import MethodParams
from zsas_gui.state.project import Project
from zsas_gui.state.project_defaults import derived_object_name, load_project_defaults


def test_the_object_name_comes_from_the_folder_and_is_stored_in_the_project(make_window, image_folder,
                                                                             tmp_path, qtbot):
    root = tmp_path / "metal_nut"
    shutil.copytree(image_folder, root)
    assert derived_object_name(Project.open(root)) == "metal nut"
    w = make_window(None, root)
    c = w.controller
    assert c.doc.state.text_prompts.object_name == "metal nut"
    assert w.text_box.object_name.text() == "metal nut"
    w.text_box.object_name.setText("hex nut")
    w.text_box.object_name.editingFinished.emit()
    assert c.doc.state.text_prompts.object_name == "hex nut"
    c.flush()
    stored = json.loads((root / ".zsas" / "project.json").read_text())
    assert stored["defaults"]["text_prompts"]["object_name"] == "hex nut"
    assert stored["schema_version"] >= 1 and "exclude" in stored          # the other fields kept
    w.close()
    w2 = make_window(None, root)
    w2.file_list.select("test/scratch/001.png")                          # never edited: project default
    assert w2.controller.doc.state.text_prompts.object_name == "hex nut"
    assert load_project_defaults(Project.open(root))[1].object_name == "hex nut"


def test_an_image_whose_values_differ_from_the_project_defaults_shows_it(make_window, image_folder, qtbot):
    w = make_window(None, image_folder)
    c, hint = w.controller, w.defaults_hint
    first = c.doc.image_id
    assert not hint.isVisible()
    w.params_panel.tau.setValue(0.7)                  # the edit becomes the project default
    assert not hint.isVisible()
    w.file_list.select("test/scratch/000.png")         # an image edited earlier, with τ 0.5
    c.doc.set_params(MethodParams(tau=0.5))           # (directly: not a project default)
    c.flush()
    w.file_list.select(first)
    w.file_list.select("test/scratch/000.png")
    assert c.project_defaults.value[0].tau == 0.7 and c.doc.state.params.tau == 0.5
    assert hint.isVisible() and "τ" in hint.label.text()
    hint.apply.click()
    assert c.doc.state.params.tau == 0.7 and not hint.isVisible()
    c.undo()
    assert c.doc.state.params.tau == 0.5 and hint.isVisible()
