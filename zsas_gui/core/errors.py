"""User-facing errors. Each message names the file or value and says what to do.

The CLI prints ``str(error)`` for any :class:`ZsasError` without a traceback; anything else is a bug.
"""

from __future__ import annotations


class ZsasError(Exception):
    """Base class for errors caused by user input (files, arguments, missing models)."""


class ImageReadError(ZsasError):
    """An image file could not be read or is unusable (corrupt, not an image, too small ...)."""


class ModelNotFoundError(ZsasError):
    """A checkpoint is neither at the given path nor in the model cache."""


class CheckpointError(ZsasError):
    """A checkpoint file exists but cannot be loaded (truncated, wrong architecture, unsafe)."""


class DownloadError(ZsasError):
    """A model download failed (network, checksum mismatch, cancelled)."""


class OutputError(ZsasError):
    """An output folder or file cannot be written."""


class RecordError(ZsasError):
    """A stored annotation record or imported label file is malformed."""


class DeviceMemoryError(ZsasError):
    """A model ran out of memory on its device (usually GPU memory) while running; the message
    says what ran and suggests a smaller model, a smaller image or the CPU."""
