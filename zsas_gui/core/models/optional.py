"""Import a model package that is optional (or noisy): one place for the message and the quiet."""

from __future__ import annotations

import importlib
import warnings
from types import ModuleType

from ..errors import CheckpointError


def import_model_package(module: str, what: str, hint: str) -> ModuleType:
    """Import ``module`` with its import-time warnings silenced, or raise :class:`CheckpointError`
    saying that ``what`` (e.g. "an HQ-SAM checkpoint") needs it and how to install it (``hint``).

    MobileSAM's and HQ-SAM's TinyViT modules import timm's deprecated module paths and re-register
    timm's ``tiny_vit_*`` model names (our CLIP models do not use them); SAM 2 imports cleanly."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(module)
    except ImportError as exc:
        raise CheckpointError(f"this is {what}, which needs a package that is not installed: {hint} "
                              f"({exc})") from exc
