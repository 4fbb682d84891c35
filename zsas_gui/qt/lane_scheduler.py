"""The lane's scheduler: queues of typed jobs (lane_jobs.py), one worker thread, and the rules
for which job runs next and which one stops.

- **Order.** The next job comes from the first non-empty queue of :data:`QUEUES`; the
  background queues (prefetch, precompute) wait while no pipeline is installed.
- **Supersede.** At most one interactive :class:`~.lane_jobs.Request` waits: a newer one replaces
  it (the replaced one never runs), and one asking exactly what is already running or waiting
  is dropped.
- **Cancel.** A running job stops at its next checkpoint when a request arrives that it
  ``yields_to``, on :meth:`cancel_interactive`, on :meth:`drop` of its queue, and on
  :meth:`stop`. Each job is told how it ended: ``run`` returns, ``on_cancel`` or ``on_error``.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..core.errors import ZsasError
from .lane_context import Cancelled
from .threads import FunctionThread, lower_priority

if TYPE_CHECKING:
    from .lane_context import LaneContext
    from .lane_jobs import LaneJob, Request

log = logging.getLogger(__name__)

#: The queues, most urgent first; the last three run only once models are loaded. ``folder``:
#: the folder map's pass (folder_map_job.py), before work ahead that would use the old map.
QUEUES = ("control", "interactive", "folder", "prefetch", "precompute")
BACKGROUND = ("folder", "prefetch", "precompute")


class Scheduler:
    """Queues and the worker thread (see the module docstring). Every method but the worker's
    is called from the GUI thread and returns at once."""

    def __init__(self, has_pipeline: Callable[[], bool], on_idle: Callable[[], None]):
        self._has_pipeline, self._on_idle = has_pipeline, on_idle
        self._cond = threading.Condition()
        self._queues: dict[str, deque[LaneJob]] = {q: deque() for q in QUEUES}
        self._running: LaneJob | None = None
        self._cancel = threading.Event()
        self._stop = False
        self._thread: FunctionThread | None = None

    # -- GUI thread ------------------------------------------------------------------------------
    def start(self, ctx: LaneContext, nice: int) -> None:
        self._thread = FunctionThread(lambda: self._work(ctx, nice), "zsas-inference-lane")
        self._thread.start()

    def push(self, job: LaneJob) -> None:
        """Queue ``job`` at the back of its queue."""
        with self._cond:
            self._queues[job.queue].append(job)
            self._cond.notify()

    def push_front(self, job: LaneJob) -> None:
        """Queue ``job`` at the head of its queue (unless the lane is stopping)."""
        with self._cond:
            if not self._stop:
                self._queues[job.queue].appendleft(job)
                self._cond.notify()

    def submit(self, request: Request) -> None:
        """Supersede the waiting request with ``request`` and stop running work that yields to it."""
        with self._cond:
            waiting = self._queues["interactive"]
            if request.same_work(self._running) or (waiting and request.same_work(waiting[0])):
                return                      # that exact computation is already under way
            waiting.clear()
            waiting.append(request)
            if self._running is not None and self._running.yields_to(request):
                self._cancel.set()
            self._cond.notify()

    def replace(self, queue: str, jobs: list[LaneJob]) -> None:
        """Replace what waits in ``queue`` (the running job goes on)."""
        with self._cond:
            self._queues[queue] = deque(jobs)
            self._cond.notify()

    def drop(self, queue: str) -> list[LaneJob]:
        """Empty ``queue`` and stop its running job; returns the jobs dropped."""
        with self._cond:
            dropped = list(self._queues[queue])
            self._queues[queue].clear()
            if self._running is not None and self._running.queue == queue:
                self._cancel.set()
            return dropped

    def cancel_interactive(self) -> Request | None:
        """Drop the waiting request and stop the running one; returns the one dropped."""
        dropped = self.drop("interactive")
        return dropped[0] if dropped else None

    @property
    def running(self) -> LaneJob | None:
        with self._cond:
            return self._running

    def busy(self) -> bool:
        """Interactive or control work running or waiting."""
        with self._cond:
            return self._running is not None or any(self._queues[q] for q in ("control", "interactive"))

    def has_work(self) -> bool:
        """Anything running or waiting that the worker will run."""
        with self._cond:
            return self._running is not None or self._queued()

    def stop(self, timeout_ms: int | None = None) -> bool:
        """Drop every waiting job but the control ones, stop the running one at its checkpoint and
        join the worker (``timeout_ms`` None: however long the step in progress takes)."""
        with self._cond:
            self._stop = True
            for q in ("interactive", *BACKGROUND):
                self._queues[q].clear()
            self._cancel.set()
            self._cond.notify()
        if self._thread is None:
            return True
        return self._thread.wait() if timeout_ms is None else self._thread.wait(timeout_ms)

    # -- worker thread ---------------------------------------------------------------------------
    def checkpoint(self) -> None:
        if self._cancel.is_set():
            raise Cancelled

    def _queued(self) -> bool:
        """A job is waiting for the worker (call with ``_cond`` held)."""
        ready = self._has_pipeline()
        return any(self._queues[q] and (ready or q not in BACKGROUND) for q in QUEUES)

    def _next(self) -> LaneJob | None:
        with self._cond:
            announced = False
            while not self._stop and not self._queued():
                self._running = None
                if not announced:
                    announced = True
                    self._on_idle()
                self._cond.wait()
            if self._stop:
                self._running = None
                return None
            ready = self._has_pipeline()
            queue = next(q for q in QUEUES if self._queues[q] and (ready or q not in BACKGROUND))
            self._running = self._queues[queue].popleft()
            self._cancel = threading.Event()
            return self._running

    def _work(self, ctx: LaneContext, nice: int) -> None:
        lower_priority(nice)
        while (job := self._next()) is not None:
            try:
                job.run(ctx)
            except Cancelled:
                ctx.counters["cancelled"] += 1
                self._tell(job.on_cancel, ctx)
            except Exception as exc:  # noqa: BLE001 - every error becomes the job's signal
                ctx.counters["failed"] += 1
                if not isinstance(exc, ZsasError):
                    log.error("lane job failed:\n%s", traceback.format_exc())
                message = str(exc) if isinstance(exc, ZsasError) else f"{type(exc).__name__}: {exc}"
                self._tell(job.on_error, ctx, exc, message)

    @staticmethod
    def _tell(hook: Callable[..., None], *args: object) -> None:
        """Call a job's ``on_cancel`` / ``on_error``; a failure there is logged, the worker goes on."""
        try:
            hook(*args)
        except Exception:  # noqa: BLE001 - one job's bad hook must not stop the lane
            log.error("lane job hook failed:\n%s", traceback.format_exc())
