"""A project's reviewed annotations exported as a dataset: the one path shared by ``zsas export``
and the app's File → Export… dialog (both get core.export's validation and atomic staging)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.errors import ZsasError
from ..core.export import DEFAULT_INCLUDE, ExportOptions, ExportReport, export


def export_project(project, fmt: str, out: str | Path, include: tuple[str, ...] = DEFAULT_INCLUDE,
                   category: str | None = None, good_from: str | Path | None = None,
                   **options: Any) -> ExportReport:
    """Export the images of ``project`` (a :class:`~zsas_gui.state.project.Project`) whose status
    is in ``include`` as ``fmt`` into ``out``. ``category`` defaults to the project folder's name;
    ``good_from``: a folder whose images are added as good images (anomalib trains on them);
    ``options``: further :class:`ExportOptions` fields (polygons, good_test_fraction, overwrite,
    test_only, ...).
    Raises ZsasError when nothing has such a status, ExportValidationError listing every problem
    (nothing written), OutputError when ``out`` may not be written."""
    items = project.export_items(include)
    if not items:
        counts = ", ".join(f"{k} {v}" for k, v in project.summary().items())
        raise ZsasError(f"{project.root}: no image has a status in {', '.join(include)}; "
                        f"review some images first (counts: {counts})")
    if good_from is not None:
        from ..core.export.common import good_items_from

        items += good_items_from(good_from)
    opts = ExportOptions(category=category or project.root.name, protect=project.root,
                         source=str(project.root), **options)
    return export(items, fmt, out, opts)
