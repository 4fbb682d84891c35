"""Registry entries for SAM 2.1 and HQ-SAM (registered by :mod:`.registry`; no torch here).

Where the numbers come from (checked while writing this file):

* SAM 2.1: file names and URLs from the sam2 repository (``checkpoints/download_ckpts.sh``:
  ``https://dl.fbaipublicfiles.com/segment_anything_2/092824/``). Meta publishes no checksum.
  The SHA-256 digests are the ones several independent public projects pin for these URLs
  (all four agree across projects); the byte sizes likewise (tiny and large: several projects;
  small and base+: one project each, consistent with the rounded sizes others print).
* HQ-SAM (listed in ``HQ_SAM_UNVERIFIED``, not registered: see there): file names from the sam-hq README ("Model Checkpoints"); it links ViT-B/L/H to Google
  Drive and names the Hugging Face repository ``lkeab/hq-sam`` as the alternative, which is the
  direct URL used here (ViT-Tiny is linked there directly). SysCV publishes no checksum. ViT-B/L/H
  carry the MD5 digests that many independent projects verify these files with; ViT-Tiny the
  SHA-256 that several projects pin. No exact byte size was found for any HQ-SAM file:
  ``size_bytes`` is ``None`` (the checksum still verifies the download).
"""

from __future__ import annotations

from .registry import ModelSpec

_SAM2_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/"
_SAM2_SOURCE = ("URL: sam2 checkpoints/download_ckpts.sh (SAM 2.1, 092824); no published checksum: "
                "SHA-256 as pinned by several independent public projects; size {size_src}")
_HQ_URL = "https://huggingface.co/lkeab/hq-sam/resolve/main/"
_HQ_SOURCE = ("sam-hq README (Model Checkpoints; Hugging Face lkeab/hq-sam); no published checksum: "
              "{algo} as recorded by independent public projects; exact size unknown ({approx})")


def _sam2(name: str, arch: str, size: int, sha256: str, size_src: str, what: str) -> ModelSpec:
    return ModelSpec(
        name=name, kind="sam", arch=arch, file_name=f"{name}.pt", url=_SAM2_URL + f"{name}.pt",
        size_bytes=size, checksum=sha256, checksum_algo="sha256", image_size=1024,
        licence="Apache-2.0", description=f"SAM 2.1 Hiera-{what} (needs the sam2 package: zsas-gui[sam2])",
        source=_SAM2_SOURCE.format(size_src=size_src))


def _hq(arch: str, checksum: str, algo: str, approx: str, what: str) -> ModelSpec:
    name = f"sam_hq_{arch}"
    return ModelSpec(
        name=name, kind="sam", arch=f"hq_{arch}", file_name=f"{name}.pth", url=_HQ_URL + f"{name}.pth",
        size_bytes=None, checksum=checksum, checksum_algo=algo, image_size=1024, licence="Apache-2.0",
        description=f"HQ-SAM {what}: SAM with a high-quality output token for thin structures "
                    f"(~{approx}; needs segment-anything-hq: zsas-gui[hq])",
        source=_HQ_SOURCE.format(algo=algo.upper(), approx=approx))


#: (spec, aliases), in listing order
MORE_SAM: tuple[tuple[ModelSpec, tuple[str, ...]], ...] = (
    (_sam2("sam2.1_hiera_tiny", "sam2.1_hiera_t", 156_008_466,
           "7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69", "as several projects record it",
           "Tiny (39 M parameters)"), ("sam2.1_t", "sam2_tiny", "sam2.1-hiera-tiny")),
    (_sam2("sam2.1_hiera_small", "sam2.1_hiera_s", 184_416_285,
           "6d1aa6f30de5c92224f8172114de081d104bbd23dd9dc5c58996f0cad5dc4d38", "as one project records it",
           "Small (46 M parameters)"), ("sam2.1_s", "sam2_small", "sam2.1-hiera-small")),
    (_sam2("sam2.1_hiera_base_plus", "sam2.1_hiera_b+", 323_606_802,
           "a2345aede8715ab1d5d31b4a509fb160c5a4af1970f199d9054ccfb746c004c5", "as one project records it",
           "Base+ (81 M parameters)"), ("sam2.1_b+", "sam2_base_plus", "sam2.1-hiera-base-plus")),
    (_sam2("sam2.1_hiera_large", "sam2.1_hiera_l", 898_083_611,
           "2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318", "as several projects record it",
           "Large (224 M parameters)"), ("sam2.1_l", "sam2_large", "sam2.1-hiera-large")),
)

#: HQ-SAM checkpoints as far as they could be checked. NOT registered: the registry's rule
#: (tests/reliability/test_security_network.py) wants a URL pinned to a revision, a SHA-256 and
#: the exact size, and for these no exact size, no verified Hugging Face revision and (ViT-B/L)
#: no SHA-256 could be found. Load them by path (``--sam /path/to/sam_hq_vit_b.pth``): the
#: architecture is read from the file.
HQ_SAM_UNVERIFIED: tuple[tuple[ModelSpec, tuple[str, ...]], ...] = (
    (_hq("vit_b", "c6b8953247bcfdc8bb8ef91e36a6cacc", "md5", "379 MB", "ViT-B"), ("hq_vit_b", "sam-hq-vit-b")),
    (_hq("vit_l", "08947267966e4264fb39523eccc33f86", "md5", "1.25 GB", "ViT-L"), ("hq_vit_l", "sam-hq-vit-l")),
    (_hq("vit_h", "3560f6b6a5a6edacd814a1325c39640a", "md5", "2.57 GB", "ViT-H"), ("hq_vit_h", "sam-hq-vit-h")),
    (_hq("vit_tiny", "0f32c075ccdd870ae54db2f7630e7a0878ede5a2b06d05d6fe02c65a82fb7196", "sha256", "43 MB",
         "ViT-Tiny (Light HQ-SAM, TinyViT encoder)"), ("hq_vit_tiny", "sam-hq-vit-tiny", "light_hq_sam")),
)
