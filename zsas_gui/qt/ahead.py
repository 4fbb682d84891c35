"""Work done ahead of the user, so that moving to a precomputed image needs no lane work.

When the lane precomputes a folder or prefetches the next images, besides the features it keeps

- the **decoded pixels** of the last few images it read (a small LRU keyed by file path and
  :func:`~zsas_gui.qt.lane_jobs.image_key_for`, so a changed file is read again), so the GUI thread
  does not decode a PNG when the user moves there;
- the image's **automatic result** (PPG points and the cascade's mask) for the parameters and
  text prompts that image's document will have, in a size-bounded LRU keyed by (image key,
  parameters, text prompts) and tied to the pipeline that computed it (a weak reference: a
  result of other models is never returned). It is exactly what the lane computes for a
  ``"refine"`` request with automatic points (same features, same ``propose`` and
  ``iter_refine``), so the controller applies it at once instead of sending that request.

Everything here is thread-safe: the worker fills the caches, the GUI thread reads them.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.engine.cache import ByteLRU
from ..core.types import MethodParams, TextPrompts

log = logging.getLogger(__name__)

#: Bytes of automatic results kept (masks, stage masks and logits, PPG intermediates).
AHEAD_RESULT_BYTES = 256 << 20
#: Decoded images kept (the ones the lane read last: the next images, the precompute's last).
AHEAD_IMAGES = 4


@dataclass(frozen=True, eq=False)
class AutoResult:
    """The automatic result of one image: ``ppg`` (PPGResult), ``result`` (SegmentationResult),
    the pipeline that computed them (weak reference) and their size in bytes."""

    pipe: weakref.ref
    ppg: Any
    result: Any
    nbytes: int


def _nbytes(*objs: Any) -> int:
    n = 0
    for o in objs:
        if isinstance(o, np.ndarray):
            n += o.nbytes
    return n


def result_nbytes(ppg: Any, result: Any) -> int:
    """Bytes held by a PPG result and a SegmentationResult (the anomaly map is the pipeline's)."""
    n = _nbytes(ppg.region, ppg.ring, ppg.similarity, ppg.S, result.pred_mask, result.score_map)
    for st in result.stages:
        n += _nbytes(st.mask, st.low_res_logits)
    return n + 1024


class AheadCache:
    """Decoded images and automatic results computed ahead (see the module docstring)."""

    def __init__(self, result_bytes: int = AHEAD_RESULT_BYTES, images: int = AHEAD_IMAGES):
        self._results = ByteLRU(result_bytes, lambda r: r.nbytes)
        self.last_result_bytes = 0
        self._maps = ByteLRU(result_bytes // 4, lambda a: a[1].anomaly_map.nbytes)
        self._images: OrderedDict[str, tuple[str, np.ndarray]] = OrderedDict()
        self.max_images = int(images)
        self._lock = threading.Lock()

    # -- automatic results ------------------------------------------------------------------------
    def result(self, pipe: Any, image_key: str, params: MethodParams,
               text_prompts: TextPrompts) -> AutoResult | None:
        """The automatic result of ``image_key`` for these parameters and text prompts computed
        by ``pipe``, or None."""
        if pipe is None:
            return None
        entry = self._results.get((image_key, params, text_prompts))
        return entry if entry is not None and entry.pipe() is pipe else None

    def put_result(self, pipe: Any, image_key: str, params: MethodParams, text_prompts: TextPrompts,
                   ppg: Any, result: Any) -> None:
        entry = AutoResult(weakref.ref(pipe), ppg, result, result_nbytes(ppg, result))
        self.last_result_bytes = entry.nbytes
        self._results.put((image_key, params, text_prompts), entry)

    @property
    def has_room(self) -> bool:
        """True while one more result (as big as the last one) fits without evicting any."""
        return self._results.nbytes + self.last_result_bytes <= self._results.max_bytes

    def anomaly(self, pipe: Any, image_key: str, text_prompts: TextPrompts) -> Any:
        """The AnomalyResult of ``image_key`` for these text prompts computed by ``pipe``, or None."""
        if pipe is None:
            return None
        entry = self._maps.get((image_key, text_prompts))
        return entry[1] if entry is not None and entry[0]() is pipe else None

    def put_anomaly(self, pipe: Any, image_key: str, text_prompts: TextPrompts, anomaly: Any) -> None:
        self._maps.put((image_key, text_prompts), (weakref.ref(pipe), anomaly))

    @property
    def result_bytes(self) -> int:
        return self._results.nbytes

    # -- decoded images -------------------------------------------------------------------------
    def image(self, path: str, image_key: str) -> np.ndarray | None:
        """The decoded (H, W, 3) uint8 RGB pixels of ``path`` if its file still has ``image_key``."""
        with self._lock:
            item = self._images.get(str(path))
            if item is None or item[0] != image_key:
                return None
            self._images.move_to_end(str(path))
            return item[1]

    def put_image(self, path: str, image_key: str, image: np.ndarray) -> None:
        with self._lock:
            self._images[str(path)] = (image_key, image)
            self._images.move_to_end(str(path))
            while len(self._images) > self.max_images:
                self._images.popitem(last=False)

    def clear(self) -> None:
        self._results.clear()
        self._maps.clear()
        with self._lock:
            self._images.clear()


class LaneAhead:
    """Worker side, mixed into :class:`~zsas_gui.qt.lane.InferenceLane` (uses its pipeline,
    ``_drive`` and ``_check``)."""

    ahead: AheadCache          # created by the lane's __init__

    def _read_ahead(self, path: str) -> tuple[str, np.ndarray]:
        """(image key, pixels) of ``path``, decoded once and kept for the GUI thread."""
        from ..core.io.imageio import load_image
        from .lane_jobs import image_key_for

        key = image_key_for(path)
        image = self.ahead.image(path, key)
        if image is None:
            image = load_image(path)
            self.ahead.put_image(path, key, image)
        return key, image

    def _result_ahead(self, feats: Any, params: MethodParams | None, text_prompts: TextPrompts,
                      only_if_room: bool = False) -> None:
        """Keep the anomaly map of ``feats`` and compute and keep the automatic result (what a
        ``"refine"`` request with automatic points gives) unless it is kept already; cancellable
        between stages. ``only_if_room``: not when it would evict another (a folder precompute
        keeps the results of the folder's first images; the prefetch of the next images, which
        follows the user, does the rest). A failure here is only logged: the features are what
        was asked for."""
        from .lane_jobs import _Cancelled

        pipe = self._pipe
        if pipe is None:
            return
        self.ahead.put_anomaly(pipe, feats.image_key, text_prompts, feats.anomaly)
        if params is None or getattr(pipe, "sam", None) is None:
            return
        if self.ahead.result(pipe, feats.image_key, params, text_prompts) is not None:
            return
        if only_if_room and not self.ahead.has_room:
            return
        try:
            self._check()
            ppg = pipe.propose(feats, params)
            result = self._drive(pipe.iter_refine(feats, ppg.prompts, params, ppg.gated), lambda _s: None)
        except _Cancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - the request for this image will report it
            log.warning("automatic result ahead of %s failed: %s", feats.image_key, exc)
            return
        result.provenance["text_prompts"] = text_prompts.to_dict()
        self.counters["results_ahead"] = self.counters.get("results_ahead", 0) + 1
        self.ahead.put_result(pipe, feats.image_key, params, text_prompts, ppg, result)
