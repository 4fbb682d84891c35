"""Shared fixtures: tiny random-weight models written to disk and loaded like real ones."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def session_models_dir(tmp_path_factory):
    """$ZSAS_MODELS_DIR for the whole session: nothing a test writes (the decoder graphs exported
    for the tiny models, ...) lands in the user's model cache; CLI children and Ray workers
    inherit it and share those graphs. Tests that need an empty one set their own."""
    folder = tmp_path_factory.mktemp("models-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZSAS_MODELS_DIR", str(folder))
        yield folder


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
    from zsas_gui.core.engine.pipeline import Pipeline

    clip, sam = tiny_bundles
    return Pipeline(clip, sam)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip the test when this checkout has none beside it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA
