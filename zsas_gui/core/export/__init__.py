"""Exports of reviewed annotations (no Qt): one module per format, all through :func:`export`.

    from zsas_gui.core.export import export, ExportOptions
    report = export(items, "mvtec", out_dir, ExportOptions(category="tile"))

Formats (layouts in docs/labels.md): ``mvtec``, ``folder`` (anomalib Folder), ``coco``,
``labelme``, ``yolo``, ``png``. Each module has ``write(prepared, dest, opts) -> list[dict]``
(manifest entries) and ``read(out) -> dict[str, (H, W) bool]`` (our reader, keyed by the exported
image's path relative to ``out``).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...vocabulary import DEFAULT_INCLUDE, FORMATS
from ..io.atomic import atomic_write_json
from .anomalib_config import no_good_message
from .common import ExportItem
from .staging import MANIFEST, staged
from .validate import ExportValidationError, export_notes, prepare

#: Class folder names each layout reserves.
RESERVED = {"mvtec": ("good",), "folder": ("good", "mask")}

__all__ = [
    "DEFAULT_INCLUDE",
    "FORMATS",
    "ExportItem",
    "ExportOptions",
    "ExportReport",
    "ExportValidationError",
    "export",
    "format_module",
    "read_manifest",
]


@dataclass(frozen=True)
class ExportOptions:
    """``category``: dataset name (mvtec/folder top folder); ``polygons``: polygons instead of
    masks/RLE (coco, labelme; yolo always uses polygons); ``good_test_fraction``: share of good
    images put in mvtec's ``test/good`` (the rest go to ``train/good``); ``overwrite``: replace a
    previous export; ``protect``: the project folder (the output may not overlap it);
    ``source``: recorded in the manifest; ``test_only``: allow an mvtec export without good
    images (anomalib can only test on it; its datamodule.yaml says so)."""

    category: str = "dataset"
    polygons: bool = False
    good_test_fraction: float = 0.0
    overwrite: bool = False
    protect: Path | None = None
    source: str = ""
    test_only: bool = False

    def __post_init__(self):
        if not 0.0 <= self.good_test_fraction <= 1.0:
            raise ValueError(f"good_test_fraction must be in [0, 1], got {self.good_test_fraction}")


@dataclass
class ExportReport:
    out: Path
    fmt: str
    n_abnormal: int = 0
    n_normal: int = 0
    classes: list[str] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (f"exported {self.n_abnormal + self.n_normal} images ({self.n_abnormal} with defects, "
                f"{self.n_normal} good; classes: {', '.join(self.classes) or 'none'}) as {self.fmt} "
                f"to {self.out}" + "".join(f"\n  note: {n}" for n in self.notes))


def format_module(fmt: str):
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    return importlib.import_module(f"{__name__}.{fmt}")


def export(items: list[ExportItem], fmt: str, out: str | Path,
           options: ExportOptions | None = None) -> ExportReport:
    """Validate ``items`` and write them as ``fmt`` into ``out`` (see :mod:`.staging` for the
    all-or-nothing replacement). Raises :class:`ExportValidationError` listing every problem
    (nothing written), OutputError when ``out`` may not be written."""
    from ... import __version__
    from .common import now_utc
    from .staging import check_target

    opts = options or ExportOptions()
    mod = format_module(fmt)
    out = Path(out).expanduser()
    check_target(out, opts.overwrite, opts.protect)
    prepared = prepare(items, RESERVED.get(fmt, ()), no_good_message(fmt, opts.test_only))
    n_normal = sum(not p.abnormal for p in prepared)
    opts = dataclasses.replace(opts, test_only=fmt == "mvtec" and opts.test_only and n_normal == 0)
    with staged(out, opts.overwrite, opts.protect) as dest:
        entries = mod.write(prepared, dest, opts)
        atomic_write_json(dest / MANIFEST, {
            "format": fmt, "created": now_utc(), "zsas_version": __version__, "source": opts.source,
            "category": opts.category, "test_only": opts.test_only, "items": entries})
    return ExportReport(out, fmt, len(prepared) - n_normal, n_normal,
                        sorted({p.safe_class for p in prepared if p.abnormal}), entries,
                        export_notes(prepared, entries, opts.test_only))


def read_manifest(out: str | Path) -> dict[str, Any]:
    """The ``zsas_export.json`` of an export: format, source and one entry per image."""
    return json.loads((Path(out) / MANIFEST).read_text(encoding="utf-8"))
