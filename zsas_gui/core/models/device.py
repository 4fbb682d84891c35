"""Device choice, precision and memory in use. torch is imported inside the functions."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import DeviceMemoryError, ZsasError

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N, mps"
_GIB = 1024 ** 3
_DTYPE_SHORT = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "float64": "fp64"}


class DeviceError(ZsasError):
    """A requested device does not exist or is not usable here."""


def _mps_available(torch: Any) -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def pick_device(pref: Any = "auto"):
    """The ``torch.device`` to run on.

    ``pref``: ``"auto"`` (cuda > mps > cpu), ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or a
    ``torch.device``. An explicit choice that is not available raises :class:`DeviceError`
    saying why and what to use instead.
    """
    import torch

    text = str(pref if pref is not None else "auto").strip().lower()
    if text in ("", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available(torch):
            return torch.device("mps")
        return torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "mps":
        if not _mps_available(torch):
            raise DeviceError("mps requested but not available (needs Apple silicon and a torch build "
                              "with MPS); use --device auto or cpu")
        return torch.device("mps")
    match = re.fullmatch(r"(?:cuda|gpu)(?::(\d+))?", text)
    if match:
        if not torch.cuda.is_available():
            why = ("this torch build has no CUDA support" if torch.version.cuda is None
                   else "no CUDA GPU is visible (driver, CUDA_VISIBLE_DEVICES?)")
            raise DeviceError(f"{text} requested but not available: {why}; use --device auto or cpu")
        index = int(match.group(1)) if match.group(1) is not None else torch.cuda.current_device()
        count = torch.cuda.device_count()
        if index >= count:
            raise DeviceError(f"{text} requested but only {count} CUDA device(s) exist "
                              f"(cuda:0{f' .. cuda:{count - 1}' if count > 1 else ''})")
        return torch.device("cuda", index)
    raise DeviceError(f"unknown device {pref!r}; use one of: {DEVICE_CHOICES}")


def half_precision_ok(device) -> bool:
    """True where we run fp16: CUDA devices only (on CPU many fp16 kernels are slow or missing;
    MPS stays fp32 until it has been checked)."""
    return getattr(device, "type", str(device).split(":")[0]) == "cuda"


def _rss_bytes() -> tuple[int | None, int | None]:
    """(current RSS, peak RSS) of this process in bytes; ``None`` where unknown."""
    current = None
    try:
        with open("/proc/self/statm") as fh:
            current = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    peak = None
    try:
        import resource

        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = int(maxrss) if sys.platform == "darwin" else int(maxrss) * 1024  # Linux: KiB
    except (ImportError, OSError, ValueError):
        pass
    return current, peak


def memory_in_use(device=None) -> dict[str, int | None]:
    """Memory figures in bytes: ``rss`` (current resident memory of this process, ``None`` if
    the OS does not say), ``peak_rss``; on CUDA also ``device_allocated`` (live tensors),
    ``device_reserved`` (allocator cache) and ``device_total``; on MPS ``device_allocated``."""
    current, peak = _rss_bytes()
    out: dict[str, int | None] = {"rss": current, "peak_rss": peak}
    kind = getattr(device, "type", None) or (str(device).split(":")[0] if device is not None else None)
    if kind == "cuda":
        import torch

        if torch.cuda.is_available():
            dev = torch.device(device) if not isinstance(device, torch.device) else device
            out["device_allocated"] = int(torch.cuda.memory_allocated(dev))
            out["device_reserved"] = int(torch.cuda.memory_reserved(dev))
            out["device_total"] = int(torch.cuda.get_device_properties(dev).total_memory)
    elif kind == "mps":
        import torch

        if _mps_available(torch):
            out["device_allocated"] = int(torch.mps.current_allocated_memory())
    return out


def _gib(n: int | None) -> str:
    return "?" if n is None else f"{n / _GIB:.1f} GiB"


def dtype_name(dtype) -> str:
    """``torch.float16``/``"float16"`` -> ``"fp16"``."""
    text = str(dtype).replace("torch.", "")
    return _DTYPE_SHORT.get(text, text)


def describe(device, dtype) -> str:
    """One line for the status bar, e.g. ``"CUDA:0 NVIDIA H100 · fp16 · GPU 3.1/79.6 GiB · RAM
    2.4 GiB"`` or ``"CPU · fp32 · RAM 1.2 GiB"``."""
    kind = getattr(device, "type", str(device).split(":")[0])
    mem = memory_in_use(device)
    parts = []
    if kind == "cuda":
        import torch

        index = getattr(device, "index", None)
        index = torch.cuda.current_device() if index is None and torch.cuda.is_available() else index
        name = torch.cuda.get_device_name(index) if torch.cuda.is_available() else "unavailable"
        parts.append(f"CUDA:{index if index is not None else 0} {name}")
    else:
        parts.append(kind.upper())
    parts.append(dtype_name(dtype))
    if "device_allocated" in mem:
        total = mem.get("device_total")
        gpu = _gib(mem["device_allocated"]) if total is None else \
            f"{mem['device_allocated'] / _GIB:.1f}/{total / _GIB:.1f} GiB"
        parts.append(f"GPU {gpu}")
    parts.append(f"RAM {_gib(mem['rss'] if mem['rss'] is not None else mem['peak_rss'])}")
    return " · ".join(parts)


#: Lower-case fragments of the errors torch (CUDA, MPS, CPU allocator) and onnxruntime raise
#: when memory runs out.
_OOM_WORDS = ("out of memory", "can't allocate memory", "failed to allocate memory")


@contextmanager
def out_of_memory_as_user_error(what: str, device: Any) -> Iterator[None]:
    """Turn running out of memory inside the block into :class:`DeviceMemoryError` (a user
    error saying ``what`` ran on ``device`` and what to try); frees the CUDA cache so the next
    call starts clean. Every other exception passes unchanged."""
    try:
        yield
    except (RuntimeError, MemoryError) as exc:
        text = str(exc)
        if not isinstance(exc, MemoryError) and not any(w in text.lower() for w in _OOM_WORDS):
            raise
        if "cuda" in str(device):
            import torch
            torch.cuda.empty_cache()
        first = text.strip().splitlines()[0][:200] if text.strip() else type(exc).__name__
        raise DeviceMemoryError(
            f"out of memory on {device} while {what} ({first}); try a smaller model "
            f"(--preset fast, or --sam vit_b), a smaller image, closing other programs using the "
            f"{'GPU' if str(device) != 'cpu' else 'memory'}, or --device cpu") from exc
