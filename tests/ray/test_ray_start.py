"""Starting a local Ray runtime on a loaded machine: Ray gives its raylet a fixed 30 s and raises
a bare Exception when it misses them; ``start_local`` tries again, then says what to do."""

from __future__ import annotations

import pytest

from zsas_gui.core.errors import ZsasError
from zsas_gui.scale import runtime


class _Ray:
    """Records init/shutdown calls; ``init`` fails the first ``failures`` times as Ray's node
    start-up timeout does."""

    def __init__(self, failures: int):
        self.failures, self.calls = failures, []

    def init(self, **kwargs):
        self.calls.append(("init", kwargs))
        if self.failures:
            self.failures -= 1
            raise Exception("The current node timed out during startup.")  # noqa: TRY002 (Ray raises this type)

    def shutdown(self):
        self.calls.append(("shutdown", {}))


def test_a_start_that_times_out_is_tried_again():
    ray = _Ray(failures=2)
    runtime.start_local(ray, num_cpus=2)
    assert [c for c, _ in ray.calls] == ["init", "shutdown", "init", "shutdown", "init"]
    assert ray.calls[-1][1] == {"num_cpus": 2, "_system_config": {"worker_niceness": 0}}


def test_a_runtime_that_never_starts_says_what_to_do():
    ray = _Ray(failures=runtime.LOCAL_START_ATTEMPTS)
    with pytest.raises(ZsasError, match="did not start after 3 tries.*timed out.*without --ray"):
        runtime.start_local(ray)
    assert [c for c, _ in ray.calls].count("init") == runtime.LOCAL_START_ATTEMPTS


def test_the_workers_of_a_local_runtime_run_at_the_drivers_priority(ray_runtime):
    """Ray renices its workers by +15 by default: beside two busy processes they got ~3 % of a
    core and the tests here ran past 10 minutes. The session runtime starts as ``--ray`` does."""
    import os

    @ray_runtime.remote(num_cpus=1)
    def niceness() -> int:
        return os.nice(0)

    assert ray_runtime.get(niceness.remote()) == os.nice(0)
