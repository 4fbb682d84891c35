"""Batch segmentation to an output folder (the engine behind ``zsas segment``).

For an image at relative path REL (extension dropped) the job writes
``OUT/masks/REL.png`` (0/255), ``OUT/heatmaps/REL.png`` (colour-mapped S),
``OUT/overlays/REL.png``, ``OUT/records/REL.json`` and, on request, ``OUT/scores/REL.npy``
(float32 (H, W) score_map); ``OUT/summary.json`` lists every image and its outcome.
Each file is written atomically, so an interrupted run keeps every finished image.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ZsasError
from ..io.atomic import atomic_write_bytes, atomic_write_json, check_output_folder
from ..io.colormap import colorize, overlay
from ..io.imageio import IMAGE_EXTENSIONS, find_images, load_image, save_mask, save_png
from ..types import MethodParams, SegmentationResult, TextPrompts


def collect_inputs(paths: list[str | os.PathLike]) -> list[tuple[Path, str]]:
    """(image path, REL) for every image under ``paths``; REL is the path relative to its
    folder argument without extension (prefixed by the folder name when several folders are
    given). Raises ZsasError for a missing path or when no image is found."""
    items: list[tuple[Path, str]] = []
    several = len(paths) > 1
    for raw in paths:
        root = Path(raw)
        if not root.exists():
            raise ZsasError(f"{root}: no such file or folder")
        if root.is_file():
            items.append((root, root.stem))
            continue
        for f in find_images(root):
            rel = f.relative_to(root).with_suffix("").as_posix()
            items.append((f, f"{root.name}/{rel}" if several else rel))
    return check_inputs(items, paths)


def check_inputs(items: list, paths: list) -> list:
    """``items`` ((src, REL) pairs) when there is at least one and no two share a REL; else a
    ZsasError saying what to do."""
    if not items:
        raise ZsasError(f"no images found under {', '.join(map(str, paths))} "
                        f"(looked for {' '.join(IMAGE_EXTENSIONS)})")
    seen: dict[str, Any] = {}
    for src, rel in items:
        if rel in seen:
            raise ZsasError(f"{src} and {seen[rel]} would both be written as {rel}.png; rename one")
        seen[rel] = src
    return items


class SegmentJob:
    """Writes one image's results under ``out`` and keeps the run's summary."""

    def __init__(self, out: str | os.PathLike, save_scores: bool = False, colormap: str = "jet"):
        self.out = Path(out)
        self.save_scores = save_scores
        self.colormap = colormap
        self.entries: list[dict[str, Any]] = []

    def prepare_output(self) -> None:
        """Fail early, before any model loads, when the output folder cannot be written."""
        check_output_folder(self.out)

    def process(self, pipe, src: Path, rel: str, params: MethodParams) -> SegmentationResult:
        """Run the pipeline on one file and write its outputs."""
        t0 = time.perf_counter()
        image = load_image(src)
        result = pipe.run(None, image, params)
        self.write(src, rel, image, result, (time.perf_counter() - t0) * 1e3)
        return result

    def write(self, src: Path, rel: str, image: np.ndarray, result: SegmentationResult,
              total_ms: float) -> None:
        S = result.anomaly.normalized
        save_mask(self.out / "masks" / f"{rel}.png", result.pred_mask)
        save_png(self.out / "heatmaps" / f"{rel}.png", colorize(S, self.colormap))
        save_png(self.out / "overlays" / f"{rel}.png",
                 overlay(image, S, result.pred_mask, name=self.colormap))
        if self.save_scores:
            import io
            buf = io.BytesIO()
            np.save(buf, result.score_map.astype(np.float32), allow_pickle=False)
            atomic_write_bytes(self.out / "scores" / f"{rel}.npy", buf.getvalue())
        record = result_record(src, result, total_ms)
        atomic_write_json(self.out / "records" / f"{rel}.json", record)
        self.entries.append({"image": str(src), "rel": rel, "ok": True,
                             "image_score": record["image_score"],
                             "mask_area": record["mask_area"], "total_ms": round(total_ms, 1)})

    def record_failure(self, src: Path, rel: str, error: str) -> None:
        self.entries.append({"image": str(src), "rel": rel, "ok": False, "error": error})

    def write_summary(self, run: dict[str, Any], params: MethodParams, text: TextPrompts,
                      seconds: float) -> Path:
        """summary.json; ``run``: the run-level provenance (models, checkpoint digests, the map's
        settings: :func:`~.provenance.run_provenance`, or the same keys of a worker's record)."""
        failed = [e for e in self.entries if not e["ok"]]
        return atomic_write_json(self.out / "summary.json", {
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            **run, "params": params.to_dict(), "text_prompts": text.to_dict(),
            "images": len(self.entries), "succeeded": len(self.entries) - len(failed),
            "failed": len(failed), "seconds": round(seconds, 2), "entries": self.entries})


def result_record(src: Path, result: SegmentationResult, total_ms: float) -> dict[str, Any]:
    """A JSON-ready record of one result: prompts, scores, parameters, models, timings."""
    h, w = result.pred_mask.shape
    prov = result.provenance
    return {
        "image": str(src), "size": [w, h],
        "image_score": round(float(result.anomaly.image_score), 6),
        "gated": result.gated, "mask_area": int(result.pred_mask.sum()),
        "prompts": result.prompts.to_dict(),
        "stages": [{"index": s.index, "name": s.name, "iou": round(s.iou, 5),
                    "component": s.component, "mask_area": int(s.mask.sum()),
                    "box": None if s.box is None else s.box.tolist()} for s in result.stages],
        "params": prov.get("params"), "text_prompts": prov.get("text_prompts"),
        "models": prov.get("models"), "checkpoints": prov.get("checkpoints"),
        "anomaly_map": prov.get("anomaly_map"), "device": prov.get("device"),
        "map": prov.get("map"),
        "timings_ms": {**prov.get("timings_ms", {}), "total_ms": round(total_ms, 2)},
        "zsas_version": prov.get("zsas_version"),
    }
