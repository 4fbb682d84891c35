"""The driver of a distributed job: Ray Data ``map_batches`` over the image list with a pool of
stateful actors (:mod:`.workers`), results streamed back to the driver as blocks finish.

Faults: an image that fails is an outcome (recorded, the job goes on); a killed actor is
restarted by Ray (``max_restarts=-1``) and the block it held is retried on another actor (up to
:data:`MAX_TASK_RETRIES` times, so an image that kills every actor cannot loop forever); a block
that still fails is dropped by Ray Data (``max_errored_blocks=-1``) and its images are recorded
as failed here. A ``fatal`` outcome (the output cannot be written) stops the job.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections.abc import Callable
from typing import Any

from ..core.errors import OutputError
from .runtime import ActorSpec

#: Times a block is re-submitted after its actor died (each time on a replacement actor).
MAX_TASK_RETRIES = 3
#: Blocks per actor at least (small blocks: a killed actor loses little; a progress bar that moves).
BLOCKS_PER_ACTOR = 4
#: Images per block at most (a block is the unit of retry and of progress).
MAX_BLOCK_ROWS = 16

#: (outcome, entry) -> None, called on the driver for each image as its block comes back.
OnResult = Callable[[str, dict[str, Any]], None]


def block_rows(n_images: int, max_actors: int) -> int:
    """Images per block: enough blocks to keep every actor busy, at most MAX_BLOCK_ROWS each."""
    return max(1, min(MAX_BLOCK_ROWS, n_images // (max_actors * BLOCKS_PER_ACTOR)))


def _rows(items: list[tuple[str, str]], groups: list[tuple[list[str], list[int]]] | None
          ) -> tuple[list[dict[str, Any]], int]:
    """The dataset rows and the rows per block: one row per image, or one per group (the group's
    fit images, indices, sources and names as JSON lists) and one group per block."""
    if groups is None:
        return [{"index": i, "src": src, "rel": rel} for i, (src, rel) in enumerate(items)], 0
    return [{"fit": json.dumps(fit), "index": json.dumps(members),
             "src": json.dumps([items[i][0] for i in members]),
             "rel": json.dumps([items[i][1] for i in members])} for fit, members in groups], 1


def run_job(items: list[tuple[str, str]], worker_cls: type, worker_kwargs: dict[str, Any],
            spec: ActorSpec, on_result: OnResult, verbose: bool = False,
            max_task_retries: int = MAX_TASK_RETRIES,
            groups: list[tuple[list[str], list[int]]] | None = None) -> list[tuple[str, dict]]:
    """Run ``worker_cls(**worker_kwargs)`` actors over ``items`` ((src, rel) per image) on the
    Ray runtime this process has joined. Returns (outcome, entry) per image, in ``items``
    order. Raises OutputError when a worker cannot write the output. ``groups`` (a folder map,
    :mod:`.groups`): (images to fit the map on, indices into ``items`` to segment) each, sent
    to the actors whole."""
    import ray.data

    if not verbose:      # "progress bars disabled" and the like: our own bar is on the driver
        logging.getLogger("ray.data").setLevel(logging.ERROR)
    ctx = ray.data.DataContext.get_current()
    saved = ctx.enable_progress_bars, ctx.max_errored_blocks
    ctx.enable_progress_bars, ctx.max_errored_blocks = verbose, -1
    data, rows = _rows(items, groups)
    rows = rows or block_rows(len(items), spec.max_size)
    blocks = math.ceil(len(data) / rows)
    ds = ray.data.from_items(data, override_num_blocks=blocks)
    # one block at a time per actor: a block queued behind a dying image would die with it and
    # spend its retries on a fault that is not its own (the fault test saw that happen)
    # no more actors than blocks: an actor without a block would load the models for nothing
    compute = ray.data.ActorPoolStrategy(min_size=min(spec.min_size, blocks), max_size=min(spec.max_size, blocks),
                                         max_tasks_in_flight_per_actor=1)
    with warnings.catch_warnings():
        # Ray Data >= 2.5x deprecates passing actor options this way but names no replacement
        # for max_task_retries; without it a block whose image kills its actor is retried forever
        warnings.filterwarnings("ignore", message=".*ray_remote_args. is deprecated")
        mapped = ds.map_batches(worker_cls, fn_constructor_kwargs=worker_kwargs, batch_size=rows,
                                compute=compute, num_cpus=spec.num_cpus, num_gpus=spec.num_gpus or None,
                                max_restarts=-1, max_task_retries=max_task_retries)
    results: dict[int, tuple[str, dict]] = {}
    try:
        for batch in mapped.iter_batches(batch_size=None, batch_format="numpy"):
            for index, outcome, entry_json in zip(batch["index"], batch["outcome"], batch["entry"]):
                entry = json.loads(str(entry_json))
                if outcome == "fatal":
                    raise OutputError(entry["error"])
                results[int(index)] = (str(outcome), entry)
                on_result(str(outcome), entry)
    finally:
        ctx.enable_progress_bars, ctx.max_errored_blocks = saved
    for index, (src, rel) in enumerate(items):
        if index not in results:     # its block failed MAX_TASK_RETRIES times: dropped by Ray Data
            entry = {"image": src, "rel": rel, "ok": False,
                     "error": f"lost: the workers died {max_task_retries + 1} times on the block "
                              f"holding this image (see the Ray logs; re-run to retry it)"}
            results[index] = ("failed", entry)
            on_result("failed", entry)
    return [results[i] for i in range(len(items))]
