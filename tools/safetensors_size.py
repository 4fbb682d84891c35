"""Re-derive the exact byte size of a timm model's Hugging Face ``model.safetensors``.

A safetensors file is an 8-byte header length, a JSON header (tensor names, dtypes, shapes,
offsets; the ``safetensors`` library pads it with spaces to a multiple of 8) and the raw tensor
bytes. Both depend only on the state dict's names, dtypes and shapes, never on the values. So the
size of the file timm publishes for an architecture can be recomputed without the file, by
saving a state dict of zeros of the same layout with the ``safetensors`` library. The registry
uses this as an independent check of the sizes that public projects record (docs/models.md).

    python tools/safetensors_size.py vit_small_patch14_dinov2.lvd142m vit_base_patch14_dinov2.lvd142m \\
        wide_resnet50_2.tv_in1k

prints, per model (state dict of ``timm.create_model(name)``, random init, no download), the
file size, the tensor-data bytes and the header length unpadded / padded:
``name: size=… data=… header=…/…``.
"""

from __future__ import annotations

import argparse
import json


def state_dict_layout(name: str) -> dict:
    """``{parameter name: zero tensor of its dtype and shape}`` of timm model ``name`` (with
    BatchNorm's ``num_batches_tracked`` counters, as timm's files carry them)."""
    import timm
    import torch

    model = timm.create_model(name, pretrained=None)
    return {k: torch.zeros(v.shape, dtype=v.dtype) for k, v in model.state_dict().items()}


def safetensors_layout_size(layout: dict) -> tuple[int, int, int, int]:
    """``(file bytes, tensor-data bytes, header bytes unpadded, header bytes padded)`` of
    ``layout`` saved with the ``safetensors`` library (no ``__metadata__``)."""
    from safetensors.torch import save

    blob = save(layout)
    padded = int.from_bytes(blob[:8], "little")
    header = blob[8:8 + padded]
    json.loads(header)                      # a header, not a guess
    return len(blob), len(blob) - 8 - padded, len(header.rstrip(b" ")), padded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+", help="timm model names with their pretrained tag")
    args = parser.parse_args(argv)
    for name in args.names:
        size, data, unpadded, padded = safetensors_layout_size(state_dict_layout(name))
        print(f"{name}: size={size} data={data} header={unpadded}/{padded}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
