"""``zsas export`` from the command line; the store and exporters stay free of torch and Qt."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from zsas_gui.cli import main
from zsas_gui.state.demo import annotate, make_synthetic_folder
from zsas_gui.state.project import Project


def test_export_cli_lists_problems_and_writes_nothing(tmp_path, capsys):
    root = tmp_path / "parts"
    truth = make_synthetic_folder(root, n_good=1)
    proj = Project.open(root)
    annotate(proj, truth)
    rec = proj.load("test/hole/000.png")
    rec.mask = np.zeros_like(rec.mask)              # accepted, but the mask was wiped
    proj.save(rec)
    out = tmp_path / "out"
    assert main(["export", str(root), "-f", "coco", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "test/hole/000.png: marked accepted (a defect) but has no mask" in err
    assert not out.exists()

    assert main(["export", str(root), "-f", "coco", "-o", str(out), "--include", "good,accepted,nope"]) == 1
    assert "unknown status nope" in capsys.readouterr().err

    assert main(["export", str(root), "-f", "yolo", "-o", str(out), "--include", "good"]) == 0
    assert "1 good" in capsys.readouterr().out
    assert (out / "data.yaml").is_file()


def test_store_and_exporters_import_no_torch_or_qt():
    code = ("import sys; import zsas_gui.state.project, zsas_gui.state.importer, zsas_gui.core.export, "
            "zsas_gui.core.export.coco, zsas_gui.core.export.mvtec, zsas_gui.core.io.label_import; "
            "bad = [m for m in ('torch', 'PySide6', 'open_clip', 'segment_anything') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    repo = Path(__file__).resolve().parents[2]
    run = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True,
                         cwd=str(repo))
    assert run.returncode == 0, run.stdout + run.stderr
