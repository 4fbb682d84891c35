"""Device choice, precision and memory reporting (CPU here; CUDA/MPS availability is simulated)."""

from __future__ import annotations

import sys

import pytest
import torch

from zsas_gui.core.errors import ZsasError
from zsas_gui.core.models import device as dev


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.fixture
def one_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)


def test_auto_prefers_cuda_then_mps_then_cpu(no_gpu, monkeypatch):
    assert dev.pick_device() == torch.device("cpu")
    assert dev.pick_device(None) == torch.device("cpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert dev.pick_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert dev.pick_device("AUTO") == torch.device("cuda", 0)


def test_auto_on_this_machine_matches_torch():
    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if torch.backends.mps.is_available() else "cpu")
    assert dev.pick_device("auto").type == expected


@pytest.mark.parametrize("pref", ["cpu", " CPU ", torch.device("cpu")])
def test_cpu_is_always_available(pref):
    assert dev.pick_device(pref) == torch.device("cpu")


def test_explicit_cuda_without_cuda_is_a_clear_error(no_gpu):
    for pref in ("cuda", "cuda:0", "gpu"):
        with pytest.raises(dev.DeviceError, match=f"^{pref} requested but not available") as info:
            dev.pick_device(pref)
        assert isinstance(info.value, ZsasError) and "--device auto or cpu" in str(info.value)


def test_explicit_cuda_index_is_checked(one_cuda):
    assert dev.pick_device("cuda") == torch.device("cuda", 0)
    assert dev.pick_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(dev.DeviceError, match="cuda:3 requested but only 1 CUDA device"):
        dev.pick_device("cuda:3")


def test_mps_and_unknown_devices(no_gpu):
    with pytest.raises(dev.DeviceError, match="mps requested but not available"):
        dev.pick_device("mps")
    with pytest.raises(dev.DeviceError, match="unknown device 'tpu'.*auto, cpu, cuda, cuda:N, mps"):
        dev.pick_device("tpu")


def test_half_precision_only_on_cuda():
    assert dev.half_precision_ok(torch.device("cuda", 1)) is True
    assert dev.half_precision_ok("cuda:0") is True
    assert dev.half_precision_ok(torch.device("cpu")) is False
    assert dev.half_precision_ok(torch.device("mps")) is False


def test_memory_in_use_on_cpu():
    mem = dev.memory_in_use(torch.device("cpu"))
    assert set(mem) == {"rss", "peak_rss"}
    if sys.platform.startswith("linux"):
        assert mem["rss"] > 10 * 2 ** 20            # torch alone is tens of MiB
        assert mem["peak_rss"] >= mem["rss"] * 0.5
    assert set(dev.memory_in_use()) == {"rss", "peak_rss"}      # no device: process memory only


def test_describe_for_the_status_bar():
    text = dev.describe(torch.device("cpu"), torch.float32)
    assert text.startswith("CPU · fp32 · RAM ") and text.endswith(" GiB")
    assert dev.dtype_name(torch.float16) == "fp16" and dev.dtype_name("bfloat16") == "bf16"
    assert dev.dtype_name(torch.int8) == "int8"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_memory_and_description():
    d = dev.pick_device("cuda")
    x = torch.zeros(1024, 1024, device=d)
    mem = dev.memory_in_use(d)
    assert mem["device_allocated"] >= x.numel() * 4 and mem["device_total"] > mem["device_allocated"]
    assert dev.describe(d, torch.float16).startswith(f"CUDA:{d.index} ") and " · fp16 · GPU " in dev.describe(
        d, torch.float16)
