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
from ..frames import sam_input_size
from ..io.imageio import content_hash
from ..method.per_component import group_by_component, merge_ppg
from ..method.ppg import PPGResult, generate_prompts, region_components
from ..method.refine import PredictorDecoder, clean_mask, iter_cascade, min_area_pixels, score_map
from ..models.bundles import ClipBundle, SamBundle
from ..types import MethodParams, Prompts, SegmentationResult, StageResult, TextPrompts
from .cache import ByteLRU, DiskCache
from .events import Encoding, FeaturesReady, PointsReady, RunEvent, StageDone, drive
from .features import ImageFeatures, RunTrace, SamEmbedding

if TYPE_CHECKING:
    from ..sam.fast_decoder import FastDecoder
    from ..sam.fast_encoder import OrtImageEncoder

log = logging.getLogger(__name__)

DEFAULT_CACHE_BYTES = 2 << 30   # 2 GiB of embeddings/tokens in memory


class Pipeline:
    """CLIP anomaly map -> PPG -> CPS for one set of loaded models."""

    def __init__(self, clip: ClipBundle | None, sam: SamBundle | None,
                 text_prompts: TextPrompts | None = None, cache_bytes: int = DEFAULT_CACHE_BYTES,
                 disk_cache: DiskCache | None = None, mapper: Any = None, decoder: str = "auto",
                 encoder: str = "auto"):
        """``decoder``: how refinement runs SAM's decoder (:data:`.fast_decoder.DECODERS`):
        ``"auto"`` (onnxruntime on the CPU if installed, else the torch fast path), ``"onnx"``,
        ``"fast"``, or ``"torch"`` (SAM's own ``predict``: the reference). Same masks.
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
        self._predictor = None
        self.decoder, self.encoder = decoder, encoder
        self._fast: FastDecoder | None = None        # None: SAM's own predictor (the reference)
        self._fast_built = False                     # _fast was chosen (on first use)
        self._encoder: OrtImageEncoder | None = None  # None: SAM's torch encoder
        self._encoder_built = False
        self._last_ppg: tuple[tuple, PPGResult] | None = None   # (key, result) of the last propose
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
                      text_prompts: TextPrompts | None = None
                      ) -> Generator[str, None, ImageFeatures]:
        """Compute (or fetch) the image's CLIP map and SAM embedding.

        image: (H, W, 3) uint8 RGB. Yields ``"clip"`` and ``"sam"`` before each encoder step (a
        cancellation point); returns :class:`ImageFeatures`.
        """
        tp = text_prompts or self.text_prompts
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

        tokens_key = self.mapper.tokens_key   # backbone + mapper settings; a folder map's state:
        map_key = (key, tokens_key, tp.key(), getattr(self.mapper, "state_key", ""))
        anomaly = self._maps.get(map_key)
        if anomaly is None:
            tokens = self._tokens.get((key, tokens_key))
            if tokens is None:
                yield "clip"
                tokens = self._cached_tokens(key, image, disk_key("clip", tokens_key), timings)
            t0 = time.perf_counter()
            with self._memory_guard("computing the anomaly map"):
                anomaly = self.mapper.anomaly(tokens, tp)
            timings["anomaly_ms"] = (time.perf_counter() - t0) * 1e3
            self._maps.put(map_key, anomaly)

        emb = None
        if self.sam is not None:
            emb = self._embeddings.get((key, self.sam.model_id))
            if emb is None:
                yield "sam"
                with self._memory_guard("encoding the image with SAM"):
                    emb = self._load_or_encode_sam(image, disk_key("sam", self.sam.model_id), timings)
                self._embeddings.put((key, self.sam.model_id), emb)
        return ImageFeatures(key, hw, anomaly, emb, tp.key(), timings, tp)

    def _memory_guard(self, what: str):
        """Out of memory inside the block -> :class:`DeviceMemoryError` (a user error)."""
        from ..models.device import out_of_memory_as_user_error

        bundle = self.sam or self.clip
        return out_of_memory_as_user_error(what, bundle.device if bundle is not None else "cpu")

    def features(self, image_key: str | None, image: np.ndarray,
                 text_prompts: TextPrompts | None = None) -> ImageFeatures:
        """:meth:`iter_features` run to completion."""
        return drive(self.iter_features(image_key, image, text_prompts))

    def image_tokens(self, image_key: str | None, image: np.ndarray) -> Any:
        """The mapper's tokens of one image through the caches (a folder pass needs them all)."""
        key, tk, dc = image_key or content_hash(image), self.mapper.tokens_key, self.disk_cache
        dkey = dc and DiskCache.key("clip", content_hash(image), tk, f"v{__version__}")
        return self._tokens.get((key, tk)) or self._cached_tokens(key, image, dkey, {})

    def _cached_tokens(self, key, image, dkey, timings):
        with self._memory_guard("encoding the image"):
            tokens = self._load_or_encode_tokens(image, dkey, timings)
        self._tokens.put((key, self.mapper.tokens_key), tokens)
        return tokens

    def _load_or_encode_tokens(self, image, dkey, timings):
        from ..maps.anomaly_map import ImageTokens

        from_numpy = getattr(self.mapper, "tokens_from_numpy", ImageTokens.from_numpy_dict)
        if dkey is not None:
            arrays = self.disk_cache.load(dkey)
            if arrays is not None:
                try:
                    return from_numpy(arrays)
                except (KeyError, ValueError) as exc:
                    log.warning("cached CLIP tokens unusable (%s); recomputing", exc)
        t0 = time.perf_counter()
        tokens = self.mapper.encode_image(image)
        self.encoder_calls["clip"] += 1
        timings["clip_ms"] = (time.perf_counter() - t0) * 1e3
        if dkey is not None:
            self.disk_cache.save(dkey, tokens.to_numpy_dict())
        return tokens

    def _load_or_encode_sam(self, image, dkey, timings) -> SamEmbedding:
        import torch

        hw = (int(image.shape[0]), int(image.shape[1]))
        if dkey is not None:
            arrays = self.disk_cache.load(dkey)
            if arrays is not None and arrays.get("features", np.empty(0)).ndim == 4:
                feats = torch.from_numpy(arrays["features"]).to(self.sam.device, torch.float32)
                return SamEmbedding(feats, sam_input_size(hw, self.sam.long_side), hw)
        predictor = self.predictor
        encoder = self._image_encoder()
        t0 = time.perf_counter()
        with torch.inference_mode():
            if encoder is not None:
                encoder.set_image(predictor, image)
            else:
                predictor.set_image(image)
        self.encoder_calls["sam"] += 1
        timings["sam_ms"] = (time.perf_counter() - t0) * 1e3
        emb = SamEmbedding(predictor.features, tuple(predictor.input_size), tuple(predictor.original_size))
        if dkey is not None:
            self.disk_cache.save(dkey, {"features": emb.features.float().cpu().numpy()})
        return emb

    @property
    def predictor(self):
        """The one ``SamPredictor`` of this pipeline (created on first use)."""
        if self._predictor is None:
            if self.sam is None:
                raise RuntimeError("no SAM model loaded: load one to refine masks")
            from segment_anything import SamPredictor
            self._predictor = SamPredictor(self.sam.model)
        return self._predictor

    @property
    def decoder_backend(self) -> str:
        """The decoder refinement uses: "onnx", "fast" or "torch" (builds it on first use)."""
        engine = self._fast_engine()
        return engine.backend if engine is not None else "torch"

    def _image_encoder(self) -> OrtImageEncoder | None:
        """The onnxruntime image encoder, or None for SAM's own (chosen on first use)."""
        if not self._encoder_built:
            from ..sam.fast_decoder import default_cache_dir
            from ..sam.fast_encoder import make_encoder

            cache = None if self.sam.info.get("random_test_model") else default_cache_dir()
            self._encoder = make_encoder(self.sam, self.encoder, cache_dir=cache)
            self._encoder_built = True
        return self._encoder

    def _fast_engine(self) -> FastDecoder | None:
        """The fast decoder, or None for SAM's own predictor (chosen on first use)."""
        if not self._fast_built:
            from ..sam.fast_decoder import default_cache_dir, make_decoder

            if self.sam is not None and self.decoder != "torch":
                cache = None if self.sam.info.get("random_test_model") else default_cache_dir()
                self._fast = make_decoder(self.sam, self.decoder, cache_dir=cache)
            self._fast_built = True
        return self._fast

    def _decoder_for(self, feats: ImageFeatures):
        """A MaskDecoder on a cached embedding (no encoder call)."""
        if feats.sam is None:
            raise RuntimeError("these features have no SAM embedding: load a SAM model to refine")
        engine = self._fast_engine()
        if engine is not None:
            return engine.bind(feats.sam.features, feats.sam.input_size, feats.sam.original_size)
        p = self.predictor
        p.features = feats.sam.features
        p.input_size = feats.sam.input_size
        p.original_size = feats.sam.original_size
        p.is_image_set = True
        return PredictorDecoder(p)

    # ------------------------------------------------------------------ per edit (cheap)
    def propose(self, feats: ImageFeatures, params: MethodParams) -> PPGResult:
        """PPG on cached features. In per-component mode, the prompts of all components.
        The last result is kept: a point edit or a drag (same image, map and parameters) does
        not compute it again."""
        key = (feats.image_key, feats.text_key, params)
        if self._last_ppg is None or self._last_ppg[0] != key:
            self._last_ppg = (key, self._propose(feats, params))
        return self._last_ppg[1]

    def _propose(self, feats: ImageFeatures, params: MethodParams) -> PPGResult:
        S = feats.anomaly.normalized
        sam_np = feats.sam_features_np() if params.negative_rule == "sam_similarity" else None
        long_side = self.sam.long_side if self.sam else 1024
        if params.per_component:
            comps = region_components(S, params.tau, min_area_pixels(feats.hw, params.min_area_frac))
            parts = [generate_prompts(S, feats.anomaly.image_score, params, sam_np, long_side, c)
                     for c in comps]
            if parts and not parts[0].gated:
                return merge_ppg(parts, S)
        return generate_prompts(S, feats.anomaly.image_score, params, sam_np, long_side)

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
            score_map=score_map(S, pred), gated=gated,
            provenance=self._provenance(params, prompts, feats.text_prompts or self.text_prompts,
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
        feats = yield from self._iter_features_events(image_key, image, text_prompts)
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
        gen = self.iter_refine(feats, prompts, params, gated)
        while True:
            try:
                stage = next(gen)
            except StopIteration as stop:
                return RunTrace(feats, ppg, stop.value)
            yield StageDone(stage)

    def _iter_features_events(self, image_key, image, text_prompts
                              ) -> Generator[Encoding, None, ImageFeatures]:
        gen = self.iter_features(image_key, image, text_prompts)
        while True:
            try:
                step = next(gen)
            except StopIteration as stop:
                return stop.value
            yield Encoding(step)

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

    def _provenance(self, params: MethodParams, prompts: Prompts, text_prompts: TextPrompts,
                    timings: dict[str, float]) -> dict[str, Any]:
        if not self._fast_built:
            decoder = self.decoder
        else:
            decoder = self._fast.backend if self._fast is not None else "torch"
        return {"zsas_version": __version__, "models": self.model_ids,
                "device": str(self.sam.device if self.sam else self.clip.device),
                "decoder": decoder, "params": params.to_dict(), "prompts": prompts.to_dict(),
                "text_prompts": text_prompts.to_dict(),
                "map": self.mapper.info() if hasattr(self.mapper, "info") else {},
                "timings_ms": {k: round(v, 2) for k, v in timings.items()}}
