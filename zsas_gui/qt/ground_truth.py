"""Ground truth in the app: the outline of the current image's ground-truth mask (a canvas
layer, yellow dashes over a dark halo) and the IoU of the current mask against it (status bar).

The masks are found with :mod:`zsas_gui.core.io.label_import`'s rules, one image at a time when it
is opened (never all at open): an MVTec AD layout (``test/<class>/NNN.png`` with
``ground_truth/<class>/NNN_mask.png``, the folder opened being the category root or its
``test/``), or ``<stem>_mask.png`` beside the image. In an MVTec layout, ``test/good/`` images
have an empty ground truth. The IoU is recomputed on every change of the document's mask
(refinement result, paint stroke, undo).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path, PurePosixPath

import numpy as np
from PySide6.QtCore import QObject
from PySide6.QtWidgets import QLabel

from ..core.errors import ZsasError
from ..core.io.label_import import GROUND_TRUTH_DIR, MASK_SUFFIX, mask_candidates
from ..core.metrics import iou

#: Ground-truth masks kept in memory (the most recently opened images).
CACHE_SIZE = 16


class GroundTruthFinder:
    """Where the ground-truth mask of an image of the opened folder ``root`` is (or None)."""

    def __init__(self, root: str | Path):
        root = Path(root)
        if not (root / GROUND_TRUTH_DIR).is_dir() and root.name == "test" \
                and (root.parent / GROUND_TRUTH_DIR).is_dir():
            self.masks_root, self.prefix = root.parent, "test/"     # the category's test/ opened
        else:
            self.masks_root, self.prefix = root, ""
        self.mvtec = (self.masks_root / GROUND_TRUTH_DIR).is_dir()

    def path_for(self, rel: str) -> Path | None:
        """The mask file of image ``rel`` (posix, relative to the opened folder), or None."""
        full = self.prefix + rel
        if full.split("/", 1)[0] == GROUND_TRUTH_DIR or PurePosixPath(rel).stem.endswith(MASK_SUFFIX):
            return None                                  # a mask file itself, not an image
        for cand in mask_candidates(full, self.masks_root, self.mvtec, separate=False):
            if cand.is_file():
                return cand
        return None

    def known_normal(self, rel: str) -> bool:
        """MVTec ``test/good/`` images: ground truth is an empty mask."""
        return self.mvtec and (self.prefix + rel).startswith("test/good/")


class GroundTruthView(QObject):
    """Keeps the canvas's "gt" layer and the IoU label in step with the current document."""

    def __init__(self, window):
        super().__init__(window)
        self.controller, self.canvas = window.controller, window.canvas
        self.label = QLabel("")
        self.label.setObjectName("gt_iou")
        self.label.setVisible(False)
        window.statusBar().addPermanentWidget(self.label)
        self._project = None
        self.finder: GroundTruthFinder | None = None
        self._cache: OrderedDict[str, tuple[np.ndarray | None, str]] = OrderedDict()
        self._outlined: tuple | None = None        # (rel, gt array) on the canvas
        self._measured: tuple | None = None        # (gt, mask) the label was computed for
        self.value: float | None = None            # the IoU shown (None: no ground truth / no mask)
        self.gt: np.ndarray | None = None          # (H, W) bool ground truth of the current image
        self.controller.document_shown.connect(self.refresh)

    def mask_for(self, rel: str, hw: tuple[int, int]) -> tuple[np.ndarray | None, str]:
        """(ground truth (H, W) bool or None, a note: its file, or why there is none)."""
        if rel in self._cache:
            self._cache.move_to_end(rel)
            return self._cache[rel]
        from ..core.io.imageio import load_mask

        gt, note = None, ""
        path = self.finder.path_for(rel)
        if path is not None:
            try:
                gt = load_mask(path)
                note = str(path)
                if gt.shape != tuple(hw):
                    gt, note = None, (f"{path}: ground truth is {gt.shape[1]}x{gt.shape[0]}, the image "
                                      f"{hw[1]}x{hw[0]}")
            except ZsasError as exc:
                gt, note = None, str(exc)
        elif self.finder.known_normal(rel):
            gt, note = np.zeros(hw, bool), "test/good: a normal image (empty ground truth)"
        self._cache[rel] = (gt, note)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return gt, note

    def refresh(self) -> None:
        c = self.controller
        if c.project is not self._project:
            self._project = c.project
            self.finder = None if c.project is None else GroundTruthFinder(c.project.root)
            self._cache.clear()
        doc = c.doc
        gt, note = (None, "") if doc is None or self.finder is None else self.mask_for(doc.image_id, doc.hw)
        self.gt = gt
        key = (None if doc is None else doc.image_id, gt)
        if self._outlined is None or self._outlined[0] != key[0] or self._outlined[1] is not gt:
            self._outlined = key
            self.canvas.set_ground_truth(gt)
        if gt is None:
            self.value, self._measured = None, None
            self.label.setText(f"ground truth: {note}" if note else "")
            self.label.setVisible(bool(note))
            return
        mask = doc.mask
        if self._measured is not None and self._measured[0] is gt and self._measured[1] is mask:
            return                          # masks are never mutated in place
        self._measured = (gt, mask)
        self.value = None if mask is None else iou(mask, gt)
        self.label.setText("IoU vs ground truth: " + ("no mask yet" if self.value is None else f"{self.value:.3f}"))
        self.label.setToolTip(note)
        self.label.setVisible(True)


def install(window) -> GroundTruthView:
    window.actions["toggle_gt"].setChecked(True)
    return GroundTruthView(window)
