import os
import stat

import pytest

from zsas_gui.core.errors import OutputError
from zsas_gui.core.io.atomic import atomic_write_bytes, atomic_write_json


def test_new_files_get_normal_permissions_and_replacements_keep_theirs(tmp_path):
    from zsas_gui.core.io import atomic

    p = atomic_write_bytes(tmp_path / "a" / "x.bin", b"1")
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~atomic._UMASK
    os.chmod(p, 0o640)
    atomic_write_bytes(p, b"2")
    assert stat.S_IMODE(p.stat().st_mode) == 0o640 and p.read_bytes() == b"2"


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    p = atomic_write_json(tmp_path / "r.json", {"v": 1})

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OutputError, match="r.json.*No space left"):
        atomic_write_json(p, {"v": 2})
    assert p.read_text().strip().endswith("}") and '"v": 1' in p.read_text()
    assert [f.name for f in tmp_path.iterdir()] == ["r.json"]
