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
    assert "zsas_gui.core.engine.pipeline" in mods and "zsas_gui.core.method.ppg" in mods
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
    assert not {m for m in loaded if m.startswith(("torch", "PySide6", "cv2", "open_clip", "ray", "pyarrow"))}


def test_package_version():
    assert zsas_gui.__version__


# --- the import graph, read from the source (lazy imports inside functions included) -------------

import ast
from pathlib import Path

PKG_ROOT = Path(zsas_gui.__file__).parent
GROUND = {"types", "frames", "errors", "metrics"}
# core's floors: each package may import only the ones listed (and itself); see core/__init__.py
CORE_ALLOWED = {
    "types": set(), "frames": set(), "errors": set(), "metrics": set(),
    "io": {"errors", "types"},
    "method": GROUND,
    "models": GROUND | {"io"},
    "maps": GROUND | {"models"},
    "sam": GROUND | {"models", "io"},
    "export": GROUND | {"io"},
    "explain": GROUND | {"method", "io"},
    "evaluation": GROUND | {"io", "method"},
    "engine": GROUND | {"io", "method", "models", "maps", "sam"},
}


def _imports_of(path: Path) -> set[str]:
    """Absolute module names imported anywhere in ``path`` (relative imports resolved)."""
    mod = ".".join(path.relative_to(PKG_ROOT.parent).with_suffix("").parts)
    package = mod.rsplit(".", 1)[0] if path.name != "__init__.py" else mod.removesuffix(".__init__")
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.add(name)
            out |= {f"{name}.{a.name}" for a in node.names}
    return {m for m in out if m.startswith("zsas_gui")}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _core_package(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "core" else None


def _sources(layer: str) -> list[Path]:
    return sorted((PKG_ROOT / layer).rglob("*.py"))


def test_core_packages_import_only_lower_floors():
    assert set(CORE_ALLOWED) >= {p.name for p in (PKG_ROOT / "core").iterdir()
                                  if p.is_dir() and not p.name.startswith("__")}
    bad = []
    for path in _sources("core"):
        own = path.relative_to(PKG_ROOT / "core").parts[0].removesuffix(".py")
        if own == "__init__":
            continue
        for target in _imports_of(path):
            if _layer(target) in ("state", "qt", "cli", "app"):
                bad.append(f"{path.name} imports {target} (core never imports state, qt or cli)")
                continue
            pkg = _core_package(target)
            if pkg and pkg != own and pkg in CORE_ALLOWED and pkg not in CORE_ALLOWED[own]:
                bad.append(f"core/{own} imports {target}")
    assert not bad, "\n".join(bad)


def test_state_never_imports_qt_or_cli_and_only_app_imports_qt():
    bad = []
    for layer in ("state", "cli", "core"):
        for path in _sources(layer):
            for target in _imports_of(path):
                if _layer(target) == "qt" or (layer != "cli" and _layer(target) == "cli"):
                    bad.append(f"{layer}/{path.name} imports {target}")
    top = [p for p in PKG_ROOT.glob("*.py") if p.name != "app.py"]
    bad += [f"{p.name} imports {t}" for p in top for t in _imports_of(p) if _layer(t) == "qt"]
    assert not bad, "\n".join(bad)


def test_no_module_imports_another_modules_private_names():
    """A name starting with ``_`` is its module's own: importing it elsewhere (or re-exporting it)
    hides an interface nobody declared."""
    bad = []
    for path in sorted(PKG_ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                bad += [f"{path.relative_to(PKG_ROOT)} imports {node.module}.{a.name}" for a in node.names
                        if a.name.startswith("_") and not a.name.startswith("__")]
    assert not bad, "\n".join(bad)


def test_the_vocabulary_is_the_floor():
    """zsas_gui/vocabulary.py imports nothing of zsas_gui; everyone may import it."""
    assert _imports_of(PKG_ROOT / "vocabulary.py") == set()
def test_scale_sits_above_core_and_state():
    """zsas_gui.scale (the --ray jobs) may import core and state; only cli imports it."""
    bad = [f"{layer}/{p.name} imports {t}" for layer in ("core", "state", "qt")
           for p in _sources(layer) for t in _imports_of(p) if _layer(t) == "scale"]
    bad += [f"scale/{p.name} imports {t}" for p in _sources("scale") for t in _imports_of(p)
            if _layer(t) in ("cli", "qt", "app")]
    assert _sources("scale") and not bad, "\n".join(bad)
