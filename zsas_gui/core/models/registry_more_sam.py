"""Registry entries for SAM 2.1 and HQ-SAM (registered by :mod:`.registry`; no torch here).

Where the numbers come from (checked while writing this file):

* SAM 2.1: file names and URLs from the sam2 repository (``checkpoints/download_ckpts.sh``:
  ``https://dl.fbaipublicfiles.com/segment_anything_2/092824/``). Meta publishes no checksum.
  The SHA-256 digests are the ones several independent public projects pin for these URLs
  (all four agree across projects); the byte sizes likewise (tiny and large: several projects;
  small and base+: one project each, consistent with the rounded sizes others print).
* HQ-SAM: file names from the sam-hq README ("Model Checkpoints"), which names the Hugging Face
  repository ``lkeab/hq-sam`` beside its Google Drive links. SysCV publishes no separate
  checksum, but each file's Git LFS pointer in that repository carries its SHA-256 and exact
  byte size, read here from the repository's own commit pages
  (``huggingface.co/lkeab/hq-sam/commit/<rev>``): 8a94b5e9 added ViT-B, 519b37f3 ViT-L,
  67ab8241 ViT-H, a3a77cd0 ViT-Tiny (its commit history: these four uploads after the initial
  commit). The URLs are pinned to a3a77cd0, where all four files are present. Cross-checks: the
  blob page of ``sam_hq_vit_b.pth`` at a3a77cd0 shows the same SHA-256; public Hugging Face
  mirrors carry the same SHA-256 (``xingren23/comfyflow-models``: ViT-B and ViT-H, with the
  same sizes; ``openart/hq-sam``: ViT-Tiny); independent projects pin the ViT-H and ViT-Tiny
  SHA-256 and the ViT-H size; the SAM-PT checkpoint guide downloads ViT-B/L/H at 67ab8241 and
  ViT-Tiny at a3a77cd0. The ViT-L digest and size rest on its commit page alone. The MD5
  digests many projects verify ViT-B/L/H with (``c6b89532``, ``08947267``, ``3560f6b6``) are
  not used here.
"""

from __future__ import annotations

from .registry import ModelSpec

_SAM2_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/"
_SAM2_SOURCE = ("URL: sam2 checkpoints/download_ckpts.sh (SAM 2.1, 092824); no published checksum: "
                "SHA-256 as pinned by several independent public projects; size {}")
_HQ_REV = "a3a77cd0a2e5e50eaa76faccf61b964732d9b35f"
_HQ_URL = f"https://huggingface.co/lkeab/hq-sam/resolve/{_HQ_REV}/"
_HQ_SOURCE = ("sam-hq README (Model Checkpoints) -> Hugging Face lkeab/hq-sam@{rev}; SHA-256 and size: "
              "the file's Git LFS pointer in commit {commit} of that repository")

#: SAM 2.1: (size name, config suffix, bytes, SHA-256, who records the size, what)
_SAM2_ROWS = (
    ("tiny", "t", 156_008_466, "7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69",
     "as several projects record it", "Tiny (39 M parameters)"),
    ("small", "s", 184_416_285, "6d1aa6f30de5c92224f8172114de081d104bbd23dd9dc5c58996f0cad5dc4d38",
     "as one project records it", "Small (46 M parameters)"),
    ("base_plus", "b+", 323_606_802, "a2345aede8715ab1d5d31b4a509fb160c5a4af1970f199d9054ccfb746c004c5",
     "as one project records it", "Base+ (81 M parameters)"),
    ("large", "l", 898_083_611, "2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318",
     "as several projects record it", "Large (224 M parameters)"),
)

#: HQ-SAM: (arch, bytes, SHA-256, the lkeab/hq-sam commit that added the file, what, extra aliases)
_HQ_ROWS = (
    ("vit_b", 379_335_069, "14a9d662cd6f5a9c2dba6d40ab0058d88d287e4a18fd6fdc6ad5fb1a3fdeaa57", "8a94b5e9",
     "ViT-B", ()),
    ("vit_l", 1_254_865_805, "e1a6c385d62bf005ded91a54d5ec55c985cfc4103ef89c08d90f39f04934c343", "519b37f3",
     "ViT-L", ()),
    ("vit_h", 2_570_940_653, "a7ac14a085326d9fa6199c8c698c4f0e7280afdbb974d2c4660ec60877b45e35", "67ab8241",
     "ViT-H", ()),
    ("vit_tiny", 42_526_881, "0f32c075ccdd870ae54db2f7630e7a0878ede5a2b06d05d6fe02c65a82fb7196", "a3a77cd0",
     "ViT-Tiny (Light HQ-SAM, TinyViT encoder)", ("light_hq_sam",)),
)


def _sam2(size: str, cfg: str, nbytes: int, sha256: str, size_src: str, what: str):
    name = f"sam2.1_hiera_{size}"
    spec = ModelSpec(
        name=name, kind="sam", arch=f"sam2.1_hiera_{cfg}", file_name=f"{name}.pt", url=_SAM2_URL + f"{name}.pt",
        size_bytes=nbytes, checksum=sha256, checksum_algo="sha256", image_size=1024, licence="Apache-2.0",
        description=f"SAM 2.1 Hiera-{what} (needs the sam2 package: zsas-gui[sam2])",
        source=_SAM2_SOURCE.format(size_src))
    return spec, (f"sam2.1_{cfg}", f"sam2_{size}", f"sam2.1-hiera-{size.replace('_', '-')}")


def _hq(arch: str, nbytes: int, sha256: str, commit: str, what: str, aliases: tuple[str, ...]):
    name = f"sam_hq_{arch}"
    spec = ModelSpec(
        name=name, kind="sam", arch=f"hq_{arch}", file_name=f"{name}.pth", url=_HQ_URL + f"{name}.pth",
        size_bytes=nbytes, checksum=sha256, checksum_algo="sha256", image_size=1024, licence="Apache-2.0",
        description=f"HQ-SAM {what}: SAM with a high-quality output token for thin structures "
                    "(needs segment-anything-hq: zsas-gui[hq])",
        source=_HQ_SOURCE.format(rev=_HQ_REV[:8], commit=commit))
    return spec, (f"hq_{arch}", f"sam-hq-{arch.replace('_', '-')}", *aliases)


#: (spec, aliases), in listing order
MORE_SAM: tuple[tuple[ModelSpec, tuple[str, ...]], ...] = (
    *(_sam2(*row) for row in _SAM2_ROWS),
    *(_hq(*row) for row in _HQ_ROWS),
)
