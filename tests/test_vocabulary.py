"""One vocabulary: the project's words (statuses, mask sources, formats, exit statuses ...) are
defined in zsas_gui/vocabulary.py only, read from the source: no other module assigns those names
or writes one of those lists out again; the module imports nothing, so the CLI and the state
layer read it without torch or Qt."""

import ast
from pathlib import Path

import zsas_gui
from zsas_gui import vocabulary

PKG_ROOT = Path(zsas_gui.__file__).parent
WORDS = {name: value for name, value in vars(vocabulary).items() if name.isupper()}


def _sources():
    return [p for p in sorted(PKG_ROOT.rglob("*.py")) if p != PKG_ROOT / "vocabulary.py"]


def test_the_vocabulary_holds_the_words_the_project_uses():
    assert {"STATUSES", "MASK_SOURCES", "DEFAULT_CLASS", "FORMATS", "EXIT_SOME_FAILED",
            "NORMAL_STATUSES", "DEFECT_STATUSES", "DEFAULT_INCLUDE"} <= set(WORDS)
    assert set(vocabulary.NORMAL_STATUSES) | set(vocabulary.DEFECT_STATUSES) <= set(vocabulary.STATUSES)
    assert set(vocabulary.DEFAULT_INCLUDE) <= set(vocabulary.STATUSES)


def _redefinitions(text: str) -> list[str]:
    """Lines of ``text`` (Python source) that assign a vocabulary name or write one of its lists out."""
    lists = {value: name for name, value in WORDS.items() if isinstance(value, tuple) and len(value) > 1}
    found = []
    for node in ast.walk(ast.parse(text)):
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) else [])
        found += [f"{node.lineno} assigns {t.id}" for t in targets if isinstance(t, ast.Name) and t.id in WORDS]
        if isinstance(node, (ast.Tuple, ast.List)) and all(isinstance(e, ast.Constant) for e in node.elts):
            value = tuple(e.value for e in node.elts)
            if value in lists:
                found.append(f"{node.lineno} writes out {lists[value]}")
    return found


def test_no_module_defines_a_word_again():
    bad = [f"{p.relative_to(PKG_ROOT)}:{line}" for p in _sources() for line in _redefinitions(p.read_text())]
    assert not bad, "\n".join(bad)


def test_the_scan_finds_the_old_copies():
    """The scan is not vacuous: the copies this module replaced would each be found."""
    assert _redefinitions('STATUSES = ("unreviewed", "accepted", "edited", "rejected", "good")\n') == [
        "1 assigns STATUSES", "1 writes out STATUSES"]
    assert _redefinitions("EXIT_SOME_FAILED = 3\n") == ["1 assigns EXIT_SOME_FAILED"]
    assert _redefinitions('ok = s in ("mvtec", "folder", "coco", "labelme", "yolo", "png")\n') == [
        "1 writes out FORMATS"]


def test_the_vocabulary_imports_nothing():
    tree = ast.parse((PKG_ROOT / "vocabulary.py").read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
