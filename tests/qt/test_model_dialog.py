"""The model manager: registry rows with state and size, a download with progress and cancel on a
worker thread (the real downloader against a local file server), choosing local models."""

import functools
import hashlib
import http.server
import threading

import pytest
from PySide6.QtCore import Qt

from zsas_gui.core.models import registry


def test_lists_the_registry_with_state_and_size(dialog):
    specs = registry.list_specs()
    t = dialog.table
    assert t.rowCount() == len(specs)
    for r, spec in enumerate(specs):
        assert t.item(r, 2).text() == spec.size_text and t.item(r, 3).text() == "missing"


class _Slow(http.server.SimpleHTTPRequestHandler):
    gate = threading.Event()

    def log_message(self, *args):
        pass

    def copyfile(self, source, outputfile):
        outputfile.write(source.read(4096))
        outputfile.flush()
        self.gate.wait(10)                     # hold the rest until the test lets go
        outputfile.write(source.read())


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    data = bytes(range(256)) * 512            # 128 KiB
    (root / "w.bin").write_bytes(data)
    _Slow.gate = threading.Event()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                            functools.partial(_Slow, directory=str(root)))
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield httpd, data
    _Slow.gate.set()
    httpd.shutdown()
    httpd.server_close()


def _spec(url, data):
    return registry.ModelSpec(name="test-net", kind="sam", arch="vit_b", file_name="test_net.pth", url=url,
                              size_bytes=len(data), checksum=hashlib.sha256(data).hexdigest(),
                              checksum_algo="sha256", image_size=1024, licence="test", description="test")


def _local_download(spec, progress=None, cancel=None):
    from zsas_gui.core.models.download import download

    return download(spec, progress=progress, cancel=cancel, allow_insecure_localhost=True,
                    retries=0, chunk_bytes=4096)


def test_download_shows_progress_and_can_be_cancelled_then_completes(dialog, server, qtbot):
    httpd, data = server
    spec = _spec(f"http://127.0.0.1:{httpd.server_address[1]}/w.bin", data)
    dialog.start_download(spec, _local_download)
    assert dialog.cancel_btn.isEnabled() and dialog.progress.isVisible()
    qtbot.waitUntil(lambda: dialog.progress.value() > 0, timeout=300_000)
    qtbot.mouseClick(dialog.cancel_btn, Qt.MouseButton.LeftButton)
    _Slow.gate.set()
    qtbot.waitUntil(lambda: not dialog.downloads.running(), timeout=300_000)
    assert "cancelled" in dialog.message.text()
    target = registry.models_dir() / "test_net.pth"
    assert not target.exists()
    dialog.start_download(spec, _local_download)              # resumes, verifies, installs
    qtbot.waitUntil(lambda: not dialog.downloads.running(), timeout=300_000)
    assert "downloaded and verified" in dialog.message.text()
    assert target.read_bytes() == data


def test_load_emits_the_chosen_models(dialog, qtbot, tiny_models):
    clip_dir, sam_dir = tiny_models
    dialog.clip_edit.setText(str(clip_dir))
    dialog.sam_edit.setText(str(sam_dir))
    dialog.device.setCurrentText("cpu")
    with qtbot.waitSignal(dialog.models_chosen) as sig:
        qtbot.mouseClick(dialog.load_btn, Qt.MouseButton.LeftButton)
    assert sig.args == [str(clip_dir), str(sam_dir), "cpu", "auto"]


def test_selecting_an_installed_backbone_leaves_the_clip_and_sam_choice_alone(dialog, tmp_path):
    """A folder-map backbone row (kind "backbone") is listed and downloadable here, but it is not
    a SAM model: selecting it once installed filled the SAM field with its name."""
    models = tmp_path / "models"
    models.mkdir(exist_ok=True)
    spec = registry.get_spec("dinov2_vits14")
    with open(models / spec.file_name, "wb") as fh:      # sparse file of the registered size
        fh.truncate(spec.size_bytes)
    dialog.refresh()
    dialog.clip_edit.setText("ViT-B-16")
    dialog.sam_edit.setText("vit_b")
    row = next(r for r in range(dialog.table.rowCount())
               if dialog.table.item(r, 1).data(Qt.ItemDataRole.UserRole) == spec.name)
    assert dialog.table.item(row, 0).text() == "BACKBONE" and dialog.table.item(row, 3).text() == "installed"
    dialog.table.selectRow(row)
    assert dialog.selected_spec() is spec
    assert (dialog.clip_edit.text(), dialog.sam_edit.text()) == ("ViT-B-16", "vit_b")
