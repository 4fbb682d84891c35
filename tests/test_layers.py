"""Layering: core and state never import Qt; state never imports torch; the CLI's help is light."""

import pkgutil
import subprocess
import sys

import zsas_gui


def _modules(prefix: str) -> list[str]:
    pkg = __import__(prefix, fromlist=["_"])
    return [prefix] + [m.name for m in pkgutil.walk_packages(pkg.__path__, prefix + ".")]


def _imported_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_core_imports_no_qt():
    mods = _modules("zsas_gui.core")
    assert "zsas_gui.core.pipeline" in mods and "zsas_gui.core.ppg" in mods
    loaded = _imported_after("\n".join(f"import {m}" for m in mods))
    assert not {m for m in loaded if m.startswith(("PySide6", "qtawesome", "superqt"))}


def test_state_imports_no_qt_and_no_torch():
    loaded = _imported_after("\n".join(f"import {m}" for m in _modules("zsas_gui.state")))
    assert not {m for m in loaded if m.startswith(("PySide6", "torch", "open_clip", "segment_anything"))}


def test_cli_help_imports_no_torch_and_no_qt():
    code = ("import contextlib, io\nfrom zsas_gui.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
            "    for c in ('segment', 'models', 'export', 'label', 'eval'):\n"
            "        try:\n            main([c, '--help'])\n        except SystemExit:\n            pass\n")
    loaded = _imported_after(code)
    assert "zsas_gui.cli.segment_cmd" in loaded
    assert not {m for m in loaded if m.startswith(("torch", "PySide6", "cv2", "open_clip"))}


def test_package_version():
    assert zsas_gui.__version__
