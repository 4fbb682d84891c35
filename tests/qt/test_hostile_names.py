"""A file name that is not UTF-8 in the opened folder (issue 14, item 5): the app listed it,
marking it raised inside the save, and then every other image's save raised too. Now the
project leaves it out with a message, and every other image saves."""

import os

from synthetic import blob_image

from zsas_gui.core.io.imageio import save_png
from zsas_gui.state.project import Project


def test_a_non_utf8_name_is_left_out_and_the_others_save(make_window, tmp_path):
    folder = tmp_path / "imgs"
    save_png(folder / "ok.png", blob_image((48, 64), [(20, 24)], radius=6, seed=1))
    with open(os.path.join(os.fsencode(folder), b"lat\xe9.png"), "wb") as fh:
        fh.write((folder / "ok.png").read_bytes())
    w = make_window(None, folder)
    c = w.controller
    assert w.file_list.ordered() == ["ok.png"]
    assert any("not valid UTF-8" in p for p in c.project.problems)
    assert c.open_image("ok.png") or c.doc.image_id == "ok.png"
    c.mark_good()
    c.flush()
    assert Project.open(folder).status("ok.png") == "good"
