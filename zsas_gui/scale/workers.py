"""The actor classes of a distributed job: models loaded once per actor, then one call per
batch of images. Each image gives one output row: ``index`` (its place in the image list),
``outcome`` and ``entry`` (the JSON of its summary entry, as the local command writes it).

Outcomes: ``done`` (computed and written), ``kept`` (complete before, or reviewed meanwhile:
nothing written), ``failed`` (recorded; the job goes on), ``fatal`` (the output cannot be
written: the driver stops the job).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.engine.map_spec import MapSpec
from ..core.errors import OutputError, ZsasError
from ..core.types import MethodParams, TextPrompts
from .inputs import read_image

OUTCOMES = ("done", "kept", "failed", "fatal")


@dataclass(frozen=True)
class ModelSpec:
    """What each actor loads: CLIP and SAM names or paths (as on the command line), the device,
    the in-memory feature cache budget (bytes), the heatmap source and, for a references map,
    the good images every actor fits it on."""

    clip: str | None
    sam: str | None
    device: str = "auto"
    cache_bytes: int = 0
    map: MapSpec = field(default_factory=MapSpec)
    references: tuple[str, ...] = ()


class _Worker:
    """Loads the pipeline once (a references map is fitted then); ``__call__`` maps a batch
    ``{"index", "src", "rel"}`` (numpy arrays of N ints/strings) to ``{"index", "outcome",
    "entry"}`` (N each). A batch of groups (``--map mutual``, :mod:`.groups`) has the columns
    ``{"fit", "index", "src", "rel"}``, each row a group as JSON lists: the map is fitted on the
    group's ``fit`` images, then each of its images is segmented (one output row per image)."""

    def __init__(self, models: ModelSpec, params: MethodParams, text: TextPrompts):
        from ..core.engine.map_spec import map_pipeline

        self.pipe = map_pipeline(models.map, models.clip, models.sam, models.device,
                                 text_prompts=text, cache_bytes=models.cache_bytes)
        self.params, self.text = params, text
        if models.map.kind == "references":
            self._fit(models.references)

    def _fit(self, srcs) -> None:
        """Fit the folder map on ``srcs``; unreadable ones are left out (they fail when segmented)."""
        from ..core.engine.folder_maps import fit_folder

        fit_folder(self.pipe, [str(s) for s in srcs], unreadable=[], read=read_image)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if "fit" in batch:
            return self._call_groups(batch)
        outcomes, entries = [], []
        for src, rel in zip(batch["src"], batch["rel"]):
            outcome, entry = self._guarded(str(src), str(rel))
            outcomes.append(outcome)
            entries.append(json.dumps(entry))
        return {"index": np.asarray(batch["index"]), "outcome": np.array(outcomes),
                "entry": np.array(entries)}

    def _call_groups(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        indices, outcomes, entries = [], [], []
        for fit, index, src, rel in zip(batch["fit"], batch["index"], batch["src"], batch["rel"]):
            index, src, rel = json.loads(str(index)), json.loads(str(src)), json.loads(str(rel))
            try:
                self._fit(json.loads(str(fit)))
                results = [self._guarded(s, r) for s, r in zip(src, rel)]
            except ZsasError as exc:      # no readable image in the group
                results = [("failed", _failure(s, r, str(exc))) for s, r in zip(src, rel)]
            indices += index
            outcomes += [outcome for outcome, _ in results]
            entries += [json.dumps(entry) for _, entry in results]
        return {"index": np.asarray(indices, dtype=np.int64), "outcome": np.array(outcomes),
                "entry": np.array(entries)}

    def _guarded(self, src: str, rel: str) -> tuple[str, dict[str, Any]]:
        try:
            return self.one(src, rel)
        except OutputError as exc:
            return "fatal", _failure(src, rel, str(exc))
        except ZsasError as exc:
            return "failed", _failure(src, rel, str(exc))
        except Exception as exc:  # noqa: BLE001  (a fault on one image must not end the job)
            return "failed", _failure(src, rel, f"unexpected {type(exc).__name__}: {exc}")

    def one(self, src: str, rel: str) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError


def _failure(src: str, rel: str, error: str) -> dict[str, Any]:
    return {"image": src, "rel": rel, "ok": False, "error": error}


def _json_equal(a: Any, b: Any) -> bool:
    return json.loads(json.dumps(a)) == json.loads(json.dumps(b))


def same_run(record: dict[str, Any], params: MethodParams, text: TextPrompts,
             model_ids: dict[str, Any] | None = None) -> bool:
    """True when a segment record was made with these parameters, text prompts and (when
    given) models."""
    return (_json_equal(record.get("params"), params.to_dict())
            and _json_equal(record.get("text_prompts"), text.to_dict())
            and (model_ids is None or _json_equal(record.get("models"), model_ids)))


def _other_run_message(record_path: Path, out: Path) -> str:
    return (f"{record_path}: made by an earlier run with other parameters or models; write this "
            f"run to another -o (or delete {out} to redo it)")


def check_earlier_run(out: Path, params: MethodParams, text: TextPrompts) -> None:
    """On the driver, before any actor starts: OutputError when the first record found under
    ``out`` was made with other parameters (the workers check every record, models included)."""
    records = out / "records"
    for path in records.rglob("*.json") if records.is_dir() else []:   # the first readable one
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and not same_run(record, params, text):
            raise OutputError(_other_run_message(path, out))
        return


class SegmentWorker(_Worker):
    """``zsas segment --ray``: writes the local command's files under ``out`` (each atomically;
    the record last, so a record on disk means the image is complete)."""

    def __init__(self, models: ModelSpec, params: MethodParams, text: TextPrompts, out: str,
                 save_scores: bool, colormap: str):
        from ..core.engine.segment_job import SegmentJob

        super().__init__(models, params, text)
        self.job = SegmentJob(out, save_scores=save_scores, colormap=colormap)

    def one(self, src: str, rel: str) -> tuple[str, dict[str, Any]]:
        previous = self._finished(src, rel)
        if previous is not None:
            return "kept", previous
        t0 = time.perf_counter()
        image = read_image(src)
        result = self.pipe.run(None, image, self.params)
        self.job.write(src, rel, image, result, (time.perf_counter() - t0) * 1e3)
        return "done", self.job.entries.pop()

    def _outputs(self, rel: str) -> list[Path]:
        out = self.job.out
        files = [out / kind / f"{rel}.png" for kind in ("masks", "heatmaps", "overlays")]
        return files + ([out / "scores" / f"{rel}.npy"] if self.job.save_scores else [])

    def _finished(self, src: str, rel: str) -> dict[str, Any] | None:
        """The summary entry of an image finished by an earlier run, or None when it must be
        computed (no record, an unreadable one, or a missing output file). A finished image
        made with other parameters or models is an error: it is never overwritten."""
        path = self.job.out / "records" / f"{rel}.json"
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or not all(p.exists() for p in self._outputs(rel)):
            return None
        if not same_run(record, self.params, self.text, self.pipe.model_ids):
            raise OutputError(_other_run_message(path, self.job.out))
        return {"image": src, "rel": rel, "ok": True, "image_score": record.get("image_score"),
                "mask_area": record.get("mask_area"), "resumed": True,
                "total_ms": (record.get("timings_ms") or {}).get("total_ms")}


class LabelWorker(_Worker):
    """``zsas label --ray``: one unreviewed automatic annotation per image in the project store
    of ``folder`` (through :func:`~zsas_gui.state.prelabel.save_prelabel`)."""

    def __init__(self, models: ModelSpec, params: MethodParams, text: TextPrompts, folder: str):
        from ..state.project import Project

        super().__init__(models, params, text)
        self.proj = Project.open(folder, create=False)

    def one(self, src: str, rel: str) -> tuple[str, dict[str, Any]]:
        from ..state.prelabel import save_prelabel

        t0 = time.perf_counter()
        result = self.pipe.run(None, read_image(src), self.params, self.text)
        saved = save_prelabel(self.proj, rel, result, self.params, self.text)
        return ("done" if saved else "kept"), {
            "image": src, "rel": rel, "ok": True, "reviewed_meanwhile": not saved,
            "image_score": round(float(result.anomaly.image_score), 6),
            "mask_area": int(result.pred_mask.sum()), "total_ms": round((time.perf_counter() - t0) * 1e3, 1)}
