"""Model building never downloads: the Hugging Face hub's offline switches, set while a model
is built (timm and open_clip fetch pretrained weights, configs and tokenizers through it)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

#: Environment switches that make Hugging Face libraries (used by timm and open_clip for
#: pretrained weights and text towers) fail at once instead of downloading.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


@contextmanager
def offline() -> Iterator[None]:
    """Within the block, the Hugging Face hub refuses to download (its environment switches,
    and its already-read constant when the hub was imported before); restored afterwards."""
    saved = {k: os.environ.get(k) for k in OFFLINE_ENV}
    os.environ.update(OFFLINE_ENV)
    constants = sys.modules.get("huggingface_hub.constants")
    saved_flag = getattr(constants, "HF_HUB_OFFLINE", None)
    if constants is not None:
        constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if constants is not None:
            constants.HF_HUB_OFFLINE = saved_flag
