"""No network access except explicit model downloads to the registry's fixed HTTPS addresses.

At run time: every command runs with sockets, DNS and urllib made to fail loudly (patched and
refused by an audit hook, which also sees C-level connects); none even tries. Statically: the
only module that imports a network library is models/download.py, it fetches only ``spec.url``
after checking it is HTTPS, and every registry URL is HTTPS on a known host, pinned, with a
published checksum and size."""

from __future__ import annotations

import ast
import http.client
import re
import socket
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from reliability_helpers import watching
from synthetic import blob_image

from zsas_gui.cli import main
from zsas_gui.core.models import registry

PACKAGE = Path(__file__).resolve().parents[2] / "zsas_gui"
NETWORK_MODULES = {"urllib", "http", "socket", "ssl", "requests", "httpx", "aiohttp", "urllib3", "ftplib",
                   "smtplib", "poplib", "imaplib", "telnetlib", "xmlrpc", "websocket", "websockets",
                   "huggingface_hub", "socketserver"}
DOWNLOADER = PACKAGE / "core" / "models" / "download.py"
#: Where checkpoints come from: Meta's file server, Hugging Face and GitHub (pinned to commits).
ALLOWED_HOSTS = {"dl.fbaipublicfiles.com", "huggingface.co", "raw.githubusercontent.com"}


@pytest.fixture
def no_network(monkeypatch):
    """Every way to reach the network raises; the attempts are listed."""
    attempts: list[str] = []

    def refuse(name):
        def fail(*args, **kwargs):
            attempts.append(f"{name}{args[1:2]!r}")
            raise ConnectionRefusedError(f"network access in a test: {name}")
        return fail

    for obj, attr in [(socket.socket, "connect"), (socket.socket, "connect_ex"), (socket, "create_connection"),
                      (socket, "getaddrinfo"), (urllib.request, "urlopen"),
                      (urllib.request.OpenerDirector, "open"), (http.client.HTTPConnection, "connect")]:
        monkeypatch.setattr(obj, attr, refuse(f"{getattr(obj, '__name__', obj)}.{attr}"))
    with watching(refuse_network=True) as seen:
        yield attempts
    attempts.extend(repr(c) for c in seen.connects)


def _category(root: Path) -> Path:
    """A tiny MVTec-layout category: two good and two defect test images with masks."""
    cat = root / "widget"
    for d in ("test/good", "test/scratch", "ground_truth/scratch"):
        (cat / d).mkdir(parents=True)
    for i in range(2):
        Image.fromarray(blob_image((48, 64), centers=(), seed=i)).save(cat / f"test/good/{i:03d}.png")
        Image.fromarray(blob_image((48, 64), [(20 + 10 * i, 20)], radius=6, seed=5 + i)).save(
            cat / f"test/scratch/{i:03d}.png")
        mask = np.zeros((48, 64), np.uint8)
        mask[14:27, 14 + 10 * i:27 + 10 * i] = 255
        Image.fromarray(mask).save(cat / f"ground_truth/scratch/{i:03d}_mask.png")
    return cat


@pytest.mark.slow
def test_every_command_runs_without_touching_the_network(no_network, tmp_path, tiny_models, monkeypatch,
                                                         capsys):
    monkeypatch.setenv("ZSAS_MODELS_DIR", str(tmp_path / "models-cache"))
    clip, sam = tiny_models
    models = ["--clip", str(clip), "--sam", str(sam), "--device", "cpu"]
    cat = _category(tmp_path / "data")
    project = tmp_path / "project"
    project.mkdir()
    for i in range(2):
        Image.fromarray(blob_image((48, 64), [(20, 20)], seed=i)).save(project / f"{i}.png")
    runs = {
        "segment": (["segment", str(cat / "test"), "-o", str(tmp_path / "seg"), *models], 0),
        "label": (["label", str(project), *models], 0),
        "review-export": (["export", str(project), "--format", "coco", "--include", "unreviewed",
                           "-o", str(tmp_path / "coco")], 0),
        "import": (["label", str(tmp_path / "data" / "widget"), "--from-masks", str(cat)], 0),
        "eval": (["eval", str(cat), "-o", str(tmp_path / "eval"), "--no-plots", "--bins", "64", *models], 0),
        "explain": (["explain", str(cat / "test/scratch/000.png"), "-o", str(tmp_path / "fig.png"), *models],
                    0),
        "models list": (["models", "list"], 0),
        "models verify": (["models", "verify"], 0),
        "models path": (["models", "path", "vit_b", "--expected"], 0),
        "not installed": (["segment", str(cat / "test"), "-o", str(tmp_path / "x"), "--sam", "vit_b",
                           "--clip", str(clip)], 1),
    }
    for name, (argv, expected) in runs.items():
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc == expected, f"{name}: rc {rc}: {err[-500:]}"
        assert "Traceback" not in err, name
        if name == "not installed":       # a missing model is never fetched implicitly
            assert "zsas models download" in err
    assert no_network == []


