"""No eval/exec and no unpickling of user data anywhere in zsas_gui: a scan of the syntax tree of
every module (calls, not text, so ``model.eval()`` and comments do not count)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "zsas_gui"

#: Calls that run code or unpickle, by their dotted name as written (suffix match).
FORBIDDEN_CALLS = {
    "eval", "exec", "compile", "__import__", "execfile",
    "pickle.load", "pickle.loads", "pickle.Unpickler", "cPickle.load", "cPickle.loads",
    "marshal.load", "marshal.loads", "shelve.open", "dill.load", "dill.loads", "joblib.load",
    "yaml.load", "yaml.unsafe_load", "yaml.full_load", "torch.jit.load", "jit.load",
    "os.system", "os.popen", "pd.read_pickle", "pandas.read_pickle", "numpy.load_pickle",
}
#: Loaders that are safe only with a keyword set to a given value.
REQUIRED_KEYWORDS = {
    "torch.load": ("weights_only", "True"),
    "load_checkpoint": ("weights_only", "True"),      # open_clip.load_checkpoint
    "np.load": ("allow_pickle", "False"),
    "numpy.load": ("allow_pickle", "False"),
}


def _calls():
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Call):
                yield path.relative_to(PACKAGE).as_posix(), node.lineno, ast.unparse(node.func), node


def test_no_code_running_calls():
    hits = [f"{f}:{line}: {name}" for f, line, name, node in _calls()
            if name in FORBIDDEN_CALLS or any(name.endswith("." + c) for c in FORBIDDEN_CALLS if "." in c)]
    assert hits == []


def test_loaders_refuse_pickled_code():
    hits = []
    for f, line, name, node in _calls():
        for loader, (kw, value) in REQUIRED_KEYWORDS.items():
            if name == loader or name.endswith("." + loader):
                given = {k.arg: ast.unparse(k.value) for k in node.keywords}
                if given.get(kw) != value:
                    hits.append(f"{f}:{line}: {ast.unparse(node)} needs {kw}={value}")
    assert hits == []


def test_no_pickle_enabling_keywords_or_shell():
    hits = []
    for f, line, name, node in _calls():
        for k in node.keywords:
            text = ast.unparse(k.value)
            if (k.arg == "allow_pickle" and text != "False") or (k.arg == "weights_only" and text != "True"):
                hits.append(f"{f}:{line}: {k.arg}={text}")
            if k.arg == "shell" and text != "False":
                hits.append(f"{f}:{line}: shell={text}")
    assert hits == []


def test_the_scan_sees_the_loaders_it_checks():
    """Guard against a scan that silently matches nothing (e.g. after a rename)."""
    names = {name for _, _, name, _ in _calls()}
    assert "torch.load" in names and "np.load" in names and "open_clip.load_checkpoint" in names
    assert any(n.endswith(".eval") for n in names)      # model.eval() is seen and rightly allowed
