"""Known checkpoints as data, the model cache folder, and name/path resolution.

Nothing here imports torch: ``zsas models list`` and ``--help`` stay light.

Where the numbers come from (checked while writing this file; see each entry's ``source``):

* SAM: file names and URLs from the segment-anything README ("Model Checkpoints"). Meta publishes
  no checksum; the 6 hex digits in each file name are the start of the file's MD5. The exact byte
  sizes and SHA-256 digests below are the ones recorded independently by several public projects
  that pin these files (their MD5s agree with the file-name prefixes).
* CLIP: open_clip's ``pretrained.py`` maps ``ViT-L-14-336``/``ViT-B-16`` + ``openai`` (QuickGELU) to
  the Hugging Face repos ``timm/vit_large_patch14_clip_336.openai`` and
  ``timm/vit_base_patch16_clip_224.openai`` and prefers their ``open_clip_model.safetensors``
  (not a pickle). The URLs pin a repo revision so the bytes cannot change under the checksum.
  The SHA-256 digests are the ones several public projects pinned to those revisions (Hugging Face
  shows them as the Git-LFS "SHA256" of the file); the sizes were re-derived here exactly: a
  safetensors file of the fp32 open_clip state dict of that architecture is 598,516,980 bytes
  (ViT-B-16, 149,620,737 parameters) and 1,711,828,444 bytes (ViT-L-14-336, 427,944,193).
  The original OpenAI TorchScript archives (``openaipublic.azureedge.net/clip/models/<sha256>/...``,
  digest in the URL) are pickles and are not used.

* MobileSAM: ``weights/mobile_sam.pt`` of the MobileSAM repository (Apache-2.0), the URL pinned to a
  commit. The repository publishes no checksum; the size and SHA-256 below are the ones recorded
  independently by several public projects that pin this file. Its TinyViT encoder class comes
  from the ``mobilesam-mirror`` package (``models/mobile_sam.py``).

``checksum=None`` would mean "no published checksum: size check only" (``verify`` says so); every
entry below has one. SAM 2.1 and HQ-SAM entries live in :mod:`.registry_more_sam`, the folder maps'
timm backbones (DINOv2 ViT-S/14 and ViT-B/14, Wide-ResNet-50-2) in :mod:`.registry_backbones`, each
with its sources.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import CheckpointError, ModelNotFoundError

#: Environment variable that replaces the default model cache folder.
MODELS_DIR_ENV = "ZSAS_MODELS_DIR"
APP_NAME = "zsas-gui"
#: backbone: patch-feature backbones of the folder maps (timm state dicts, ``--backbone timm:ARCH``)
KINDS = ("clip", "sam", "backbone")
CHECKSUM_ALGOS = ("sha256", "md5")
#: Suffixes that mark a string as a file path rather than a registry name.
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors", ".ckpt", ".onnx", ".json")

_KIND_LABEL = {"clip": "CLIP", "sam": "SAM", "backbone": "backbone"}
_KIND_FLAG = {"clip": "--clip", "sam": "--sam", "backbone": "--backbone-weights"}


@dataclass(frozen=True)
class ModelSpec:
    """One downloadable checkpoint and what travels with it.

    ``arch``: open_clip model name (``"ViT-L-14-336-quickgelu"``), SAM builder key (``"vit_h"``) or
    timm architecture (backbones: ``"vit_small_patch14_dinov2"``); ``pretrained_tag``: open_clip or
    timm pretrained tag the weights correspond to (``"openai"``, ``"lvd142m"``; ``""`` for SAM);
    ``file_name``: name in the model cache (unique across the registry);
    ``url``: fixed HTTPS source; ``size_bytes``: exact size or ``None`` if unknown;
    ``checksum``/``checksum_algo``: hex digest and ``"sha256"``/``"md5"``, or both ``None``
    (no published checksum: size check only); ``image_size``: square input side in pixels the
    pipeline feeds this model (CLIP: our choice, see the entries; SAM: the encoder's 1024;
    backbones: the folder maps' default side for that kind of network);
    ``source``: where url/size/checksum come from.
    """

    name: str
    kind: str
    arch: str
    file_name: str
    url: str
    size_bytes: int | None
    checksum: str | None
    checksum_algo: str | None
    image_size: int
    licence: str
    description: str
    default: bool = False
    pretrained_tag: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"ModelSpec {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if (self.checksum is None) != (self.checksum_algo is None):
            raise ValueError(f"ModelSpec {self.name!r}: checksum and checksum_algo go together")
        if self.checksum_algo is not None and self.checksum_algo not in CHECKSUM_ALGOS:
            raise ValueError(f"ModelSpec {self.name!r}: checksum_algo must be one of {CHECKSUM_ALGOS}")
        if Path(self.file_name).name != self.file_name or not self.file_name:
            raise ValueError(f"ModelSpec {self.name!r}: file_name must be a bare file name")

    @property
    def size_text(self) -> str:
        """Human-readable size (``"2.56 GB"``), ``"?"`` when unknown."""
        return format_size(self.size_bytes)


def format_size(n: int | None) -> str:
    """Bytes as decimal units, as download pages print them (``375042383`` -> ``"375 MB"``)."""
    if n is None:
        return "?"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            value = n / scale
            return f"{value:.2f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{n} B"


_SAM_URL = "https://dl.fbaipublicfiles.com/segment_anything/"
_SAM_SOURCE = ("URL: segment-anything README; size/SHA-256: recorded by several independent public "
               "projects; MD5 {md5} (its first 6 digits are in the official file name)")
_HF = "https://huggingface.co/timm/{repo}/resolve/{rev}/open_clip_model.safetensors"
_CLIP_SOURCE = ("open_clip pretrained.py -> HF {repo}@{rev}; SHA-256 as pinned by public projects at "
                "that revision; size re-derived from the architecture (exact)")

_BUILTIN = (
    ModelSpec(
        name="ViT-L-14-336-quickgelu", kind="clip", arch="ViT-L-14-336-quickgelu", pretrained_tag="openai",
        file_name="clip_vit_l_14_336_openai.safetensors",
        url=_HF.format(repo="vit_large_patch14_clip_336.openai", rev="81e38efc4637de5023b10e75a7f9bd1c6fa6b010"),
        size_bytes=1_711_828_444,
        checksum="fbc415c3d0d7b79faed8f5ccfb740c32b7c4f5ffe7283b851f89c6231c01a8e0", checksum_algo="sha256",
        # 518 = 37 x 14: the 336-px model run at 518 px (positional embedding resized on load) gives a
        # 37x37 patch grid, the resolution the zero-shot segmentation papers use (~5 s/image on 2 CPU cores).
        image_size=518,
        licence="MIT (OpenAI CLIP weights)",
        description="OpenAI CLIP ViT-L/14@336px, QuickGELU; default, best maps (37x37 grid at 518 px)",
        default=True,
        source=_CLIP_SOURCE.format(repo="timm/vit_large_patch14_clip_336.openai", rev="81e38efc"),
    ),
    ModelSpec(
        name="ViT-B-16-quickgelu", kind="clip", arch="ViT-B-16-quickgelu", pretrained_tag="openai",
        file_name="clip_vit_b_16_openai.safetensors",
        url=_HF.format(repo="vit_base_patch16_clip_224.openai", rev="977e3dd0ec55ab8da155f2fbeb6b5f54948b6e3d"),
        size_bytes=598_516_980,
        checksum="4b8699299b1e8997753c64b052ba32031449d5d853f55a039148560ee02b820f", checksum_algo="sha256",
        # 448 = 28 x 16, not the native 224: 224 px gives a 14x14 grid, too coarse to place point
        # prompts on small defects; 448 gives 28x28 for ~0.9 s/image on 2 CPU cores (224: ~0.2 s,
        # ViT-L at 518: ~5 s), measured with random weights.
        image_size=448,
        licence="MIT (OpenAI CLIP weights)",
        description="OpenAI CLIP ViT-B/16, QuickGELU; fast (28x28 grid at 448 px)",
        source=_CLIP_SOURCE.format(repo="timm/vit_base_patch16_clip_224.openai", rev="977e3dd0"),
    ),
    ModelSpec(
        name="vit_h", kind="sam", arch="vit_h", file_name="sam_vit_h_4b8939.pth",
        url=_SAM_URL + "sam_vit_h_4b8939.pth", size_bytes=2_564_550_879,
        checksum="a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e", checksum_algo="sha256",
        image_size=1024, licence="Apache-2.0",
        description="Segment Anything ViT-H (default, best masks; ~6.5 GiB RAM on CPU)", default=True,
        source=_SAM_SOURCE.format(md5="4b8939a88964f0f4ff5f5b2642c598a6"),
    ),
    ModelSpec(
        name="vit_l", kind="sam", arch="vit_l", file_name="sam_vit_l_0b3195.pth",
        url=_SAM_URL + "sam_vit_l_0b3195.pth", size_bytes=1_249_524_607,
        checksum="3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622", checksum_algo="sha256",
        image_size=1024, licence="Apache-2.0", description="Segment Anything ViT-L",
        source=_SAM_SOURCE.format(md5="0b3195507c641ddb6910d2bb5adee89c"),
    ),
    ModelSpec(
        name="vit_b", kind="sam", arch="vit_b", file_name="sam_vit_b_01ec64.pth",
        url=_SAM_URL + "sam_vit_b_01ec64.pth", size_bytes=375_042_383,
        checksum="ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912", checksum_algo="sha256",
        image_size=1024, licence="Apache-2.0", description="Segment Anything ViT-B (fastest encoder)",
        source=_SAM_SOURCE.format(md5="01ec64d29a2fca3f0661936605ae66f8"),
    ),
)

_MOBILE_SAM_COMMIT = "f706ad9c4eb7f219c00d9050e46328518ffb65d2"
_BUILTIN += (
    ModelSpec(
        name="mobile_sam", kind="sam", arch="vit_t", file_name="mobile_sam.pt",
        url=f"https://raw.githubusercontent.com/ChaoningZhang/MobileSAM/{_MOBILE_SAM_COMMIT}/weights/mobile_sam.pt",
        size_bytes=40_728_226,
        checksum="6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f", checksum_algo="sha256",
        image_size=1024, licence="Apache-2.0",
        description="MobileSAM: SAM's decoder with a TinyViT encoder (fast CPU preset; 41 MB)",
        source=(f"MobileSAM repository, weights/mobile_sam.pt at commit {_MOBILE_SAM_COMMIT[:8]}; no published "
                "checksum: size/SHA-256 as recorded by several independent public projects pinning this file"),
    ),
)

_BUILTIN_ALIASES = {
    "ViT-L-14-336-quickgelu": ("ViT-L-14-336", "ViT-L-14-336/openai", "ViT-L-14-336-quickgelu/openai",
                               "ViT-L/14@336px"),
    "ViT-B-16-quickgelu": ("ViT-B-16", "ViT-B-16/openai", "ViT-B-16-quickgelu/openai", "ViT-B/16"),
    "vit_h": ("sam_vit_h", "sam-vit-h", "vit-h"),
    "vit_l": ("sam_vit_l", "sam-vit-l", "vit-l"),
    "vit_b": ("sam_vit_b", "sam-vit-b", "vit-b"),
    "mobile_sam": ("mobilesam", "mobile-sam", "vit_t", "sam_vit_t"),
}

#: name -> spec, in listing order. Extend with :func:`register_spec`.
_SPECS: dict[str, ModelSpec] = {}
#: lower-cased name, alias or file name -> canonical name
_ALIASES: dict[str, str] = {}


def register_spec(spec: ModelSpec, aliases: tuple[str, ...] = (), replace: bool = False) -> None:
    """Add ``spec`` (and ``aliases``; its name and file name always resolve to it)."""
    keys = [spec.name, spec.file_name, *aliases]
    if not replace:
        taken = [k for k in keys if k.lower() in _ALIASES and _ALIASES[k.lower()] != spec.name]
        if spec.name in _SPECS or taken:
            raise ValueError(f"model name or alias already registered: {spec.name if not taken else taken}")
    if spec.default:
        for other in _SPECS.values():
            if other.kind == spec.kind and other.default and other.name != spec.name:
                raise ValueError(f"{other.name!r} is already the default {spec.kind} model")
    _SPECS[spec.name] = spec
    for key in keys:
        _ALIASES[key.lower()] = spec.name


for _spec in _BUILTIN:
    register_spec(_spec, _BUILTIN_ALIASES.get(_spec.name, ()))
del _spec

from .registry_backbones import BACKBONES  # their entries need ModelSpec, defined above
from .registry_more_sam import MORE_SAM

for _spec, _aliases in (*MORE_SAM, *BACKBONES):
    register_spec(_spec, _aliases)
del _spec, _aliases


def _check_kind(kind: str | None) -> None:
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS} or None, got {kind!r}")


def list_specs(kind: str | None = None) -> list[ModelSpec]:
    """All registered specs (of one ``kind``: ``"clip"``/``"sam"``/``"backbone"``), in listing order."""
    _check_kind(kind)
    return [s for s in _SPECS.values() if kind is None or s.kind == kind]


def known_names(kind: str | None = None) -> str:
    """``"vit_h (default), vit_l, vit_b"``: for error messages."""
    return ", ".join(s.name + (" (default)" if s.default else "") for s in list_specs(kind))


def find_spec(name: str) -> ModelSpec | None:
    """The spec for a name, alias or cache file name (case-insensitive), else ``None``."""
    canonical = _ALIASES.get(name.strip().lower())
    return _SPECS.get(canonical) if canonical else None


def get_spec(name: str, kind: str | None = None) -> ModelSpec:
    """The spec for a name or alias; :class:`ModelNotFoundError` listing known names otherwise.

    With ``kind``, a spec of the other kind is an error too (``vit_h`` is not a CLIP model).
    """
    _check_kind(kind)
    spec = find_spec(name)
    what = _KIND_LABEL[kind] + " model" if kind else "model"
    if spec is None:
        raise ModelNotFoundError(f"unknown {what} {name!r}. Known: {known_names(kind)}")
    if kind is not None and spec.kind != kind:
        raise ModelNotFoundError(
            f"{name!r} is a {_KIND_LABEL[spec.kind]} model, but a {_KIND_LABEL[kind]} model is needed "
            f"here. Known {_KIND_LABEL[kind]} models: {known_names(kind)}")
    return spec


def default_name(kind: str) -> str:
    """Name of the default model of ``kind`` (``"clip"`` or ``"sam"``)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    for spec in _SPECS.values():
        if spec.kind == kind and spec.default:
            return spec.name
    raise ModelNotFoundError(f"no default {_KIND_LABEL[kind]} model is registered")


def models_dir() -> Path:
    """The model cache folder: ``$ZSAS_MODELS_DIR`` if set, else the user cache dir
    (``platformdirs``: ``~/.cache/zsas-gui/models`` on Linux). Not created here."""
    env = os.environ.get(MODELS_DIR_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    import platformdirs

    return platformdirs.user_cache_path(APP_NAME) / "models"


def _models_dir_origin() -> str:
    return f"from ${MODELS_DIR_ENV}" if os.environ.get(MODELS_DIR_ENV, "").strip() else "default model cache"


def installed_path(spec: ModelSpec) -> Path:
    """Where ``spec`` lives in the model cache (whether or not it is there)."""
    return models_dir() / spec.file_name


def is_path_like(text: str) -> bool:
    """True for strings that can only mean a file path (separators, ``~``, ``.``, a weights suffix)."""
    return (any(sep in text for sep in ("/", "\\", os.sep)) or text.startswith(("~", "."))
            or text.lower().endswith(CHECKPOINT_SUFFIXES))


def resolve_checkpoint(name_or_path: str | os.PathLike | None, kind: str) -> Path:
    """The checkpoint file (or folder) to load for ``--clip``/``--sam``; see :func:`resolve_model`."""
    return resolve_model(name_or_path, kind)[0]


def resolve_model(name_or_path: str | os.PathLike | None, kind: str) -> tuple[Path, ModelSpec | None]:
    """``(path, spec)``: the checkpoint to load and the registry entry it was resolved through
    (``None`` when ``name_or_path`` was taken as a local path).

    Order: ``None`` -> the default model of ``kind``; an existing path -> that path (a bare
    registry name such as ``vit_h`` is taken as the name even if the working folder happens to
    hold an entry of that name; write ``./vit_h`` for the folder); a registry name or alias ->
    ``models_dir()/file_name`` if present (a cached file of the wrong size raises
    :class:`CheckpointError`: a cheap stat, no hashing). Anything else raises
    :class:`ModelNotFoundError` with one message naming the file, every place looked and how to
    get it.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    label, flag = _KIND_LABEL[kind], _KIND_FLAG[kind]
    text = default_name(kind) if name_or_path is None else os.fspath(name_or_path).strip()
    if not text:
        raise ModelNotFoundError(f"empty {label} model name; use a registry name ({known_names(kind)}) "
                                 f"or a file path")
    spec = find_spec(text)
    path = Path(text).expanduser()
    if (spec is None or is_path_like(text)) and path.exists():
        return path, None
    if spec is None:
        if is_path_like(text) or isinstance(name_or_path, os.PathLike):
            raise ModelNotFoundError(f"{label} checkpoint not found: {path.absolute()} (no such file or "
                                     f"folder; given as {flag} {text})")
        raise ModelNotFoundError(f"unknown {label} model {text!r}: not a registry name and no such file. "
                                 f"Known {label} models: {known_names(kind)}; or pass a checkpoint file "
                                 f"with {flag} PATH")
    spec = get_spec(text, kind)  # raises if it is a model of the other kind
    target = installed_path(spec)
    if target.is_file():
        size = target.stat().st_size
        if spec.size_bytes is not None and size != spec.size_bytes:
            raise CheckpointError(
                f"{target} is {size} bytes but {spec.name} should be {spec.size_bytes} "
                f"({'incomplete copy' if size < spec.size_bytes else 'a different file'}); delete it and "
                f"run `zsas models download {spec.name}`, or pass your file with {flag} PATH")
        return target, spec
    raise ModelNotFoundError(_missing_message(spec, target, text))


def _missing_message(spec: ModelSpec, target: Path, given: str) -> str:
    label, flag = _KIND_LABEL[spec.kind], _KIND_FLAG[spec.kind]
    alias = f" (given as {given!r})" if given != spec.name else ""
    lines = [(f"{label} model {spec.name!r}{alias} is not installed: {spec.file_name} "
              f"({spec.size_text}) was not found."),
             "Looked in:",
             f"  {target}  ({_models_dir_origin()})"]
    part = target.with_name(target.name + ".part")
    if part.is_file():
        lines.append(f"  {part} is a partial download ({format_size(part.stat().st_size)} of "
                     f"{spec.size_text}); the download command below resumes it")
    lines += ["To get it, either:",
              f"  zsas models download {spec.name}      (from {spec.url})",
              f"  or pass a local copy of that file: {flag} /path/to/{spec.file_name}",
              f"  or set {MODELS_DIR_ENV} to a folder that holds {spec.file_name}"]
    return "\n".join(lines)
