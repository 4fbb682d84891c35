"""``zsas segment --ray`` on the session's local Ray runtime: the local command's files, byte
for byte; bad files recorded; killed actors replaced; a killed driver's job resumed."""

from __future__ import annotations

import json
import signal
import time

import pytest
from ray_helpers import make_images, tree_bytes, zsas_process

from zsas_gui.cli import main

pytest.importorskip("ray.data")


def _records_without_timings(out):
    recs = {}
    for path in sorted((out / "records").rglob("*.json")):
        rec = json.loads(path.read_text())
        rec.pop("timings_ms")
        recs[path.relative_to(out).as_posix()] = rec
    return recs


@pytest.mark.slow
def test_ray_equals_local_on_magnetic_tile(shared_data, tmp_path, ray_runtime, models_args, capsys):
    src = shared_data / "magnetic_tile" / "test"
    if not src.is_dir():
        pytest.skip(f"{src} not present")
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    assert main(["segment", str(src), "-o", str(local), *models_args]) == 0
    assert main(["segment", str(src), "-o", str(on_ray), *models_args, "--ray", "--actors", "2"]) == 0
    assert "50/50 images segmented" in capsys.readouterr().out
    a, b = tree_bytes(local), tree_bytes(on_ray)
    images = [k for k in a if k.startswith("masks/")]
    assert len(images) == 50
    for kind in ("masks/", "heatmaps/", "overlays/"):
        assert {k: v for k, v in a.items() if k.startswith(kind)} == \
               {k: v for k, v in b.items() if k.startswith(kind)}, kind
    assert _records_without_timings(local) == _records_without_timings(on_ray)
    sa, sb = (json.loads((o / "summary.json").read_text()) for o in (local, on_ray))
    assert sa["models"] == sb["models"] and sa["params"] == sb["params"]
    assert [e["rel"] for e in sa["entries"]] == [e["rel"] for e in sb["entries"]]
    assert [e["mask_area"] for e in sa["entries"]] == [e["mask_area"] for e in sb["entries"]]


def test_bad_file_is_recorded_the_job_finishes_and_other_parameters_never_overwrite(tmp_path, ray_runtime, models_args, capsys):
    folder = tmp_path / "in"
    make_images(folder, 3)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    out = tmp_path / "out"
    assert main(["segment", str(folder), "-o", str(out), *models_args, "--save-scores",
                 "--ray", "--actors", "2"]) == 3
    captured = capsys.readouterr()
    assert "broken.png" in captured.err and "3/4 images segmented" in captured.out
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["images"], summary["succeeded"], summary["failed"]) == (4, 3, 1)
    bad = [e for e in summary["entries"] if not e["ok"]]
    assert bad[0]["rel"] == "broken" and "broken.png: corrupt" in bad[0]["error"]
    for i in range(3):
        for part in (f"masks/img{i:03d}.png", f"records/img{i:03d}.json", f"scores/img{i:03d}.npy"):
            assert (out / part).is_file(), part
    assert not (out / "masks" / "broken.png").exists()

    # the same -o with other parameters: refused, nothing overwritten
    before = tree_bytes(out)
    assert main(["segment", str(folder), "-o", str(out), *models_args, "--save-scores", "--tau", "0.3",
                 "--ray", "--actors", "1"]) == 1
    assert "other parameters" in capsys.readouterr().err
    assert tree_bytes(out) == before


def test_driver_killed_then_rerun_computes_only_the_missing(tmp_path, ray_runtime, ray_address,
                                                           models_args, capsys):
    folder, out = tmp_path / "in", tmp_path / "out"
    make_images(folder, 30)       # enough that the job is far from done when the driver dies
    cpus = ray_runtime.cluster_resources()["CPU"]
    proc = zsas_process(["segment", str(folder), "-o", str(out), *models_args,
                         f"--ray={ray_address}", "--actors", "1"])
    try:
        while len(list((out / "records").glob("*.json"))) < 2:     # the job is under way
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    while ray_runtime.available_resources().get("CPU", 0) < cpus:   # its actor has gone too
        time.sleep(0.1)
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in (out / "records").glob("*.json")}
    assert 2 <= len(before) < 30, "the driver was killed after its job had finished"
    masks_before = {p.name: p.stat().st_mtime_ns for p in (out / "masks").glob("*.png")}

    assert main(["segment", str(folder), "-o", str(out), *models_args, "--ray", "--actors", "2"]) == 0
    assert f"({len(before)} finished by an earlier run, kept)" in capsys.readouterr().out
    for name, (mtime, data) in before.items():       # never recomputed, never overwritten
        path = out / "records" / name
        assert (path.stat().st_mtime_ns, path.read_bytes()) == (mtime, data)
    for name in before:
        mask = name.replace(".json", ".png")
        assert (out / "masks" / mask).stat().st_mtime_ns == masks_before[mask]
    summary = json.loads((out / "summary.json").read_text())
    resumed = [e["rel"] for e in summary["entries"] if e.get("resumed")]
    assert sorted(f"{r}.json" for r in resumed) == sorted(before)
    assert summary["succeeded"] == 30 and len(list((out / "masks").glob("*.png"))) == 30

