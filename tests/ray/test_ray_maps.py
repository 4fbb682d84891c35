"""Folder maps on Ray (``--map mutual|references --ray``): the actors make the map the local run
makes — mutual maps fitted per folder group inside one actor, references fitted by every actor —
and the outputs equal the local run's."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ray_helpers import make_images, tree_bytes

from zsas_gui.cli import main
from zsas_gui.scale.groups import folder_groups

pytest.importorskip("ray.data")


def test_groups_by_folder_in_runs_of_at_most_max_size():
    srcs = [f"/d/a/{i}.png" for i in range(7)] + ["/d/b/0.png", "s3://bucket/c/0.png", "/d/a/late.png"]
    groups = folder_groups(srcs, max_size=4)
    assert groups == [[0, 1, 2, 3], [4, 5, 6, 9], [7], [8]]
    assert folder_groups(srcs, max_size=4, min_size=3) == [[0, 1, 2, 3], [4, 5, 6, 9, 7, 8]]
    assert folder_groups([f"/x/{i}.png" for i in range(10)], max_size=4) == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    with pytest.raises(ValueError):
        folder_groups(srcs, max_size=2, min_size=3)


def _maps_and_records(out):
    files = {k: v for k, v in tree_bytes(out).items() if k.split("/")[0] in ("masks", "heatmaps")}
    records = {}
    for path in sorted((out / "records").rglob("*.json")):
        rec = json.loads(path.read_text())
        rec.pop("timings_ms")
        records[path.name] = rec
    return files, records


@pytest.mark.parametrize("kind", ["mutual", "references"])
def test_folder_map_on_ray_equals_local(tmp_path, ray_runtime, models_args, capsys, kind):
    folder, good = tmp_path / "in", tmp_path / "good"
    make_images(folder, 4)
    (folder / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    flags = ["--map", kind] + (["--references", str(good)] if kind == "references" else [])
    if kind == "references":
        make_images(good, 2, hw=(64, 80))
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    assert main(["segment", str(folder), "-o", str(local), *models_args, *flags]) == 3
    assert main(["segment", str(folder), "-o", str(on_ray), *models_args, *flags, "--ray", "--actors", "2"]) == 3
    out = capsys.readouterr()
    assert out.out.count("4/5 images segmented") == 2 and "zz_broken.png" in out.err
    files_local, records_local = _maps_and_records(local)
    files_ray, records_ray = _maps_and_records(on_ray)
    assert len(records_local) == 4 and files_local == files_ray
    assert records_local == records_ray
    source = next(iter(records_ray.values()))["anomaly_map"]
    assert json.dumps(source).count(kind) >= 1, source      # the records name the folder map


def test_label_mutual_on_ray_fits_on_the_whole_folder(tmp_path, ray_runtime, models_args, capsys):
    """The map of ``label --ray --map mutual`` is fitted on every usable image of the project
    (reviewed ones too), as the local command does, while only the unreviewed are labelled."""
    from zsas_gui.state.project import Project

    local, on_ray = tmp_path / "local", tmp_path / "ray"
    for folder in (local, on_ray):
        make_images(folder, 5)
        proj = Project.open(folder)
        rec = proj.load("img001.png")
        rec.status = "good"
        proj.save(rec)
    assert main(["label", str(local), *models_args, "--map", "mutual"]) == 0
    assert main(["label", str(on_ray), *models_args, "--map", "mutual", "--ray", "--actors", "1"]) == 0
    assert capsys.readouterr().out.count("4/4 images pre-labelled") == 2
    a, b = Project.open(local), Project.open(on_ray)
    for entry in a.images:
        ra, rb = a.load(entry.rel), b.load(entry.rel)
        assert ra.status == rb.status
        if entry.rel == "img001.png":
            assert ra.mask is None and rb.mask is None
            continue
        assert np.array_equal(ra.mask, rb.mask) and ra.image_score == rb.image_score
        assert ra.prompts.to_dict() == rb.prompts.to_dict()
