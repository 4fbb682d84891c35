"""``zsas label --ray``: several processes write one project store; no record is lost and a
reviewed image is never touched."""

from __future__ import annotations

import numpy as np
import pytest
from ray_helpers import make_images, zsas_process

from zsas_gui.cli import main
from zsas_gui.state.project import Project

pytest.importorskip("ray.data")


def _review_one(folder):
    """Accept a hand-drawn mask on img002 before any pre-label; returns its record's bytes."""
    proj = Project.open(folder)
    rec = proj.load("img002.png")
    rec.mask = np.zeros((64, 80), bool)
    rec.mask[5:9, 5:20] = True
    rec.status = "accepted"
    proj.save(rec)
    return proj.store.record_path("img002.png").read_bytes()


def test_label_ray_twice_at_once_loses_no_record(tmp_path, ray_address, models_args):
    folder = tmp_path / "project"
    make_images(folder, 8)
    reviewed = _review_one(folder)
    procs = [zsas_process(["label", str(folder), *models_args, f"--ray={ray_address}", "--actors", "1"])
             for _ in range(2)]
    outputs = [p.communicate() for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
        assert "7/7 images pre-labelled" in out and "(1 reviewed images kept)" in out
    proj = Project.open(folder)
    assert not proj.problems
    assert proj.store.record_path("img002.png").read_bytes() == reviewed
    for entry in proj.images:
        rec = proj.load(entry.rel)
        if entry.rel == "img002.png":
            assert rec.status == "accepted"
            continue
        assert rec.status == "unreviewed" and rec.mask is not None, entry.rel
        assert rec.provenance["mask_source"] == "auto"
        assert len(proj.store.mask_files(entry.rel)) == 1      # no stray mask from the other writer


def test_label_ray_equals_local(tmp_path, ray_runtime, models_args, capsys):
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    for folder in (local, on_ray):
        make_images(folder, 4)
        (folder / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert main(["label", str(local), *models_args]) == 3
    assert main(["label", str(on_ray), *models_args, "--ray", "--actors", "2"]) == 3
    out = capsys.readouterr()
    assert "zz_broken.png" in out.err and out.out.count("4/5 images pre-labelled") == 2
    a, b = Project.open(local), Project.open(on_ray)
    for entry in a.images[:4]:
        ra, rb = a.load(entry.rel), b.load(entry.rel)
        assert np.array_equal(ra.mask, rb.mask) and ra.prompts.to_dict() == rb.prompts.to_dict()
        assert ra.image_score == rb.image_score and ra.status == rb.status == "unreviewed"
