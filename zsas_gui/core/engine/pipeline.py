"""The cached pipeline: per image, the expensive encoders run once; per edit, only PPG + CPS.

    pipe = Pipeline.from_names(clip="ViT-L-14-336-quickgelu", sam="vit_h", device="auto")
    feats = pipe.features(key, image, text_prompts)      # CLIP tokens + map, SAM embedding (cached)
    ppg = pipe.propose(feats, params)                    # points + intermediates
    for stage in pipe.iter_refine(feats, ppg.prompts, params): ...   # 3 decoder passes
    for event in pipe.iter_run(key, image, params): ...  # all of it, one event per step (events.py)
    result = pipe.run(key, image, params)                # iter_run to its end -> SegmentationResult
    trace = pipe.run_traced(key, image, params)          # the same + features + PPG result

Caches: memory LRU (bytes budget) of SAM embeddings and CLIP image tokens keyed by
(image key, model id); anomaly maps keyed by (image key, model id, text prompt key); optional
disk cache keyed by image content hash + model id + preprocessing. Not thread-safe: one thread
(the inference lane, or the CLI loop) owns a Pipeline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import numpy as np

from ... import __version__
from ..io.imageio import content_hash
from ..method.per_component import group_by_component, per_component_prompts
from ..method.ppg import PPGResult, generate_prompts
from ..method.refine import clean_mask, iter_cascade, min_area_pixels, score_map
from ..models.bundles import ClipBundle, SamBundle
from ..types import MapSettings, MethodParams, Prompts, SegmentationResult, StageResult, TextPrompts
from .cache import ByteLRU, DiskCache, sam_cache_id
from .events import Encoding, FeaturesReady, PointsReady, RunEvent, StageDone, as_events, drive
from .features import ImageFeatures, RunTrace, SamEmbedding
from .provenance import result_provenance

if TYPE_CHECKING:
    from ..maps.anomaly_map import AnomalyMapper
    from ..sam.backends import SamBackend

log = logging.getLogger(__name__)

DEFAULT_CACHE_BYTES = 2 << 30   # 2 GiB of embeddings/tokens in memory


class Pipeline:
    """CLIP anomaly map -> PPG -> CPS for one set of loaded models."""

    def __init__(self, clip: ClipBundle | None, sam: SamBundle | None,
                 text_prompts: TextPrompts | None = None, cache_bytes: int = DEFAULT_CACHE_BYTES,
                 disk_cache: DiskCache | None = None, mapper: AnomalyMapper | None = None, decoder: str = "auto",
                 encoder: str = "auto"):
        """``decoder``: how refinement runs SAM's decoder (:data:`.fast_decoder.DECODERS`):
        ``"auto"`` (onnxruntime on the CPU if installed, else the torch fast path), ``"onnx"``,
        ``"fast"``, or ``"torch"`` (SAM's own ``predict``: the reference). Same masks. SAM 2.1 and
        HQ-SAM have no onnxruntime decoder: any value but ``"torch"`` runs their torch fast path.
        ``encoder``: SAM's image encoder in ``"torch"`` or ``"onnx"`` (onnxruntime); ``"auto"``:
        onnxruntime for small encoders (MobileSAM) on the CPU (:mod:`.fast_encoder`)."""
        from ..sam.fast_decoder import DECODERS
        from ..sam.fast_encoder import ENCODERS

        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {', '.join(DECODERS)}, got {decoder!r}")
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}, got {encoder!r}")
        if clip is None and mapper is None:
            raise ValueError("a Pipeline needs a CLIP model (or an anomaly mapper)")
        if mapper is None:
            from ..maps.anomaly_map import VVAnomalyMapper
            mapper = VVAnomalyMapper(clip)
        self.mapper = mapper
        self.clip, self.sam = clip, sam
        self.text_prompts = text_prompts or TextPrompts()
        self.disk_cache = disk_cache
        self.decoder, self.encoder = decoder, encoder
        self._backend: SamBackend | None = None       # built on first use (core.sam.backends)
        self._last_ppg: tuple[tuple, Any, PPGResult] | None = None   # (key, map, result) of the last propose
        maps_bytes = cache_bytes // 8          # the three caches share cache_bytes, never more
        self._tokens = ByteLRU((cache_bytes - maps_bytes) // 2, lambda t: t.nbytes)
        self._embeddings = ByteLRU((cache_bytes - maps_bytes) // 2, lambda e: e.nbytes)
        self._maps = ByteLRU(maps_bytes, lambda a: a.anomaly_map.nbytes)
        self.encoder_calls = {"clip": 0, "sam": 0}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_names(cls, clip: str | None = None, sam: str | None = None, device: str = "auto",
                   precision: str = "auto", **kwargs) -> Pipeline:
        """Load both models (registry names or local paths) and build a pipeline."""
        from ..models.loading import load_clip, load_sam

        clip_b = load_clip(clip, device=device, precision=precision)
        sam_b = load_sam(sam, device=device, precision=precision)
        return cls(clip_b, sam_b, **kwargs)

    def clear_caches(self) -> None:
        """Forget every cached token map, anomaly map and embedding (memory only)."""
        for lru in (self._tokens, self._embeddings, self._maps):
            lru.clear()

    @property
    def cache_bytes(self) -> int:
        """Bytes held by the in-memory caches."""
        return self._tokens.nbytes + self._embeddings.nbytes + self._maps.nbytes

    @property
    def model_ids(self) -> dict[str, str | None]:
        return {"clip": self.mapper.model_id, "sam": self.sam.model_id if self.sam else None}

    # ------------------------------------------------------------------ per image (expensive)
    def iter_features(self, image_key: str | None, image: np.ndarray,
                      text_prompts: TextPrompts | None = None, map_settings: MapSettings | None = None
                      ) -> Generator[str, None, ImageFeatures]:
        """Compute (or fetch) the image's CLIP map and SAM embedding.

        image: (H, W, 3) uint8 RGB; map_settings: the map's §1 settings (``MethodParams.clip_map``;
        None = the pipeline's mapper as built). Yields ``"clip"`` and ``"sam"`` before each encoder
        step (a cancellation point); returns :class:`ImageFeatures`.
        """
        tp = text_prompts or self.text_prompts
        mapper = (self.mapper.with_settings(map_settings)    # made once per settings (memoised)
                  if map_settings is not None and hasattr(self.mapper, "with_settings") else self.mapper)
        key = image_key or content_hash(image)
        hw = (int(image.shape[0]), int(image.shape[1]))
        timings: dict[str, float] = {}
        chash: list[str] = []   # content hash, computed once if a disk cache needs it

        def disk_key(kind: str, model_id: str) -> str | None:
            if self.disk_cache is None:
                return None
            if not chash:
                chash.append(content_hash(image))
            return DiskCache.key(kind, chash[0], model_id, f"v{__version__}")

        tokens_key = mapper.tokens_key   # checkpoint digest, precision, preprocessing, depths ...
        # a folder map's state (the folder or references it was fitted on) is part of the map's key
        map_key = (key, getattr(mapper, "settings_key", tokens_key), tp.key(), getattr(mapper, "state_key", ""))
        anomaly = self._maps.get(map_key)
        if anomaly is None:
            tokens = self._tokens.get((key, tokens_key))
            if tokens is None:
                yield "clip"
                tokens = self._cached_tokens(mapper, key, image, disk_key("clip", tokens_key), timings)
            t0 = time.perf_counter()
            with self._memory_guard("computing the anomaly map"):
                anomaly = mapper.anomaly(tokens, tp)
            timings["anomaly_ms"] = (time.perf_counter() - t0) * 1e3
            self._maps.put(map_key, anomaly)

        emb = None
        if self.sam is not None:
            sam_key = sam_cache_id(self.sam)
            emb = self._embeddings.get((key, sam_key))
            if emb is None:
                yield "sam"
                with self._memory_guard("encoding the image with SAM"):
                    emb = self._load_or_encode_sam(image, disk_key("sam", sam_key), timings)
                self._embeddings.put((key, sam_key), emb)
        info = mapper.info() if hasattr(mapper, "info") else {"model_id": mapper.model_id}
        return ImageFeatures(key, hw, anomaly, emb, tp.key(), timings, tp, map_info=info)

    def _memory_guard(self, what: str):
        """Out of memory inside the block -> :class:`DeviceMemoryError` (a user error)."""
        from ..models.device import out_of_memory_as_user_error

        bundle = self.sam or self.clip
        return out_of_memory_as_user_error(what, bundle.device if bundle is not None else "cpu")

    def features(self, image_key: str | None, image: np.ndarray, text_prompts: TextPrompts | None = None,
                 map_settings: MapSettings | None = None) -> ImageFeatures:
        """:meth:`iter_features` run to completion."""
        return drive(self.iter_features(image_key, image, text_prompts, map_settings))

    def image_tokens(self, image_key: str | None, image: np.ndarray, mapper=None) -> Any:
        """The tokens of one image through the caches (a folder pass needs them all) by
        ``mapper`` (None: the pipeline's; the app fits a new folder map beside the one in use)."""
        mapper = self.mapper if mapper is None else mapper
        key, tk, dc = image_key or content_hash(image), mapper.tokens_key, self.disk_cache
        dkey = dc and DiskCache.key("clip", content_hash(image), tk, f"v{__version__}")
        return self._tokens.get((key, tk)) or self._cached_tokens(mapper, key, image, dkey, {})

    def _cached_tokens(self, mapper, key, image, dkey, timings):
        with self._memory_guard("encoding the image for the anomaly map"):
            tokens = self._load_or_encode_tokens(mapper, image, dkey, timings)
        self._tokens.put((key, mapper.tokens_key), tokens)
        return tokens

    def _load_or_encode_tokens(self, mapper, image, dkey, timings):
        from ..maps.anomaly_map import ImageTokens

        from_numpy = getattr(mapper, "tokens_from_numpy", ImageTokens.from_numpy_dict)
        if dkey is not None:
            arrays = self.disk_cache.load(dkey)
            if arrays is not None:
                try:
                    return from_numpy(arrays)
                except (KeyError, ValueError) as exc:
                    log.warning("cached CLIP tokens unusable (%s); recomputing", exc)
        t0 = time.perf_counter()
        tokens = mapper.encode_image(image)
        self.encoder_calls["clip"] += 1
        timings["clip_ms"] = (time.perf_counter() - t0) * 1e3
        if dkey is not None:
            self.disk_cache.save(dkey, tokens.to_numpy_dict())
        return tokens

    def _load_or_encode_sam(self, image, dkey, timings) -> SamEmbedding:
        hw = (int(image.shape[0]), int(image.shape[1]))
        backend = self.backend
        if dkey is not None:
            arrays = self.disk_cache.load(dkey)
            emb = backend.from_arrays(arrays, hw) if arrays is not None else None
            if emb is not None:
                return emb
        t0 = time.perf_counter()
        emb = backend.encode(image)
        self.encoder_calls["sam"] += 1
        timings["sam_ms"] = (time.perf_counter() - t0) * 1e3
        if dkey is not None:
            self.disk_cache.save(dkey, backend.to_arrays(emb))
        return emb

    @property
    def backend(self) -> SamBackend:
        """The :class:`~..sam.backends.SamBackend` of this pipeline's SAM (created on first use):
        encoder, decoder and embedding format of SAM 1, SAM 2.1 or HQ-SAM."""
        if self._backend is None:
            if self.sam is None:
                raise RuntimeError("no SAM model loaded: load one to refine masks")
            from ..sam.backends import make_backend
            self._backend = make_backend(self.sam, self.decoder, self.encoder)
        return self._backend

    @property
    def decoder_backend(self) -> str:
        """The decoder refinement uses: "onnx", "fast" or "torch" (builds it on first use)."""
        return self.backend.decoder_name if self.sam is not None else "torch"

    def _decoder_for(self, feats: ImageFeatures):
        """A MaskDecoder on a cached embedding (no encoder call)."""
        if feats.sam is None:
            raise RuntimeError("these features have no SAM embedding: load a SAM model to refine")
        return self.backend.decoder(feats.sam)

    # ------------------------------------------------------------------ per edit (cheap)
    def propose(self, feats: ImageFeatures, params: MethodParams) -> PPGResult:
        """PPG on cached features. In per-component mode, the prompts of all components.
        The last result is kept: a point edit or a drag (same image, map and parameters) does
        not compute it again (the map compared by identity: a folder map installed since gives
        a new map for the same image and parameters)."""
        key = (feats.image_key, feats.text_key, params)
        last = self._last_ppg
        if last is None or last[0] != key or last[1] is not feats.anomaly:
            self._last_ppg = last = (key, feats.anomaly, self._propose(feats, params))
        return last[2]

    def _propose(self, feats: ImageFeatures, params: MethodParams) -> PPGResult:
        S = feats.anomaly.normalized
        sam_np = feats.sam_features_np() if params.negative_rule == "sam_similarity" else None
        long_side = self.sam.long_side if self.sam else 1024
        make = per_component_prompts if params.per_component else generate_prompts
        return make(S, feats.anomaly.image_score, params, sam_np, long_side)

    def iter_refine(self, feats: ImageFeatures, prompts: Prompts, params: MethodParams,
                    gated: bool = False) -> Generator[StageResult, None, SegmentationResult]:
        """The cascade on cached features, yielding each stage; returns the full result."""
        t0 = time.perf_counter()
        S = feats.anomaly.normalized
        hw = feats.hw
        stages: list[StageResult] = []
        final = np.zeros(hw, bool)
        if not gated and prompts.n_pos > 0:
            decoder = self._decoder_for(feats)
            groups = (group_by_component(prompts, S, params, hw) if params.per_component
                      else [prompts])
            for ci, group in enumerate(groups):
                with self._memory_guard("refining the mask with SAM's decoder"):
                    run = yield from iter_cascade(decoder, group, component=ci)
                stages.extend(run)
                if run:
                    final |= run[-1].mask
        pred = clean_mask(final, min_area_pixels(hw, params.min_area_frac))
        refine_ms = (time.perf_counter() - t0) * 1e3
        return SegmentationResult(
            anomaly=feats.anomaly, prompts=prompts, stages=tuple(stages), pred_mask=pred,
            score_map=score_map(feats.anomaly.anomaly_map, pred, params.outside_weight), gated=gated,
            provenance=result_provenance(self, feats, params, prompts, feats.text_prompts or self.text_prompts,
                                         {**feats.timings, "refine_ms": refine_ms}))

    def refine(self, feats: ImageFeatures, prompts: Prompts, params: MethodParams,
               gated: bool = False) -> SegmentationResult:
        return drive(self.iter_refine(feats, prompts, params, gated))

    def iter_run(self, image_key: str | None, image: np.ndarray, params: MethodParams | None = None,
                 text_prompts: TextPrompts | None = None, prompts: Prompts | None = None, *,
                 features_only: bool = False, ppg_for_display: bool = False
                 ) -> Generator[RunEvent, None, RunTrace]:
        """The whole method on one image, one :mod:`event <.events>` per step; returns the
        :class:`RunTrace` (its result's provenance complete: models, parameters, prompts, text
        prompts, timings). ``prompts`` replace PPG's points. ``features_only``: stop after
        :class:`~.events.FeaturesReady` (the trace's ``result`` and ``ppg`` are None).
        ``ppg_for_display``: with ``prompts`` given, run PPG anyway for its R, N and similarity
        (a failure there is logged and gives ``ppg`` None: the user's points do not need it)."""
        params = params or MethodParams()
        feats = yield from as_events(self.iter_features(image_key, image, text_prompts, params.clip_map),
                                     Encoding)
        yield FeaturesReady(feats)
        if features_only:
            return RunTrace(feats, None, None)
        t0 = time.perf_counter()
        ppg, gated = None, False
        if prompts is None:
            ppg = self.propose(feats, params)
            prompts, gated = ppg.prompts, ppg.gated
        elif ppg_for_display:
            try:
                ppg = self.propose(feats, params)
            except Exception as exc:  # noqa: BLE001 - display only; the cascade uses the user's points
                log.warning("PPG for display failed: %s", exc)
        feats.timings["ppg_ms"] = (time.perf_counter() - t0) * 1e3
        yield PointsReady(prompts, gated, ppg)
        result = yield from as_events(self.iter_refine(feats, prompts, params, gated), StageDone)
        return RunTrace(feats, ppg, result)

    def run(self, image_key: str | None, image: np.ndarray, params: MethodParams | None = None,
            text_prompts: TextPrompts | None = None, prompts: Prompts | None = None
            ) -> SegmentationResult:
        """The whole method on one image; ``prompts`` overrides the automatic ones."""
        return self.run_traced(image_key, image, params, text_prompts, prompts).result

    def run_traced(self, image_key: str | None, image: np.ndarray, params: MethodParams | None = None,
                   text_prompts: TextPrompts | None = None, prompts: Prompts | None = None
                   ) -> RunTrace:
        """:meth:`iter_run` to its end (``ppg`` is None when ``prompts`` overrode the
        automatic ones: PPG did not run)."""
        return drive(self.iter_run(image_key, image, params, text_prompts, prompts))
