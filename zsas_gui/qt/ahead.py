"""Work done ahead of the user, so that moving to a precomputed image needs no lane work.

When the lane precomputes a folder or prefetches the next images, besides the features it keeps

- the **decoded pixels** of the last few images it read (a small LRU keyed by file path and
  :func:`image_key_for`, so a changed file is read again), so the GUI thread
  does not decode a PNG when the user moves there;
- the image's **automatic result** (PPG points and the cascade's mask) for the parameters and
  text prompts that image's document will have, in a size-bounded LRU keyed by (image key,
  parameters, text prompts) and tied to the pipeline that computed it (a weak reference: a
  result of other models is never returned). It is exactly what the lane computes for a
  ``"refine"`` request with automatic points (the same ``Pipeline.iter_run``), so the
  controller applies it at once instead of sending that request. Results and maps are also
  keyed by the pipeline's map (:func:`map_state`): a folder map fitted again (another folder,
  one more good image) or another heatmap source makes what was computed ahead unused.

Everything here is thread-safe: the worker fills the caches, the GUI thread reads them.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..core.engine.cache import ByteLRU
from ..core.types import AnomalyResult, MapSettings, MethodParams, SegmentationResult, TextPrompts

if TYPE_CHECKING:
    from ..core.engine.pipeline import Pipeline
    from ..core.method.ppg import PPGResult

#: Bytes of automatic results kept (masks, stage masks and logits, PPG intermediates).
AHEAD_RESULT_BYTES = 256 << 20
#: Decoded images kept (the ones the lane read last: the next images, the precompute's last).
AHEAD_IMAGES = 4


def map_state(pipe: Pipeline) -> tuple[str, str]:
    """What decides the pipeline's maps besides the image and the parameters: its mapper's
    tokens key and state key (a folder map's folder or references; "" for the text map)."""
    mapper = pipe.mapper
    return str(getattr(mapper, "tokens_key", "")), str(getattr(mapper, "state_key", ""))


def image_key_for(path: str | os.PathLike) -> str:
    """Cache key of an image file: path, size and modification time (cheap, no pixel hash)."""
    st = Path(path).stat()
    return f"{Path(path).resolve()}|{st.st_size}|{st.st_mtime_ns}"


@dataclass(frozen=True, eq=False)
class AutoResult:
    """The automatic result of one image: PPG's intermediates, the cascade's result, the pipeline
    that computed them (weak reference) and their size in bytes."""

    pipe: weakref.ref[Pipeline]
    ppg: PPGResult
    result: SegmentationResult
    nbytes: int


def _nbytes(*objs: np.ndarray | None) -> int:
    n = 0
    for o in objs:
        if isinstance(o, np.ndarray):
            n += o.nbytes
    return n


def result_nbytes(ppg: PPGResult, result: SegmentationResult) -> int:
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
    def result(self, pipe: Pipeline | None, image_key: str, params: MethodParams,
               text_prompts: TextPrompts) -> AutoResult | None:
        """The automatic result of ``image_key`` for these parameters and text prompts computed
        by ``pipe``, or None."""
        if pipe is None:
            return None
        entry = self._results.get((image_key, params, text_prompts, map_state(pipe)))
        return entry if entry is not None and entry.pipe() is pipe else None

    def put_result(self, pipe: Pipeline, image_key: str, params: MethodParams, text_prompts: TextPrompts,
                   ppg: PPGResult, result: SegmentationResult) -> None:
        entry = AutoResult(weakref.ref(pipe), ppg, result, result_nbytes(ppg, result))
        self.last_result_bytes = entry.nbytes
        self._results.put((image_key, params, text_prompts, map_state(pipe)), entry)

    @property
    def has_room(self) -> bool:
        """True while one more result (as big as the last one) fits without evicting any."""
        return self._results.nbytes + self.last_result_bytes <= self._results.max_bytes

    def anomaly(self, pipe: Pipeline | None, image_key: str, text_prompts: TextPrompts,
                map_settings: MapSettings | None = None) -> AnomalyResult | None:
        """The AnomalyResult of ``image_key`` for these text prompts and CLIP map settings
        (``MethodParams.clip_map``; None = the defaults) computed by ``pipe``, or None."""
        if pipe is None:
            return None
        entry = self._maps.get((image_key, text_prompts, map_settings or MapSettings(), map_state(pipe)))
        return entry[1] if entry is not None and entry[0]() is pipe else None

    def lookup(self, pipe: Pipeline | None, kind: str, image_key: str, params: MethodParams,
               text_prompts: TextPrompts) -> tuple[AnomalyResult, AutoResult | None] | None:
        """What was computed ahead for a request of ``kind`` ("features": the heatmap;
        "refine": the automatic result, heatmap included) with exactly these models, parameters
        and text prompts: (anomaly, auto result or None), or None when it must be computed."""
        hit = self.result(pipe, image_key, params, text_prompts) if kind == "refine" else None
        anomaly = (hit.result.anomaly if hit is not None
                   else self.anomaly(pipe, image_key, text_prompts, params.clip_map))
        if anomaly is None or (kind == "refine" and hit is None):
            return None
        return anomaly, hit

    def put_anomaly(self, pipe: Pipeline, image_key: str, text_prompts: TextPrompts,
                    anomaly: AnomalyResult, map_settings: MapSettings | None = None) -> None:
        self._maps.put((image_key, text_prompts, map_settings or MapSettings(), map_state(pipe)),
                       (weakref.ref(pipe), anomaly))

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

    def read(self, path: str) -> tuple[str, np.ndarray]:
        """(image key, pixels) of ``path``, decoded once and kept for the GUI thread."""
        from ..core.io.imageio import load_image

        key = image_key_for(path)
        image = self.image(path, key)
        if image is None:
            image = load_image(path)
            self.put_image(path, key, image)
        return key, image

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
