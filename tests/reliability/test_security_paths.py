"""Files are only ever written inside the chosen output folder (or the project's .zsas sidecar),
whatever the class names, category, image names or input paths: every ``open`` for writing
during the command is recorded by an audit hook and checked."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image
from reliability_helpers import watching
from synthetic import blob_image

from zsas_gui.cli import main
from zsas_gui.core.export import FORMATS, ExportOptions, ExportValidationError, export
from zsas_gui.core.io.imageio import save_mask
from zsas_gui.state.project import Project

#: Image files whose names try to climb out or use another script. ("a/../b" cannot be a file
#: name; a name with backslashes, a colon or dots can. Names starting with "." are hidden files,
#: which the project never lists.)
HOSTILE_NAMES = ["x..\\..\\..\\y.png", "a....png", "a:b.png", " .png", "ü 傷.png", "欠陥.png", "CON.png",
                 "$(rm -rf).png", "x\ny.png", "%2e%2e%2fz.png"]
HOSTILE_CLASSES = ["../../etc", "..\\..\\win", "/abs/path", "C:\\x", "a\x00b", "ü 傷", "..", "."]
SAFE = re.compile(r"[A-Za-z0-9._-]+")


def _inside(path: str, *roots) -> bool:
    return any(path == str(r) or path.startswith(str(r) + "/") for r in roots)


@pytest.fixture
def hostile_project(tmp_path):
    root = tmp_path / "proj"
    folder = root / "test" / "weird"
    folder.mkdir(parents=True)
    proj_images = []
    for i, name in enumerate(HOSTILE_NAMES):
        Image.fromarray(blob_image((40, 48), [(12 + 2 * i, 20)], seed=i)).save(folder / name, format="PNG")
        proj_images.append(f"test/weird/{name}")
    proj = Project.open(root)
    # a backslash is a path separator on Windows: such a name is reported and left out
    unstorable = [r for r in proj_images if "\\" in r]
    assert sorted(e.rel for e in proj.images) == sorted(set(proj_images) - set(unstorable))
    assert len(proj.problems) == len(unstorable) == 1 and "rename the file" in proj.problems[0]
    for i, entry in enumerate(proj.images):
        rec = proj.load(entry.rel)
        rec.mask = np.zeros((40, 48), bool)
        rec.mask[5:15, 5 + i:15 + i] = True
        rec.status = "accepted"
        rec.defect_class = HOSTILE_CLASSES[i % len(HOSTILE_CLASSES)]
        proj.save(rec)
    return proj


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_writes_only_inside_out_with_safe_names(hostile_project, tmp_path, fmt):
    proj = hostile_project
    out = tmp_path / "exports" / "out"
    items = proj.export_items(("accepted",))
    with pytest.raises(ExportValidationError, match="would share the folder name"):
        export(items, fmt, out)                      # ".", ".." and "ü 傷" all sanitise to "defect"
    assert not out.parent.exists()
    items = [type(i)(i.rel, i.image_path, i.mask_path, f"{i.defect_class}{n}", "good" if n == 0 else i.status)
             for n, i in enumerate(items)]           # now distinct after sanitising; one good image
                                                     # (mvtec and folder need one)
    with watching() as seen:
        report = export(items, fmt, out, ExportOptions(category="../../cat", protect=proj.root))
    written = seen.written_paths()
    assert written
    staging = out.with_name(out.name + ".tmp-")
    assert all(_inside(p, out) or p.startswith(str(staging)) for p in written), written
    files = [p.relative_to(out) for p in out.rglob("*") if p.is_file()]
    assert all(SAFE.fullmatch(part) for f in files for part in f.parts), files
    assert len(report.entries) == len(proj.images)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exports", "proj"]
    assert sorted(p.name for p in (tmp_path / "exports").iterdir()) == ["out"]


def test_non_ascii_and_odd_image_names_keep_extensions_and_stay_distinct(hostile_project, tmp_path):
    proj = hostile_project
    items = [type(i)(i.rel, i.image_path, i.mask_path, "defect", i.status) for i in proj.export_items(("accepted",))]
    export(items, "coco", tmp_path / "out", ExportOptions(protect=proj.root))
    names = sorted(p.name for p in (tmp_path / "out" / "images" / "default" / "test" / "weird").iterdir())
    assert len(names) == len(proj.images) and all(n.endswith(".png") for n in names)
    assert "CON.png" in names and len(set(names)) == len(names)


def test_segment_outputs_stay_inside_out(tmp_path, tiny_models):
    clip, sam = tiny_models
    src = tmp_path / "in"
    src.mkdir()
    for i, name in enumerate(HOSTILE_NAMES[:4]):
        Image.fromarray(blob_image((40, 48), [(20, 20)], seed=i)).save(src / name, format="PNG")
    out = tmp_path / "out"
    with watching() as seen:
        rc = main(["segment", str(src), "-o", str(out), "--clip", str(clip), "--sam", str(sam),
                   "--device", "cpu"])
    assert rc == 0
    assert all(_inside(p, out) for p in seen.written_paths())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]


def test_label_and_import_write_only_into_the_sidecar(hostile_project, tmp_path, tiny_models):
    clip, sam = tiny_models
    proj = hostile_project
    masks = tmp_path / "masks"
    for e in proj.images:
        save_mask(masks / e.rel, np.ones((40, 48), bool))
    with watching() as seen:
        assert main(["label", str(proj.root), "--from-masks", str(masks)]) == 0
        assert main(["label", str(proj.root), "--redo", "--clip", str(clip), "--sam", str(sam),
                     "--device", "cpu"]) == 0
    assert all(_inside(p, proj.root / ".zsas") for p in seen.written_paths())
