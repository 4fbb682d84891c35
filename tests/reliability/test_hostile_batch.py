"""Files that stopped a whole batch with a traceback (issue 14, item 5), so a re-run died at the
same image: a non-UTF-8 file name, a legal 234-byte name (the sidecar names grew past 255), a
32x60000 PNG (SAM's resize gave a 0 px side), a 13000x13000 PNG (over the pixel budget), a
damaged mask PNG at export, an export to ``-o .``. Each is now a message naming the file; the
batch finishes the other images."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from reliability_helpers import png_header_only
from synthetic import blob_image

from zsas_gui.cli import main
from zsas_gui.core.errors import ImageReadError
from zsas_gui.core.io.imageio import load_image, save_png
from zsas_gui.state.project import Project

LONG = "x" * 230 + ".png"          # 234 bytes: legal; + ".json", + ".<16 hex>.png" are not
LATIN1 = b"lat\xe9.png"            # not UTF-8: Python keeps it as "lat\udce9.png"


def _hostile_folder(root: Path) -> Path:
    root.mkdir(parents=True)
    save_png(root / "ok.png", blob_image((48, 64), [(20, 24)], radius=6, seed=1))
    save_png(root / LONG, blob_image((48, 64), [(30, 30)], radius=6, seed=2))
    with open(os.path.join(os.fsencode(root), LATIN1), "wb") as fh:
        fh.write((root / "ok.png").read_bytes())
    Image.fromarray(np.full((32, 60000), 128, np.uint8)).save(root / "thin.png")
    (root / "huge.png").write_bytes(png_header_only(13000, 13000))
    return root


def _models(tiny_models):
    return ["--clip", str(tiny_models[0]), "--sam", str(tiny_models[1]), "--device", "cpu"]


def test_label_finishes_every_other_image_and_a_rerun_resumes(tmp_path, tiny_models, capsys):
    root = _hostile_folder(tmp_path / "p")
    assert main(["label", str(root), *_models(tiny_models)]) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "not valid UTF-8" in err and "rename the file" in err
    assert "thin.png" in err and "times longer than wide" in err
    assert "huge.png" in err and "Mpx" in err and "downscale" in err
    proj = Project.open(root)
    assert proj.has_mask("ok.png") and proj.has_mask(LONG)
    assert all(len(p.name.encode()) <= 255 for p in (root / ".zsas").rglob("*"))
    assert max(len(p.name.encode()) for p in (root / ".zsas").rglob("*")) < 100
    assert [e.rel for e in proj.images] == sorted(["ok.png", LONG, "thin.png", "huge.png"])
    assert proj.load(LONG).mask is not None and proj.problems == [p for p in proj.problems if "UTF-8" in p]
    assert main(["label", str(root), *_models(tiny_models)]) == 3          # resumes: only the two bad
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "0/2 images pre-labelled" in captured.out


def test_segment_names_each_bad_file_and_writes_the_others(tmp_path, tiny_models, capsys):
    root = _hostile_folder(tmp_path / "p")
    out = tmp_path / "out"
    rc = main(["segment", str(root), "-o", str(out), *_models(tiny_models)])
    err = capsys.readouterr().err
    assert "Traceback" not in err, err[-2000:]
    assert rc == 3
    assert "thin.png" in err and "huge.png" in err
    assert any(p.name.startswith("ok") for p in out.rglob("*"))


def test_export_with_odd_names_and_a_long_name(tmp_path, capsys):
    root = _hostile_folder(tmp_path / "p")
    proj = Project.open(root)
    for rel in ("ok.png", LONG):
        rec = proj.load(rel)
        rec.status, rec.mask = "accepted", np.pad(np.ones((8, 8), bool), ((10, 30), (10, 46)))
        proj.save(rec)
    assert main(["export", str(root), "-f", "png", "-o", str(tmp_path / "x")]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "UTF-8" in err
    import json

    manifest = json.loads((tmp_path / "x" / "zsas_export.json").read_text())
    assert sorted(e["source"] for e in manifest["items"]) == sorted(["ok.png", LONG])


def _damaged(png: bytes, how: str) -> bytes:
    if how == "short-ihdr":            # the IHDR chunk says 5 bytes long: Pillow raises ValueError
        return png[:8] + struct.pack(">I", 5) + png[12:]
    body = b"\x00" * 4                  # a chunk with an invalid type: Pillow raises SyntaxError
    bad = struct.pack(">I", len(body)) + b"T\xc3\xa8\x86" + body + struct.pack(">I", zlib.crc32(body))
    return png[:33] + bad + png[33:]


@pytest.mark.parametrize("how", ["short-ihdr", "bad-chunk"])
def test_a_damaged_stored_mask_is_named_at_export(tmp_path, capsys, how):
    root = tmp_path / "p"
    save_png(root / "a.png", blob_image((48, 64), [(20, 24)], radius=6, seed=1))
    proj = Project.open(root)
    rec = proj.load("a.png")
    rec.status, rec.mask = "accepted", np.pad(np.ones((8, 8), bool), ((10, 30), (10, 46)))
    proj.save(rec)
    mask = next((root / ".zsas" / "masks").glob("*.png"))
    mask.write_bytes(_damaged(mask.read_bytes(), how))
    rc = main(["export", str(root), "-f", "mvtec", "-o", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err and mask.name in err
    assert not (tmp_path / "x").exists()


def test_export_to_the_current_empty_folder(tmp_path, monkeypatch, capsys):
    root = tmp_path / "p"
    save_png(root / "a.png", blob_image((48, 64), [(20, 24)], radius=6, seed=1))
    proj = Project.open(root)
    rec = proj.load("a.png")
    rec.status = "good"
    proj.save(rec)
    here = tmp_path / "empty"
    here.mkdir()
    inode = here.stat().st_ino
    monkeypatch.chdir(here)
    assert main(["export", str(root), "-f", "png", "-o", "."]) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert here.stat().st_ino == inode                     # the shell's folder itself, not a new one
    assert (here / "zsas_export.json").is_file() and (here / "a.png").is_file()


def test_the_pixel_budget_and_the_aspect_limit_read_only_the_header(tmp_path):
    (tmp_path / "huge.png").write_bytes(png_header_only(13000, 13000))
    (tmp_path / "thin.png").write_bytes(png_header_only(60000, 32))
    for name, words in (("huge.png", "169 Mpx"), ("thin.png", "longer than wide")):
        with pytest.raises(ImageReadError, match=words):
            load_image(tmp_path / name)
    Image.fromarray(np.full((32, 8192), 128, np.uint8)).save(tmp_path / "long.png")   # 256:1 is accepted
    assert load_image(tmp_path / "long.png").shape == (32, 8192, 3)


def test_a_strip_at_the_aspect_limit_runs_through_the_method(tiny_pipeline):
    """The limit is not too strict: a 32x8192 strip (256:1) gives a mask of its size."""
    from zsas_gui.core.types import MethodParams

    image = np.random.default_rng(0).integers(0, 255, (32, 8192, 3), dtype=np.uint8)
    assert tiny_pipeline.run(None, image, MethodParams()).pred_mask.shape == (32, 8192)
