"""Downloads against a local HTTP server on 127.0.0.1 (started here; nothing leaves the machine)."""

from __future__ import annotations

import functools
import hashlib
import json
import random
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from zsas_gui.cli import main as cli_main
from zsas_gui.core.errors import DownloadError
from zsas_gui.core.models import download as dl
from zsas_gui.core.models import registry
from zsas_gui.core.models.registry import ModelSpec

DATA = random.Random(0).randbytes(300_000)
CHUNK = 16 * 1024


class _State:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {"/tiny.pth": DATA}
        self.redirects: dict[str, str] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.cut_after: list[int] = []      # per request: send only this many body bytes, then drop
        self.ignore_range = False


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        state: _State = self.server.state
        state.requests.append((self.path, self.headers.get("Range")))
        if self.path in state.redirects:
            self.send_response(302)
            self.send_header("Location", state.redirects[self.path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = state.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        wanted = self.headers.get("Range")
        if wanted and not state.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", wanted).group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        cut = state.cut_after.pop(0) if state.cut_after else None
        self.wfile.write(body if cut is None else body[:cut])

    def log_message(self, *args) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # a client that hangs up (cancel) is expected here


@pytest.fixture
def server():
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.state = _State()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def spec_for(url: str, data: bytes = DATA, **kw) -> ModelSpec:
    fields = {"name": "tiny", "kind": "sam", "arch": "vit_b", "file_name": "tiny.pth", "url": url,
              "size_bytes": len(data), "checksum": hashlib.sha256(data).hexdigest(),
              "checksum_algo": "sha256", "image_size": 1024, "licence": "test", "description": "test"}
    fields.update(kw)
    return ModelSpec(**fields)


def fetch(spec, dest, **kw):
    kw.setdefault("allow_insecure_localhost", True)
    kw.setdefault("chunk_bytes", CHUNK)
    kw.setdefault("retry_wait", 0.0)
    return dl.download(spec, dest, **kw)


def test_download_streams_verifies_and_renames(server, tmp_path):
    calls = []
    path = fetch(spec_for(server.url + "/tiny.pth"), tmp_path / "m", progress=lambda d, t: calls.append((d, t)))
    assert path == tmp_path / "m" / "tiny.pth"
    assert path.read_bytes() == DATA
    assert sorted(p.name for p in path.parent.iterdir()) == ["tiny.pth"]   # no .part, no .lock
    assert calls[0] == (0, len(DATA)) and calls[-1] == (len(DATA), len(DATA))
    assert [d for d, _ in calls] == sorted(d for d, _ in calls) and len(calls) > 5
    assert server.state.requests == [("/tiny.pth", None)]


def test_resume_after_an_interrupted_transfer(server, tmp_path):
    half = len(DATA) // 2
    server.state.cut_after = [half]
    spec = spec_for(server.url + "/tiny.pth")
    with pytest.raises(DownloadError, match="run the download again to resume") as info:
        fetch(spec, tmp_path, retries=0)
    assert "tiny.pth" in str(info.value)
    part = tmp_path / "tiny.pth.part"
    assert part.read_bytes() == DATA[:half] and not (tmp_path / "tiny.pth").exists()

    calls = []
    path = fetch(spec, tmp_path, progress=lambda d, t: calls.append(d))
    assert path.read_bytes() == DATA and not part.exists()
    assert server.state.requests[-1] == ("/tiny.pth", f"bytes={half}-")
    assert calls[0] == half                          # progress starts where the .part ended


def test_interruptions_are_retried_within_one_call(server, tmp_path):
    server.state.cut_after = [40_000, 70_000]
    path = fetch(spec_for(server.url + "/tiny.pth"), tmp_path, retries=2)
    assert path.read_bytes() == DATA
    assert [r for _, r in server.state.requests] == [None, "bytes=40000-", "bytes=110000-"]


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    server.state.ignore_range = True
    (tmp_path / "tiny.pth.part").write_bytes(b"\0" * 1000)         # stale partial content
    path = fetch(spec_for(server.url + "/tiny.pth"), tmp_path)
    assert path.read_bytes() == DATA
    assert server.state.requests == [("/tiny.pth", "bytes=1000-")]


def test_part_longer_than_the_server_file_starts_over(server, tmp_path):
    (tmp_path / "tiny.pth.part").write_bytes(b"\0" * 1000)
    server.state.files["/tiny.pth"] = DATA[:500]
    spec = spec_for(server.url + "/tiny.pth", data=DATA[:500], size_bytes=None)   # size unknown
    path = fetch(spec, tmp_path, retries=1)
    assert path.read_bytes() == DATA[:500]
    assert [r for _, r in server.state.requests] == ["bytes=1000-", None]       # 416, then afresh


def test_checksum_mismatch_deletes_the_part_and_names_both_digests(server, tmp_path):
    spec = spec_for(server.url + "/tiny.pth", checksum="0" * 64)
    with pytest.raises(DownloadError) as info:
        fetch(spec, tmp_path)
    msg = str(info.value)
    assert "tiny.pth" in msg and f"expected {'0' * 64}" in msg
    assert f"got {hashlib.sha256(DATA).hexdigest()}" in msg
    assert list(tmp_path.iterdir()) == []


def test_md5_checksums_work(server, tmp_path):
    spec = spec_for(server.url + "/tiny.pth", checksum=hashlib.md5(DATA).hexdigest(), checksum_algo="md5")
    assert fetch(spec, tmp_path).read_bytes() == DATA


def test_cancel_keeps_the_part_for_a_later_resume(server, tmp_path):
    cancel = threading.Event()

    def progress(done, total):
        if done >= 3 * CHUNK:
            cancel.set()

    spec = spec_for(server.url + "/tiny.pth")
    with pytest.raises(DownloadError, match="^cancelled"):
        fetch(spec, tmp_path, progress=progress, cancel=cancel)
    part = tmp_path / "tiny.pth.part"
    kept = part.stat().st_size
    assert 0 < kept < len(DATA) and part.read_bytes() == DATA[:kept]
    assert not (tmp_path / "tiny.pth").exists()
    assert fetch(spec, tmp_path).read_bytes() == DATA
    assert server.state.requests[-1] == ("/tiny.pth", f"bytes={kept}-")


def test_cancel_before_start_makes_no_request(server, tmp_path):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(DownloadError, match="^cancelled"):
        fetch(spec_for(server.url + "/tiny.pth"), tmp_path, cancel=cancel)
    assert server.state.requests == []


@pytest.mark.parametrize("url, allow", [
    ("{server}/tiny.pth", False),               # plain http needs the explicit test flag
    ("http://example.com/tiny.pth", True),      # ... and even then only to localhost
    ("ftp://example.com/tiny.pth", True),
    ("file:///etc/passwd", True),
])
def test_only_https_is_allowed(server, tmp_path, url, allow):
    with pytest.raises(DownloadError, match="only https:// URLs are allowed"):
        dl.download(spec_for(url.format(server=server.url)), tmp_path / "m", allow_insecure_localhost=allow)
    assert server.state.requests == [] and not (tmp_path / "m").exists()


def test_redirect_to_plain_http_elsewhere_is_refused(server, tmp_path):
    server.state.redirects["/moved.pth"] = "http://example.com/tiny.pth"
    with pytest.raises(DownloadError, match="only https://"):
        fetch(spec_for(server.url + "/moved.pth"), tmp_path)
    server.state.redirects["/local.pth"] = server.url + "/tiny.pth"
    assert fetch(spec_for(server.url + "/local.pth"), tmp_path).read_bytes() == DATA


def test_http_errors_and_size_disagreements_are_reported(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(spec_for(server.url + "/absent.pth"), tmp_path)
    with pytest.raises(DownloadError, match=f"serves {len(DATA)} bytes but tiny.pth should be {len(DATA) + 1}"):
        fetch(spec_for(server.url + "/tiny.pth", size_bytes=len(DATA) + 1), tmp_path)


def test_installed_file_is_kept_and_a_bad_one_replaced(server, tmp_path):
    spec = spec_for(server.url + "/tiny.pth")
    (tmp_path / "tiny.pth").write_bytes(DATA)
    assert fetch(spec, tmp_path).read_bytes() == DATA
    assert server.state.requests == []
    (tmp_path / "tiny.pth").write_bytes(b"\0" * len(DATA))           # right size, wrong content
    assert fetch(spec, tmp_path).read_bytes() == DATA
    assert len(server.state.requests) == 1


def test_complete_part_needs_no_request(server, tmp_path):
    (tmp_path / "tiny.pth.part").write_bytes(DATA)
    assert fetch(spec_for(server.url + "/tiny.pth"), tmp_path).read_bytes() == DATA
    assert server.state.requests == []


def test_a_second_concurrent_download_is_refused(server, tmp_path):
    with dl._exclusive(tmp_path / "tiny.pth"), pytest.raises(DownloadError, match="already running"):
        fetch(spec_for(server.url + "/tiny.pth"), tmp_path)
    assert server.state.requests == []
    assert fetch(spec_for(server.url + "/tiny.pth"), tmp_path).read_bytes() == DATA


def test_default_destination_is_the_model_cache(server, tmp_path, monkeypatch):
    monkeypatch.setenv(registry.MODELS_DIR_ENV, str(tmp_path / "cache"))
    path = dl.download(spec_for(server.url + "/tiny.pth"), allow_insecure_localhost=True)
    assert path == tmp_path / "cache" / "tiny.pth" and path.read_bytes() == DATA


# --- verify ---------------------------------------------------------------------------------------

def test_verify_reports_each_failure(tmp_path):
    path = tmp_path / "tiny.pth"
    spec = spec_for("https://example.invalid/tiny.pth")
    assert dl.verify(path, spec) == (False, f"missing: {path}")
    path.write_bytes(DATA[:-1])
    ok, msg = dl.verify(path, spec)
    assert not ok and "incomplete" in msg and str(len(DATA)) in msg
    path.write_bytes(DATA[:-1] + bytes([DATA[-1] ^ 0xFF]))
    ok, msg = dl.verify(path, spec)
    assert not ok and msg.startswith("sha256 mismatch") and spec.checksum in msg
    path.write_bytes(DATA)
    seen = []
    ok, msg = dl.verify(path, spec, progress=lambda d, t: seen.append((d, t)))
    assert ok and msg.startswith("sha256 ok") and seen[-1] == (len(DATA), len(DATA))


def test_verify_without_published_checksum_checks_size_only(tmp_path):
    path = tmp_path / "w.pth"
    path.write_bytes(DATA)
    spec = spec_for("https://example.invalid/w.pth", file_name="w.pth", checksum=None, checksum_algo=None)
    ok, msg = dl.verify(path, spec)
    assert ok and "no published checksum" in msg


def _safetensors_bytes() -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}).encode()
    header += b" " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header + bytes(16)


def test_verify_checks_safetensors_structure_when_no_checksum(tmp_path):
    good = _safetensors_bytes()
    path = tmp_path / "w.safetensors"
    spec = spec_for("https://example.invalid/w.safetensors", file_name="w.safetensors", size_bytes=None,
                    checksum=None, checksum_algo=None)
    path.write_bytes(good)
    assert dl.verify(path, spec) == (True, "size not published; no published checksum, content not verified")
    path.write_bytes(good[:-4])
    ok, msg = dl.verify(path, spec)
    assert not ok and "truncated" in msg
    path.write_bytes(b"\xff" * 64)
    assert dl.verify(path, spec)[0] is False


# --- CLI ------------------------------------------------------------------------------------------

@pytest.fixture
def cli_registry(server, tmp_path, monkeypatch):
    """The test spec registered, the cache in tmp, and the CLI's downloader allowed onto 127.0.0.1."""
    monkeypatch.setattr(registry, "_SPECS", dict(registry._SPECS))
    monkeypatch.setattr(registry, "_ALIASES", dict(registry._ALIASES))
    registry.register_spec(spec_for(server.url + "/tiny.pth"))
    monkeypatch.setenv(registry.MODELS_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(dl, "download", functools.partial(dl.download, allow_insecure_localhost=True,
                                                          chunk_bytes=CHUNK))
    return tmp_path / "cache"


def test_cli_download_verify_and_path(cli_registry, capsys):
    assert cli_main(["models", "download", "tiny"]) == 0
    captured = capsys.readouterr()
    target = cli_registry / "tiny.pth"
    assert captured.out.strip() == f"tiny: {target}" and target.read_bytes() == DATA
    assert "tiny" in captured.err                                  # the tqdm bar
    assert cli_main(["models", "verify"]) == 0
    assert capsys.readouterr().out.strip().startswith("tiny: OK: sha256 ok")
    assert cli_main(["models", "path", "tiny"]) == 0
    assert capsys.readouterr().out.strip() == str(target)
    target.write_bytes(DATA[::-1])
    assert cli_main(["models", "verify", "tiny"]) == 1
    assert "tiny: FAILED: sha256 mismatch" in capsys.readouterr().out


def test_cli_download_failure_is_one_line_per_model(cli_registry, server, capsys):
    server.state.files.clear()
    assert cli_main(["models", "download", "tiny"]) == 1
    err = capsys.readouterr().err
    assert "zsas: error: tiny: cannot download tiny: HTTP 404" in err and "Traceback" not in err
    assert cli_main(["models", "download", "no-such-model"]) == 1
    assert "unknown model 'no-such-model'" in capsys.readouterr().err
