"""What made a result, recorded with it (ALGORITHM.md: every "(chosen)" value travels with each
result so a run can be reproduced): versions, models and their checkpoint digests, the anomaly
map's settings as the mapper resolved them, every method parameter, the prompts, timings.
One function, so records, summary.json and the project store all get the same fields."""

from __future__ import annotations

from typing import Any

from ... import __version__


def checkpoint_digests(pipe) -> dict[str, str | None]:
    """SHA-256 of the CLIP and SAM checkpoints the pipeline loaded (None: not loaded/unknown)."""
    return {name: (b.info.get("sha256") if b is not None else None)
            for name, b in (("clip", pipe.clip), ("sam", pipe.sam))}


def result_provenance(pipe, feats, params, prompts, text_prompts, timings: dict[str, float]) -> dict[str, Any]:
    """The provenance dict of one :class:`SegmentationResult`. ``feats.map_info`` is the mapper's
    ``info()`` (input size, ``vv_start``, depths, temperature, blur ... as resolved)."""
    decoder = pipe.decoder_backend        # the engine the SAM backend chose ("torch" without SAM)
    bundle = pipe.sam or pipe.clip
    map_info = dict(feats.map_info)       # asked of the mapper once per image, in iter_features
    return {"zsas_version": __version__, "models": pipe.model_ids,
            "checkpoints": checkpoint_digests(pipe), "anomaly_map": map_info,
            "device": str(bundle.device) if bundle is not None else "cpu", "decoder": decoder,
            "params": params.to_dict(), "prompts": prompts.to_dict(),
            "text_prompts": text_prompts.to_dict(),
            "map": map_info,              # the name the explain view and folder-map records read
            "timings_ms": {k: round(v, 2) for k, v in timings.items()}}


def run_provenance(pipe, params) -> dict[str, Any]:
    """The run-level part (summary.json, metrics.json): models, checkpoint digests and the map's
    settings as the mapper resolves ``params.clip_map``."""
    mapper = pipe.mapper
    if hasattr(mapper, "with_settings"):
        mapper = mapper.with_settings(params.clip_map)
    info = mapper.info() if hasattr(mapper, "info") else {"model_id": mapper.model_id}
    return {"models": pipe.model_ids, "checkpoints": checkpoint_digests(pipe), "anomaly_map": info}
