"""Several writers on one project (issue 14, item 1): ``zsas label`` running while a reviewer's
autosave (``Project.load`` -> status -> ``Project.save``, from another Project object as the app
has) lands on the same image. Before the fix label checked the status, then saved without a
lock, overwriting the review, and its mask cleanup deleted the reviewer's mask."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import numpy as np
import pytest
from synthetic import blob_image

from zsas_gui.cli import main
from zsas_gui.core.io.imageio import save_png
from zsas_gui.state import store as store_mod
from zsas_gui.state.project import Project, RecordConflictError


def _folder(tmp_path: Path, n: int = 3) -> Path:
    root = tmp_path / "proj"
    for i in range(n):
        save_png(root / f"{i:03d}.png", blob_image((48, 64), [(20 + 5 * i, 24)], radius=6, seed=i))
    return root


def _review(root: Path, rel: str, status: str = "good", mask: np.ndarray | None = None) -> None:
    """The app's autosave path, from its own Project object."""
    proj = Project.open(root)
    rec = proj.load(rel)
    rec.status = status
    if mask is not None:
        rec.mask = mask
        rec.provenance = {**rec.provenance, "mask_source": "edited"}
    proj.save(rec)


def _assert_whole(root: Path) -> Project:
    """Every record parses and every mask it names exists."""
    proj = Project.open(root, create=False)
    assert proj.problems == []
    for e in proj.images:
        proj.load(e.rel)
    assert proj.problems == []
    return proj


def _label(root: Path, models) -> int:
    clip, sam = models
    return main(["label", str(root), "--clip", str(clip), "--sam", str(sam), "--device", "cpu"])


def test_a_review_saved_between_labels_check_and_its_save_is_kept(tmp_path, tiny_models, monkeypatch):
    root = _folder(tmp_path)
    real_load = Project.load
    reviewed = []

    def load_then_review(self, rel):
        rec = real_load(self, rel)
        if rel == "001.png" and not reviewed:      # label has checked: unreviewed; now the person saves
            reviewed.append(rel)
            _review(root, rel, "good")
        return rec

    monkeypatch.setattr(Project, "load", load_then_review)
    assert _label(root, tiny_models) == 0
    monkeypatch.undo()
    proj = _assert_whole(root)
    assert reviewed == ["001.png"]
    assert proj.status("001.png") == "good"
    assert proj.status("000.png") == proj.status("002.png") == "unreviewed"
    assert proj.has_mask("000.png")


def test_a_review_saved_while_label_writes_that_image_keeps_the_review_and_its_mask(
        tmp_path, tiny_models, monkeypatch):
    """The reviewer's save starts while label is between writing its mask and its JSON. The hook
    waits until the reviewer has finished (no lock: before the fix) or is at the record's lock
    (an event decides, no clock; the timeout only guards against a hang)."""
    root = _folder(tmp_path)
    hw = (48, 64)
    person_mask = np.zeros(hw, bool)
    person_mask[5:15, 5:25] = True
    reviewer_state = threading.Event()
    real_write_mask, real_lock_fd = store_mod.Store.write_mask, store_mod._lock_fd
    threads: list[threading.Thread] = []

    def lock_fd(fd, shared):
        if threading.current_thread() in threads:
            reviewer_state.set()                  # about to wait for (or take) the lock
        real_lock_fd(fd, shared)

    def write_mask(self, rel, mask):
        name = real_write_mask(self, rel, mask)
        if rel == "001.png" and not threads:
            t = threading.Thread(target=lambda: (_review(root, rel, "edited", person_mask), reviewer_state.set()))
            threads.append(t)
            t.start()
            assert reviewer_state.wait(timeout=300), "the reviewer neither finished nor reached the lock"
        return name

    monkeypatch.setattr(store_mod, "_lock_fd", lock_fd)
    monkeypatch.setattr(store_mod.Store, "write_mask", write_mask)
    assert _label(root, tiny_models) == 0
    threads[0].join()
    monkeypatch.undo()
    proj = _assert_whole(root)
    rec = proj.load("001.png")
    assert rec.status == "edited" and np.array_equal(rec.mask, person_mask)
    assert len(proj.store.mask_files("001.png")) == 1


def test_compare_and_swap_refuses_a_stale_revision_and_writes_nothing(tmp_path):
    root = _folder(tmp_path, 1)
    proj = Project.open(root)
    rec = proj.load("000.png")
    assert rec.revision == 0
    rec.mask = np.ones((48, 64), bool)
    proj.save(rec, expect_revision=0)
    assert rec.revision == 1
    _review(root, "000.png", "good")              # revision 2, by another writer
    stale = proj.load("000.png")
    assert stale.revision == 2 and stale.status == "good"
    rec.status = "unreviewed"
    with pytest.raises(RecordConflictError, match="another writer"):
        proj.save(rec, expect_revision=1)
    assert Project.open(root).status("000.png") == "good"


def _hammer(root: str, rel_count: int, seed: int, n: int) -> None:
    """One writer process: random load -> change -> save, half of them compare-and-swap."""
    rng = np.random.default_rng(seed)
    proj = Project.open(root)
    for _ in range(n):
        rel = f"{int(rng.integers(rel_count)):03d}.png"
        rec = proj.load(rel)
        rec.status = str(rng.choice(["unreviewed", "edited", "good"]))
        mask = np.zeros((48, 64), bool)
        mask[int(rng.integers(40)):, int(rng.integers(60)):] = True
        rec.mask = mask
        try:
            proj.save(rec, expect_revision=rec.revision if rng.random() < 0.5 else None)
        except RecordConflictError:
            pass


@pytest.mark.slow
def test_three_writer_processes_leave_every_record_whole(tmp_path):
    root = _folder(tmp_path, 3)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_hammer, args=(str(root), 3, seed, 60)) for seed in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert [p.exitcode for p in procs] == [0, 0, 0]
    proj = _assert_whole(root)
    for e in proj.images:
        assert len(proj.store.mask_files(e.rel)) == 1      # no stray, none deleted under a record
        assert proj.load(e.rel).revision >= 1