def test_a_download_is_refused_when_the_network_is_off(no_network, tmp_path):
    """The one place that does go online fails cleanly when it cannot (and we see it try)."""
    from zsas_gui.core.errors import DownloadError
    from zsas_gui.core.models.download import download

    with pytest.raises(DownloadError):
        download(registry.get_spec("vit_b"), dest_dir=tmp_path, retries=0)
    assert no_network, "the download did not even try: this test proves nothing"


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_only_the_downloader_imports_network_modules():
    users = {p.relative_to(PACKAGE).as_posix(): sorted(_imports(p) & NETWORK_MODULES)
             for p in sorted(PACKAGE.rglob("*.py"))}
    users = {k: v for k, v in users.items() if v}
    assert users == {"core/models/download.py": ["http", "urllib"]}


def test_the_downloader_fetches_only_the_spec_url_after_checking_it():
    tree = ast.parse(DOWNLOADER.read_text(encoding="utf-8"))
    requests, fetches = [], []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            if name.endswith("Request"):
                requests.append(ast.unparse(node.args[0]))
            if name.endswith(("urlopen", "urlretrieve")):
                fetches.append(name)
    assert requests == ["spec.url"] and fetches == []
    download = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "download")
    first_call = next(n for n in ast.walk(download) if isinstance(n, ast.Call))
    assert ast.unparse(first_call).startswith("check_url(spec.url")
    # and open_clip is never asked to fetch weights or tokenizers by itself
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith(("create_model",
                                                                                "create_model_and_transforms")):
                kw = {k.arg: ast.unparse(k.value) for k in node.keywords}
                assert kw.get("pretrained") == "None", f"{path}: {ast.unparse(node)}"
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("get_tokenizer"):
                assert ast.unparse(node.args[0]) == "'ViT-B-16'", f"{path}: bundled BPE tokenizer only"


def test_every_registry_url_is_https_pinned_and_checksummed():
    specs = registry.list_specs()
    assert specs
    for spec in specs:
        parts = urllib.parse.urlsplit(spec.url)
        assert parts.scheme == "https" and parts.hostname in ALLOWED_HOSTS, spec.url
        assert not parts.query and not parts.username and parts.port is None, spec.url
        pinned = parts.hostname == "dl.fbaipublicfiles.com" or re.search(r"/[0-9a-f]{40}/", parts.path)
        assert pinned, f"{spec.name}: the URL must name a fixed revision: {spec.url}"
        assert spec.checksum and spec.checksum_algo == "sha256" and spec.size_bytes, spec.name


def test_an_open_clip_config_asking_for_pretrained_weights_never_reaches_the_network(no_network, tiny_models,
                                                                                     tmp_path):
    """Issue 14: a CLIP folder whose config names a timm vision tower with
    ``timm_model_pretrained: true`` made timm and the Hugging Face hub try to download (19 DNS
    lookups, then a traceback). The flag is forced off and the hub is offline while building:
    a CheckpointError (the weights do not fit that tower) and no network attempt."""
    import json
    import shutil

    from zsas_gui.core.errors import CheckpointError
    from zsas_gui.core.models.loading import load_clip

    clip = shutil.copytree(tiny_models[0], tmp_path / "clip")
    cfg_file = clip / "open_clip_config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["model_cfg"]["vision_cfg"].update(timm_model_name="vit_tiny_patch16_224", timm_model_pretrained=True,
                                          timm_pool="", timm_proj="linear")
    cfg_file.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="clip"):
        load_clip(str(clip), device="cpu")
    assert no_network == []
