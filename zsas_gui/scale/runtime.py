"""Ray itself: the install hint, joining or starting a runtime, the actor pool's size and
resources. Ray is imported here only inside functions."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from ..core.errors import ZsasError

INSTALL_HINT = 'pip install "zsas-gui[ray]" (Ray Data; the same version on the driver and the workers)'
#: ``--ray`` without an address: start a Ray runtime on this machine for the duration of the command.
LOCAL = "local"


def require_ray():
    """The ``ray`` module with Ray Data, or a ZsasError saying how to install it."""
    try:
        import ray
        import ray.data  # the extra installs both; a bare `ray` lacks Data
    except ImportError as exc:
        raise ZsasError(f"--ray needs Ray Data, which is not installed ({exc.name} missing): "
                        f"{INSTALL_HINT}") from exc
    return ray


@dataclass(frozen=True)
class ActorSpec:
    """How many actors: ``size`` fixed, or autoscaling between ``min_size`` and ``max_size``;
    each reserves ``num_gpus`` GPUs or ``num_cpus`` CPUs."""

    min_size: int
    max_size: int
    num_cpus: float = 1.0
    num_gpus: float = 0.0

    @property
    def fixed(self) -> bool:
        return self.min_size == self.max_size


def parse_actors(text: str | None) -> tuple[int, int] | None:
    """``"N"`` -> (N, N); ``"MIN,MAX"`` -> (MIN, MAX); None -> None (size from the cluster)."""
    if text is None:
        return None
    try:
        parts = [int(p) for p in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or not 1 <= parts[0] <= parts[1]:
        raise ZsasError(f"--actors {text!r}: give a count N or MIN,MAX with 1 <= MIN <= MAX")
    return parts[0], parts[1]


def actor_spec(ray, actors: str | None, device: str, cpus_per_actor: float) -> ActorSpec:
    """One GPU per actor where the cluster has GPUs (and ``device`` is not the CPU), else
    ``cpus_per_actor`` CPUs; without ``--actors``, as many actors as the cluster holds now."""
    res = ray.cluster_resources()
    gpus = int(res.get("GPU", 0)) if device != "cpu" else 0
    sizes = parse_actors(actors)
    if sizes is None:
        count = gpus or max(1, int(res.get("CPU", 1) // cpus_per_actor))
        sizes = (count, count)
    if gpus:
        return ActorSpec(*sizes, num_cpus=1.0, num_gpus=1.0)
    return ActorSpec(*sizes, num_cpus=cpus_per_actor)


#: Tries to start a local runtime: Ray gives its raylet a fixed 30 s to register, which a
#: loaded machine can miss (seen with both cores busy); a second try usually starts.
LOCAL_START_ATTEMPTS = 3


#: Ray's settings for a runtime started here: its workers run at the driver's priority. Ray
#: renices every worker by +15 by default; the workers are the command's whole work, and beside
#: any other busy process (two ``yes``, a second session) they got ~3 % of a core.
LOCAL_SYSTEM_CONFIG = {"worker_niceness": 0}


def start_local(ray, **kwargs) -> None:
    """``ray.init(**kwargs)`` on this machine with :data:`LOCAL_SYSTEM_CONFIG`, tried
    :data:`LOCAL_START_ATTEMPTS` times (Ray raises a bare Exception when its node times out
    during start-up); a ZsasError after that."""
    kwargs["_system_config"] = {**LOCAL_SYSTEM_CONFIG, **kwargs.get("_system_config", {})}
    for attempt in range(1, LOCAL_START_ATTEMPTS + 1):
        try:
            ray.init(**kwargs)
            return
        except Exception as exc:  # Ray's start-up timeout is a bare Exception
            ray.shutdown()        # whatever half of the runtime did start
            if attempt == LOCAL_START_ATTEMPTS:
                raise ZsasError(f"--ray: the local Ray runtime did not start after {attempt} tries "
                                f"({exc}); the machine may be overloaded: retry, or run without "
                                f"--ray") from exc
            logging.getLogger(__name__).warning("Ray runtime start failed (%s); trying again", exc)


@contextlib.contextmanager
def connected(address: str, verbose: bool = False):
    """Join the cluster at ``address`` (``auto``, ``ray://host:10001``, ``host:6379``) or, for
    :data:`LOCAL`, start a runtime on this machine (shut down on exit). Reuses a runtime this
    process already joined (tests, notebooks) and leaves it running."""
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    kwargs = {"logging_level": logging.INFO if verbose else logging.WARNING, "log_to_driver": verbose,
              "include_dashboard": False}
    if address == LOCAL:
        start_local(ray, **kwargs)
    else:
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ZsasError(f"--ray {address}: cannot join the Ray cluster ({exc}); start one with "
                            f"`ray start --head` or give its address (see docs/scale.md)") from exc
    try:
        yield ray
    finally:
        ray.shutdown()
