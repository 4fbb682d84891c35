"""Registry entries for the folder maps' timm backbones (``--backbone timm:ARCH``; no torch here).

Each entry is timm's own Hugging Face export (``timm/<arch>.<tag>``, ``model.safetensors``: timm
parameter names, no pickle), the URL pinned to a repository revision. Nobody publishes a checksum
file for them; the SHA-256 (the file's Git LFS oid), byte size and revision below are the ones
public projects pin, cross-checked (docs/models.md lists every source):

* DINOv2 ViT-S/14 (``timm/vit_small_patch14_dinov2.lvd142m``): revision ``4610ca14`` and SHA-256
  ``04d27f34...`` pinned by several unrelated projects, the size 88,240,510 bytes by two (one of
  them pins revision, SHA-256 and size together). Re-derived here: 22,056,192 float32 parameters
  (88,224,768 bytes of tensor data, exact) + a 15,734-byte header, between our own unpadded
  (15,731) and padded (15,736) serialisation of timm's state-dict layout.
* DINOv2 ViT-B/14 (``timm/vit_base_patch14_dinov2.lvd142m``): revision ``4685c99d`` and SHA-256
  ``55cbb5d8...`` pinned by several projects, size 346,334,872 bytes by two; re-derived exactly.
* Wide-ResNet-50-2, torchvision's ImageNet weights (``timm/wide_resnet50_2.tv_in1k``, the
  PatchCore backbone): SHA-256 ``df6fb6c4...`` pinned by two projects, the size 275,835,296 bytes
  recorded by one and re-derived here exactly (``timm/wide_resnet50_2.racm_in1k``, the same layout,
  is pinned elsewhere at the same size). Revision ``343c5fa5`` is pinned by one project only: if
  it were wrong the download fails (HTTP 404); it can never deliver other bytes (SHA-256 and size
  decide).

``tools/safetensors_size.py`` re-derives the sizes. Licences: DINOv2 weights Apache-2.0 (Meta
re-licensed them from CC-BY-NC-4.0 on 2023-08-31; timm's config says apache-2.0), torchvision's
weights BSD-3-Clause.
"""

from __future__ import annotations

from pathlib import Path

from .registry import ModelSpec

_HF = "https://huggingface.co/timm/{repo}/resolve/{rev}/model.safetensors"
_SOURCE = ("timm's Hugging Face export timm/{repo}@{rev}; pinned by public projects: SHA-256 (Git LFS oid) "
           "by {sha}, size by {size}, revision by {revs}; size re-derived from timm's state-dict layout "
           "({derived}); docs/models.md")

#: (name, timm arch, pretrained tag, revision, bytes, SHA-256, input side, licence, what,
#:  (how many projects pin the SHA-256, the size, the revision), derivation, aliases)
_ROWS = (
    ("dinov2_vits14", "vit_small_patch14_dinov2", "lvd142m", "4610ca143709d58a633b6397a74412c2c3842454",
     88_240_510, "04d27f3400d059fc0cfd7d17dd1909a75bf3ea8fb3eeb48b97cb99e57ee20081", 448, "Apache-2.0",
     "DINOv2 ViT-S/14 (LVD-142M, self-supervised): folder-map backbone, 32x32 patches at 448 px",
     ("several", "two", "several"), "tensor data exact, header within 2 bytes", ("dinov2-s", "dinov2_s14")),
    ("dinov2_vitb14", "vit_base_patch14_dinov2", "lvd142m", "4685c99dabffe5affac90bd99dbffd25801ae58d",
     346_334_872, "55cbb5d887b336d430e649c277b85a1429e724871f9d02ac16203235886d8c7b", 448, "Apache-2.0",
     "DINOv2 ViT-B/14 (LVD-142M, self-supervised): folder-map backbone, 32x32 patches at 448 px",
     ("several", "two", "several"), "exact", ("dinov2-b", "dinov2_b14")),
    ("wide_resnet50_2", "wide_resnet50_2", "tv_in1k", "343c5fa59ca8a131e0cdf42144a641b36a0387c2",
     275_835_296, "df6fb6c4824769769de18e14088475fd6ee94236849aa4e5d8022ba9d9a9a16c", 256, "BSD-3-Clause",
     "Wide-ResNet-50-2, torchvision ImageNet weights (PatchCore's backbone): folder-map backbone at 256 px",
     ("two", "one", "one"), "exact", ("wrn50", "wrn50_2", "wide-resnet50-2")),
)


def _entry(name, arch, tag, rev, nbytes, sha256, side, licence, what, pins, derived, aliases):
    repo = f"{arch}.{tag}"
    spec = ModelSpec(
        name=name, kind="backbone", arch=arch, pretrained_tag=tag,
        file_name=f"{repo.replace('.', '_')}.safetensors", url=_HF.format(repo=repo, rev=rev),
        size_bytes=nbytes, checksum=sha256, checksum_algo="sha256", image_size=side, licence=licence,
        description=f"{what} (--backbone timm:{arch})",
        source=_SOURCE.format(repo=repo, rev=rev[:8], sha=pins[0], size=pins[1], revs=pins[2], derived=derived))
    return spec, (repo, arch, *aliases)


#: (spec, aliases), in listing order; the timm names (``arch`` and ``arch.tag``) are aliases
BACKBONES: tuple[tuple[ModelSpec, tuple[str, ...]], ...] = tuple(_entry(*row) for row in _ROWS)


def registry_backbone(name: str) -> tuple[str, Path] | None:
    """``(timm arch, installed file)`` for a registry backbone (``dinov2_vits14``, or its timm name
    ``vit_small_patch14_dinov2[.lvd142m]``), ``None`` for a name the registry does not know.

    A registered backbone that is not installed raises :class:`ModelNotFoundError` saying how to
    download it (never downloads); a cached file of the wrong size raises :class:`CheckpointError`.
    """
    from . import registry

    spec = registry.find_spec(name)
    if spec is None or spec.kind != "backbone":
        return None
    path, _ = registry.resolve_model(spec.name, "backbone")
    return spec.arch, path


def timm_arch(name: str) -> str:
    """The timm architecture a registry backbone name stands for (``dinov2_vits14`` ->
    ``vit_small_patch14_dinov2``); any other name unchanged."""
    from . import registry

    spec = registry.find_spec(name)
    return spec.arch if spec is not None and spec.kind == "backbone" else name
