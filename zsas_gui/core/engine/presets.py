"""Model presets as data: which CLIP and SAM a preset loads, for which device, at what cost.

    preset = get_preset("fast")
    pipe = Pipeline.from_names(clip=preset.clip_arg, sam=preset.sam, device=preset.device)

``clip_arg`` carries the CLIP input side (``"ViT-B-16-quickgelu@224"``, understood by
``models.loading.load_clip``). Explicit ``--clip``/``--sam`` override a preset's choice (CLI:
``cli/common.py``). The costs were measured on 2 shared CPU cores, fp32, random weights of the
same architectures (docs/benchmarks.md, "Refinement and presets"); ``measured_on`` says where. No torch import here: the CLI lists presets in ``--help``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ZsasError


@dataclass(frozen=True)
class Preset:
    """One choice of models. ``clip``/``sam``: registry names; ``clip_size``: CLIP input side in
    pixels; ``device``: what it is meant for ("cpu" or "cuda"; "auto" picks what is there);
    ``first_result_s``: seconds from a new 1024-px image to its mask (CLIP map + SAM embedding +
    points + cascade), measured where ``measured_on`` says; ``next_image_ms``: the app showing
    an image of a precomputed folder (features on disk, its automatic result computed ahead)."""

    name: str
    clip: str
    clip_size: int
    sam: str
    device: str
    summary: str
    first_result_s: float
    next_image_ms: float
    measured_on: str

    @property
    def clip_arg(self) -> str:
        """The ``--clip`` value that loads this preset's CLIP at its size."""
        return f"{self.clip}@{self.clip_size}"

    @property
    def cost_text(self) -> str:
        """``"~1.6 s per new image, ~60 ms to show a precomputed one (2 CPU cores)"``."""
        return (f"~{self.first_result_s:g} s per new image, ~{self.next_image_ms:g} ms to show a "
                f"precomputed one ({self.measured_on})")

    def describe(self) -> str:
        return (f"{self.name}: {self.summary}. CLIP {self.clip_arg}, SAM {self.sam}, for {self.device}; "
                f"{self.cost_text}")


PRESETS: dict[str, Preset] = {p.name: p for p in (
    # benchmarks/bench_presets.py (2 threads, quiet machine): first result 1.0 s, next image 20 ms
    Preset(name="fast", clip="ViT-B-16-quickgelu", clip_size=224, sam="mobile_sam", device="cpu",
           summary="CPU: MobileSAM (TinyViT encoder) + CLIP ViT-B/16 at 224 px (14x14 map)",
           first_result_s=1.0, next_image_ms=20, measured_on="2 CPU cores, fp32"),
    # ... --preset balanced --threads 1: CPU time of one core (wall time there: 46 s);
    # next image: bench_gui_next.py --preset balanced (2 threads) 22 ms
    # SAM 2.1 Hiera-T (--sam sam2.1_hiera_tiny, the sam2 extra) encodes 5x cheaper than ViT-B
    # (3.1 vs 16.0 CPU s) and its restructured decoder's cascade costs 1.16x ViT-B's default one
    # (129 vs 111 CPU ms, bench_backends.py): the cheaper balanced alternative; not the preset
    # while it needs an optional extra and its masks are unchecked on real weights (D28)
    Preset(name="balanced", clip="ViT-B-16-quickgelu", clip_size=448, sam="vit_b", device="auto",
           summary="SAM ViT-B + CLIP ViT-B/16 at 448 px (28x28 map)",
           first_result_s=24, next_image_ms=22, measured_on="one CPU core for a new image, 2 for the next, fp32"),
    # SAM ViT-H ~43 s + CLIP ViT-L/14-336 at 518 ~5.6 s on 2 idle cores (issue 7's figures, not
    # rerun here); the decoder is the same for every SAM size; no GPU was available to measure;
    # next image: bench_gui_next.py --preset best --images 6 (2 CPU cores) 101 ms
    Preset(name="best", clip="ViT-L-14-336-quickgelu", clip_size=518, sam="vit_h", device="cuda",
           summary="GPU: SAM ViT-H + CLIP ViT-L/14-336 at 518 px (37x37 map), the paper setting",
           first_result_s=49, next_image_ms=100,
           measured_on="2 CPU cores, fp32; a GPU takes a fraction, not measured yet"),
)}


#: The preset name that means "the one recommended for this computer" (:func:`recommended_preset`).
AUTO = "auto"
AUTO_TEXT = "auto = fast on a computer without a CUDA GPU, best with one"


def preset_names() -> tuple[str, ...]:
    """The concrete presets (``auto`` picks one of them)."""
    return tuple(PRESETS)


def _cuda_available() -> bool:
    import torch  # lazily: only when "auto" is resolved

    return bool(torch.cuda.is_available())


def recommended_preset(device: str = "auto", has_cuda: bool | None = None) -> Preset:
    """The models recommended for this computer: ``best`` with a CUDA GPU (``device`` "cuda…",
    or "auto" and one is there), ``fast`` otherwise (CPU, MPS: about 1 s per new image on 2 CPU
    cores, against ~50 s for best). ``has_cuda``: the answer to "is there one" (None: ask torch)."""
    dev = str(device or "auto").strip().lower()
    if dev.startswith("cuda"):
        return PRESETS["best"]
    if dev != "auto":
        return PRESETS["fast"]
    return PRESETS["best" if (_cuda_available() if has_cuda is None else has_cuda) else "fast"]


def get_preset(name: str, device: str = "auto") -> Preset:
    """The preset called ``name`` (case-insensitive; ``auto``: :func:`recommended_preset` for
    ``device``); :class:`ZsasError` listing the known ones."""
    key = str(name).strip().lower()
    if key == AUTO:
        return recommended_preset(device)
    preset = PRESETS.get(key)
    if preset is None:
        raise ZsasError(f"unknown preset {name!r}; known presets: {', '.join(preset_names())}, {AUTO}")
    return preset
