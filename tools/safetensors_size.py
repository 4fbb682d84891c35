"""Re-derive the exact byte size of a timm model's Hugging Face ``model.safetensors``.

A safetensors file is an 8-byte header length, a JSON header (tensor names, dtypes, shapes,
offsets; padded with spaces to a multiple of 8) and the raw tensor bytes. Both depend only on
the state dict's names, dtypes and shapes, never on the values. So the size of the file timm
publishes for an architecture can be recomputed here, without the file, by saving a state dict
of zeros of the same layout with the ``safetensors`` library (``metadata={"format": "pt"}``, as
the Hub's timm files carry). The registry uses this as an independent check of the sizes that
public projects record (docs/models.md).

    python tools/safetensors_size.py vit_small_patch14_dinov2.lvd142m vit_base_patch14_dinov2.lvd142m \
        wide_resnet50_2.tv_in1k

prints ``name: bytes`` per model (state dict of ``timm.create_model(name)``, random init, no download);
``--no-batches-tracked`` leaves out BatchNorm's ``num_batches_tracked`` counters.
"""

from __future__ import annotations

import argparse


def state_dict_layout(name: str, batches_tracked: bool = True) -> dict:
    """``{parameter name: zero tensor of its dtype and shape}`` of timm model ``name``."""
    import timm
    import torch

    model = timm.create_model(name, pretrained=None)
    return {k: torch.zeros(v.shape, dtype=v.dtype) for k, v in model.state_dict().items()
            if batches_tracked or not k.endswith("num_batches_tracked")}


def safetensors_size(layout: dict) -> int:
    """Exact byte size of ``layout`` saved as safetensors with ``{"format": "pt"}`` metadata."""
    from safetensors.torch import save

    return len(save(layout, metadata={"format": "pt"}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+", help="timm model names with their pretrained tag")
    parser.add_argument("--no-batches-tracked", action="store_true",
                        help="leave out BatchNorm num_batches_tracked counters")
    args = parser.parse_args(argv)
    for name in args.names:
        layout = state_dict_layout(name, batches_tracked=not args.no_batches_tracked)
        print(f"{name}: {safetensors_size(layout)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
