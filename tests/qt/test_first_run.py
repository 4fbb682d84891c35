"""First run: the models recommended for this computer (preset auto: CPU -> fast, CUDA -> best)
are the default of the app and the CLI; the "Models needed" dialog downloads them with one
button (the real downloader against a local HTTP server serving a test model), then loads them
and the method runs on the open folder."""

import functools
import hashlib
import http.server
import threading

import pytest
from PySide6.QtCore import Qt

from tests.qt.test_model_dialog import _Slow as _Gated  # holds the body until the test lets go
from zsas_gui.core.engine.presets import PRESETS, get_preset, recommended_preset
from zsas_gui.core.models import registry


def test_auto_is_fast_on_a_cpu_and_best_with_cuda():
    assert recommended_preset("cpu") is PRESETS["fast"] and recommended_preset("mps") is PRESETS["fast"]
    assert recommended_preset("cuda:1") is PRESETS["best"]
    assert recommended_preset("auto", has_cuda=False) is PRESETS["fast"]
    assert recommended_preset("auto", has_cuda=True) is PRESETS["best"]
    assert get_preset("AUTO", "cpu") is PRESETS["fast"]


def test_the_cli_and_the_app_default_to_the_recommended_models(monkeypatch, tmp_path):
    from zsas_gui.app import build_parser, choose_models
    from zsas_gui.cli import build_parser as cli_parser
    from zsas_gui.cli.common import apply_default_preset
    from zsas_gui.qt.settings import app_settings

    fast = PRESETS["fast"]
    args = cli_parser().parse_args(["segment", "x.png", "-o", str(tmp_path), "--device", "cpu"])
    apply_default_preset(args)
    assert (args.preset, args.clip, args.sam) == ("fast", fast.clip_arg, "mobile_sam")
    args = cli_parser().parse_args(["segment", "x.png", "-o", str(tmp_path), "--device", "cuda",
                                    "--sam", "vit_b"])
    apply_default_preset(args)
    assert (args.clip, args.sam) == (PRESETS["best"].clip_arg, "vit_b")
    args = cli_parser().parse_args(["segment", "x.png", "-o", str(tmp_path), "--preset", "balanced"])
    apply_default_preset(args)
    assert (args.clip, args.sam) == (PRESETS["balanced"].clip_arg, "vit_b")
    monkeypatch.setenv("ZSAS_MODELS_DIR", str(tmp_path / "none"))
    clip, sam, device, _precision, problem = choose_models(build_parser().parse_args(["--device", "cpu"]),
                                                           app_settings())
    assert (clip, sam, device) == (fast.clip_arg, "mobile_sam", "cpu")
    assert "mobile_sam" in problem and "ViT-B-16-quickgelu" in problem     # not installed


@pytest.fixture
def model_server(tmp_path, tiny_models):
    """127.0.0.1 serving the tiny test SAM checkpoint as ``sam.pth``."""
    root = tmp_path / "www"
    root.mkdir()
    data = (tiny_models[1] / "model.pth").read_bytes()
    (root / "sam.pth").write_bytes(data)
    _Gated.gate = threading.Event()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Gated, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/sam.pth", data
    _Gated.gate.set()
    httpd.shutdown()
    httpd.server_close()


def _local_download(spec, progress=None, cancel=None):
    from zsas_gui.core.models.download import download

    return download(spec, progress=progress, cancel=cancel, allow_insecure_localhost=True, retries=0,
                    chunk_bytes=4096)


def _spec(url, data, checksum=None):
    return registry.ModelSpec(name="test-sam", kind="sam", arch="vit_b", file_name="test_sam.pth", url=url,
                              size_bytes=len(data), checksum=checksum or hashlib.sha256(data).hexdigest(),
                              checksum_algo="sha256", image_size=1024, licence="test",
                              description="tiny random test SAM")


def _dialog(w, url, data, clip_dir, checksum=None):
    w.show_no_models("CLIP model 'ViT-B-16-quickgelu' is not installed")
    dlg = w._no_models_dialog
    assert dlg.isVisible() and "paint masks by hand" in dlg.text()
    assert "Recommended for this computer" in dlg.text() and "zsas models download" in dlg.command.text()
    assert "GB" in dlg.download_btn.text() or "MB" in dlg.download_btn.text()
    dlg.specs = [_spec(url, data, checksum)]                  # the test model in place of the real ones
    dlg.clip, dlg.sam = str(clip_dir), str(registry.models_dir() / "test_sam.pth")
    dlg.download_fn = _local_download
    dlg.refresh()
    return dlg


def test_one_button_downloads_verifies_loads_and_runs_the_method(
        make_window, image_folder, model_server, tiny_models, tmp_path, monkeypatch, qtbot, wait_idle):
    monkeypatch.setenv("ZSAS_MODELS_DIR", str(tmp_path / "models"))
    url, data = model_server
    w = make_window(None, image_folder)
    dlg = _dialog(w, url, data, tiny_models[0])
    assert w.controller.doc.mask is None
    qtbot.mouseClick(dlg.download_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dlg.progress.value() > 0, timeout=300_000)
    assert dlg.cancel_btn.isEnabled() and not dlg.download_btn.isEnabled()
    qtbot.mouseClick(dlg.cancel_btn, Qt.MouseButton.LeftButton)   # cancel keeps the partial file
    _Gated.gate.set()
    qtbot.waitUntil(lambda: not dlg.running(), timeout=300_000)
    assert "cancelled" in dlg.message.text() and not (tmp_path / "models" / "test_sam.pth").exists()
    qtbot.mouseClick(dlg.download_btn, Qt.MouseButton.LeftButton)  # resumes, verifies, loads
    qtbot.waitUntil(lambda: w.controller.models_state == "ready", timeout=300_000)
    assert (tmp_path / "models" / "test_sam.pth").read_bytes() == data
    qtbot.waitUntil(lambda: w.controller.doc.mask is not None, timeout=300_000)   # the method ran
    assert not dlg.isVisible()                                     # closed once the models loaded
    wait_idle(w)


def test_a_checksum_mismatch_is_reported_and_nothing_is_loaded(
        make_window, image_folder, model_server, tiny_models, tmp_path, monkeypatch, qtbot):
    monkeypatch.setenv("ZSAS_MODELS_DIR", str(tmp_path / "models"))
    url, data = model_server
    _Gated.gate.set()
    w = make_window(None, image_folder)
    dlg = _dialog(w, url, data, tiny_models[0], checksum="0" * 64)
    qtbot.mouseClick(dlg.download_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dlg.running(), timeout=300_000)
    assert "sha256 mismatch" in dlg.message.text()
    assert not (tmp_path / "models" / "test_sam.pth").exists() and w.controller.models_state == "missing"
    dlg.close()
