"""How a run makes its heatmap, as plain data (:class:`MapSpec`), and the pipeline that makes it
(:func:`map_pipeline`): the CLI builds its pipeline from it, and so does each Ray actor (a spec
pickles; a loaded model does not).

    spec = MapSpec(kind="mutual", backbone="timm:efficientnet_lite0", backbone_weights=FILE)
    pipe = map_pipeline(spec, clip="ViT-B-16", sam="vit_b", device="cpu")
    fit_folder(pipe, folder_paths)        # folder maps only (folder_maps.py)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..maps.folder_select import DEFAULT_MAX_OTHERS


@dataclass(frozen=True)
class MapSpec:
    """kind: ``text``, ``mutual`` or ``references`` (already resolved from ``auto``); backbone:
    ``clip`` / ``timm:ARCH`` / None (= the CLIP image tower) for the folder maps, with its
    state dict file (``backbone_weights``); max_others: the mutual map's comparison cap;
    absolute: τ on one folder-wide scale instead of per image; text_weight: > 0 fuses a
    references map with CLIP's text map at that weight (off by default; decisions D36);
    distance: ``auto`` (the backbone's: Euclidean for CNN stages, cosine for ViT tokens, D39),
    ``cosine`` or ``euclidean``; density: distances relative to the local spread of normal
    patches (D40; False = plain nearest-patch distances)."""

    kind: str = "text"
    backbone: str | None = None
    backbone_weights: str | None = None
    max_others: int = DEFAULT_MAX_OTHERS
    absolute: bool = False
    text_weight: float = 0.0
    distance: str = "auto"
    density: bool = True

    @property
    def is_folder_map(self) -> bool:
        return self.kind != "text"


def map_pipeline(spec: MapSpec, clip: str | None, sam: str | None, device: str = "auto", **kwargs: Any):
    """The pipeline for ``spec``: CLIP's text map, or a folder mapper on ``spec.backbone`` (not
    fitted yet). ``kwargs`` go to :class:`~.pipeline.Pipeline` (text_prompts, cache_bytes ...)."""
    from .pipeline import Pipeline

    if not spec.is_folder_map:
        return Pipeline.from_names(clip=clip, sam=sam, device=device, **kwargs)
    from ..maps.backbones import load_backbone, parse_backbone
    from ..maps.folder_select import make_folder_mapper
    from ..models.loading import load_clip, load_sam

    needs_clip = parse_backbone(spec.backbone)[0] == "clip" or spec.text_weight > 0
    clip_b = load_clip(clip, device=device) if needs_clip else None
    sam_b = load_sam(sam, device=device)
    backbone = load_backbone(spec.backbone, spec.backbone_weights, clip_b, device=sam_b.device)
    text_mapper = None
    if spec.text_weight > 0:
        from ..maps.anomaly_map import VVAnomalyMapper

        text_mapper = VVAnomalyMapper(clip_b)
    mapper = make_folder_mapper(spec.kind, backbone, spec.max_others, absolute=spec.absolute,
                                text_mapper=text_mapper, text_weight=spec.text_weight,
                                distance=spec.distance, density=spec.density)
    return Pipeline(clip_b, sam_b, mapper=mapper, **kwargs)
