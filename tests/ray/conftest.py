"""The Ray runtime of the test session: ``ray.init(num_cpus=2)`` once, shut down at the end.

Tests here are marked ``ray`` and skip cleanly when ray[data] is not installed. Commands run
in-process join this runtime (``--ray`` reuses a runtime the process has joined); subprocess
drivers join it by address (:func:`ray_address`).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ray_helpers import REPO

#: pytest's per-test hang guard here (pyproject's is 600 s, a wall-clock limit): a test starts
#: Ray actors that each load the models; with both cores busy (two `yes`) and another session's
#: Ray runtime beside it these tests took 163-241 s each before D42/D43, and a run with one more
#: runtime failed 2 of 5 after 21 minutes, the timing of two 600 s guards. Ray Data itself gives
#: up after 30 minutes without progress.
HANG_GUARD_S = 1800


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.ray)
            item.add_marker(pytest.mark.timeout(HANG_GUARD_S))


@pytest.fixture(scope="session")
def ray_runtime():
    """The ``ray`` module, joined to a 2-CPU local runtime started for this session."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    import logging

    # workers are spawned by the runtime with this environment: they import this checkout
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    from zsas_gui.scale.runtime import start_local

    # tried up to 3 times: Ray's raylet has a fixed 30 s to register, missed on a loaded machine
    start_local(ray, num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def ray_address(ray_runtime) -> str:
    """The GCS address of the session runtime, for ``--ray ADDRESS`` in subprocess drivers."""
    return ray_runtime.get_runtime_context().gcs_address


@pytest.fixture
def models_args(tiny_models) -> list[str]:
    clip, sam = tiny_models
    return ["--clip", str(clip), "--sam", str(sam), "--device", "cpu"]
