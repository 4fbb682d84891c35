"""What :meth:`Pipeline.iter_run <zsas_gui.core.engine.pipeline.Pipeline.iter_run>` yields while
it works, and :func:`drive`, the one loop that runs such a generator.

One image goes file -> features -> map -> points -> cascade -> mask; ``iter_run`` yields one
event per step, in this order (steps served from the caches yield no :class:`Encoding`):

- :class:`Encoding` ``("clip" | "sam")`` just before an encoder runs (a cancellation point);
- :class:`FeaturesReady` once the anomaly map and SAM embedding are there;
- :class:`PointsReady` once PPG chose the prompts (or the caller's replaced them);
- :class:`StageDone` after each cascade stage (3 per component).

Every yield is a checkpoint: a driver that stops iterating abandons the run there.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from ..method.ppg import PPGResult
    from ..types import Prompts, StageResult
    from .features import ImageFeatures


@dataclass(frozen=True)
class Encoding:
    """An encoder is about to run: ``step`` is ``"clip"`` or ``"sam"``."""

    step: str


@dataclass(frozen=True, eq=False)
class FeaturesReady:
    """The image's anomaly map and SAM embedding (from the caches or just computed)."""

    features: ImageFeatures


@dataclass(frozen=True, eq=False)
class PointsReady:
    """The prompts the cascade will use (``gated``: the image score is below the gate, so no
    cascade runs); ``ppg``: PPG's intermediates, None when the caller's points replaced PPG's
    and PPG did not run (or could not run for display, see ``Pipeline.iter_run``)."""

    prompts: Prompts
    gated: bool
    ppg: PPGResult | None


@dataclass(frozen=True, eq=False)
class StageDone:
    """One cascade stage finished (``stage.index`` 1..3, ``stage.component``)."""

    stage: StageResult


RunEvent = Encoding | FeaturesReady | PointsReady | StageDone

T = TypeVar("T")


def drive(gen: Generator[RunEvent, None, T], on_event: Callable[[RunEvent], None] | None = None,
          checkpoint: Callable[[], None] | None = None) -> T:
    """Run ``gen`` to its end and return its value: ``checkpoint()`` before each step (it raises
    to stop the run there), ``on_event(event)`` for each event."""
    while True:
        if checkpoint is not None:
            checkpoint()
        try:
            event = next(gen)
        except StopIteration as stop:
            return stop.value
        if on_event is not None:
            on_event(event)
