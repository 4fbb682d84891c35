"""Small synthetic projects for tests and demos (no models, no real data).

    truth = make_synthetic_folder(tmp_path / "parts")     # writes images, returns rel -> mask
    proj = Project.open(tmp_path / "parts")
    annotate(proj, truth)                                   # stores the masks as accepted/good
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.io.imageio import save_png
from .project import Project

#: Image (H, W) of the synthetic images: small, not square (catches x/y swaps).
DEMO_HW = (48, 64)


def _defect_mask(kind: str, index: int, hw: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: a blob, a ring with a hole, or two separate spots, shifted by ``index``."""
    import cv2

    h, w = hw
    m = np.zeros(hw, np.uint8)
    cx, cy = 16 + 7 * index, 14 + 3 * index
    if kind == "ring":
        cv2.circle(m, (cx, cy), 10, 1, -1)
        cv2.circle(m, (cx, cy), 4, 0, -1)        # a hole: polygons cannot keep it
    elif kind == "spots":
        cv2.rectangle(m, (cx - 6, cy - 4), (cx + 2, cy + 3), 1, -1)
        cv2.circle(m, (min(cx + 20, w - 6), min(cy + 18, h - 6)), 4, 1, -1)
        m[h - 1, w - 1] = 1                      # a one-pixel component in the corner
    else:
        cv2.ellipse(m, (cx, cy), (9, 5), 30, 0, 360, 1, -1)
    return m.astype(bool)


def make_synthetic_folder(root: str | Path, classes: tuple[str, ...] = ("scratch", "hole"),
                          n_per_class: int = 2, n_good: int = 3, hw: tuple[int, int] = DEMO_HW,
                          seed: int = 0) -> dict[str, np.ndarray | None]:
    """Write ``root/test/<class>/NNN.png`` defect images and ``root/train/good/NNN.png`` normal
    ones (grey texture, defects darker). Returns rel -> (H, W) bool truth mask (None: normal).
    The first class gets ring-shaped defects (with holes), the second separate spots."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    kinds = ("ring", "spots", "blob")
    truth: dict[str, np.ndarray | None] = {}
    for ci, cls in enumerate(classes):
        for i in range(n_per_class):
            mask = _defect_mask(kinds[min(ci, 2)], i, hw)
            img = rng.integers(120, 160, (*hw, 3), dtype=np.uint8)
            img[mask] //= 3
            rel = f"test/{cls}/{i:03d}.png"
            save_png(root / rel, img)
            truth[rel] = mask
    for i in range(n_good):
        rel = f"train/good/{i:03d}.png"
        save_png(root / rel, rng.integers(120, 160, (*hw, 3), dtype=np.uint8))
        truth[rel] = None
    return truth


def annotate(proj: Project, truth: dict[str, np.ndarray | None], defect_status: str = "accepted",
             mask_source: str = "edited") -> None:
    """Save ``truth`` into ``proj``: masks with ``defect_status``, None as status ``good``."""
    for rel, mask in truth.items():
        rec = proj.load(rel)
        rec.mask = mask
        rec.status = "good" if mask is None else defect_status
        rec.provenance = {"mask_source": mask_source} if mask is not None else {}
        proj.save(rec)
