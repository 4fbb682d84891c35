"""The project's defaults, stored in ``FOLDER/.zsas/project.json`` under ``"defaults"``: the method
parameters and the text prompts every image of the project starts from until it is edited, and
the "heatmap from" choice (``map_source``: the text map or a folder map, the same for all) with
its options (:class:`MapOptions`: the folder maps' backbone and the τ mode). The
object name is derived from the folder name as ``zsas eval`` does (``metal_nut`` -> "metal nut";
a ``test``/``train`` folder of an MVTec category takes the category's name) until the user edits
it; then the edited name is the project's."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from ..core.evaluation.run import category_object_name
from ..core.io.atomic import atomic_write_json
from ..core.types import MethodParams, TextPrompts

KEY = "defaults"
MAP_SOURCE = "map_source"      # the "heatmap from" choice, in the defaults entry
MAP_OPTIONS = "map_options"    # its options (MapOptions), in the defaults entry
#: τ modes of the folder maps (ALGORITHM.md §1b, decisions D30): ``relative`` = τ on each
#: image's min-max (the text map's only mode); ``absolute`` = τ on the folder scale;
#: ``gate`` = absolute τ and the gate at 0.5, the good (calibration) images' level.
TAU_MODES = ("relative", "absolute", "gate")
#: MVTec split folders: opened directly, the object is their parent (the category)
SPLIT_FOLDERS = ("test", "train", "ground_truth")


def derived_object_name(project) -> str:
    root = project.root
    name = root.parent.name if root.name in SPLIT_FOLDERS and root.parent.name else root.name
    return category_object_name(name)


def load_project_defaults(project) -> tuple[MethodParams, TextPrompts]:
    """(params, text prompts) stored in the project, else the method's defaults with the object
    name derived from the folder. A stored entry that cannot be read is replaced by those (and
    the problem added to ``project.problems``)."""
    stored = project.settings.get(KEY)
    if isinstance(stored, dict) and (stored.keys() - {MAP_SOURCE, MAP_OPTIONS}):   # params stored
        try:
            return MethodParams.from_dict(stored["params"]), TextPrompts.from_dict(stored["text_prompts"])
        except (ValueError, KeyError, TypeError) as exc:
            project.problems.append(f"{project.store.project_file}: unreadable '{KEY}' ({exc}); "
                                    "using the default parameters and text prompts")
    return MethodParams(), TextPrompts(object_name=derived_object_name(project))


def save_project_defaults(project, params: MethodParams, text_prompts: TextPrompts) -> None:
    """Store the defaults in project.json (atomic; the file's other fields are kept as they are
    on disk)."""
    _save_entry(project, {"params": params.to_dict(), "text_prompts": text_prompts.to_dict()})


def _save_entry(project, changes: dict[str, Any]) -> None:
    """Store ``changes`` in the defaults entry of project.json (atomic; the entry's other fields
    and the file's other fields are kept as they are on disk)."""
    path = project.store.project_file
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = dict(project.settings)
    if not isinstance(data, dict):
        data = dict(project.settings)
    old = data.get(KEY)
    entry = {**(old if isinstance(old, dict) else {}), **changes}
    data[KEY] = entry
    atomic_write_json(path, data)
    project.settings[KEY] = entry


def load_map_source(project) -> str:
    """The project's "heatmap from" choice (``MAP_KINDS``: text, mutual, references, auto);
    ``text`` when none (or an unknown one) is stored."""
    from ..core.maps.folder_select import MAP_KINDS

    stored = project.settings.get(KEY)
    kind = stored.get(MAP_SOURCE) if isinstance(stored, dict) else None
    return kind if kind in MAP_KINDS else "text"


def save_map_source(project, kind: str) -> None:
    """Store the project's "heatmap from" choice with its defaults (atomic)."""
    _save_entry(project, {MAP_SOURCE: kind})


@dataclass(frozen=True)
class MapOptions:
    """The folder maps' options of a project: ``backbone`` (``clip``: the loaded CLIP image
    tower, or ``timm:ARCH``) with its local state dict file ``weights`` (timm only), and the
    ``tau_mode`` (:data:`TAU_MODES`)."""

    backbone: str = "clip"
    weights: str = ""
    tau_mode: str = "relative"

    @classmethod
    def from_stored(cls, data: Any) -> MapOptions:
        """The stored entry, each unknown or malformed field at its default."""
        d = data if isinstance(data, dict) else {}
        backbone = d.get("backbone")
        ok = isinstance(backbone, str) and (backbone == "clip" or backbone.startswith("timm:") and len(backbone) > 5)
        weights = d.get("weights")
        tau_mode = d.get("tau_mode")
        return cls(backbone=backbone if ok else "clip",
                   weights=weights if ok and isinstance(weights, str) else "",
                   tau_mode=tau_mode if tau_mode in TAU_MODES else "relative")

    @property
    def absolute(self) -> bool:
        return self.tau_mode != "relative"


def load_map_options(project) -> MapOptions:
    stored = project.settings.get(KEY)
    return MapOptions.from_stored(stored.get(MAP_OPTIONS) if isinstance(stored, dict) else None)


def save_map_options(project, options: MapOptions) -> None:
    """Store the project's folder-map options with its defaults (atomic)."""
    _save_entry(project, {MAP_OPTIONS: asdict(options)})


def differences(params: MethodParams, text_prompts: TextPrompts,
                defaults: tuple[MethodParams, TextPrompts] | None) -> list[str]:
    """Names of the values of an image that differ from the project's defaults (readable words)."""
    if defaults is None:
        return []
    d_params, d_text = defaults
    out = [name for name, value in params.to_dict().items() if d_params.to_dict().get(name) != value]
    if text_prompts.object_name != d_text.object_name:
        out.append("object name")
    if (text_prompts.normal_states, text_prompts.abnormal_states, text_prompts.templates) != (
            d_text.normal_states, d_text.abnormal_states, d_text.templates):
        out.append("text prompts")
    return out
