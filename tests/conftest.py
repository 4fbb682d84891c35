"""Shared fixtures: tiny random-weight models written to disk and loaded like real ones."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> tuple[Path, Path]:
    """(tiny-clip folder, tiny-sam folder), written once per test session."""
    from zsas_gui.core.models.testmodels import make_test_models

    return make_test_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def tiny_bundles(tiny_models):
    """(ClipBundle, SamBundle) loaded from the tiny checkpoint files on the CPU."""
    from zsas_gui.core.models.loading import load_clip, load_sam

    clip_dir, sam_dir = tiny_models
    return load_clip(str(clip_dir), device="cpu"), load_sam(str(sam_dir), device="cpu")


@pytest.fixture
def tiny_pipeline(tiny_bundles):
    """A fresh Pipeline (empty caches) over the session's tiny models."""
    from zsas_gui.core.pipeline import Pipeline

    clip, sam = tiny_bundles
    return Pipeline(clip, sam)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip the test when this checkout has none beside it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


def blob_image(hw=(96, 128), centers=((30, 40),), radius=8, seed=0) -> np.ndarray:
    """(H, W, 3) uint8 grey noise with bright discs at (x, y) centers."""
    rng = np.random.default_rng(seed)
    img = rng.integers(90, 110, size=(*hw, 3), dtype=np.uint8)
    yy, xx = np.mgrid[: hw[0], : hw[1]]
    for cx, cy in centers:
        img[(xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2] = 240
    return img
