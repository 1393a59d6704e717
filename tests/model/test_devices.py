"""One device and precision rule for training, generation, auditions and preprocessing."""

from __future__ import annotations

import pytest
import torch

from acetune.config import Precision
from acetune.errors import ConfigError
from acetune.model.devices import precision_dtype, resolve_device, resolve_precision


def _machine(monkeypatch, *, cuda: bool, mps: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    _machine(monkeypatch, cuda=False, mps=True)
    assert resolve_device("auto").type == "mps"
    _machine(monkeypatch, cuda=False, mps=False)
    assert resolve_device("auto").type == "cpu"


def test_auto_precision_is_never_fp16_on_mps():
    assert resolve_precision(Precision.AUTO, torch.device("mps")) == torch.float32
    assert resolve_precision(Precision.AUTO, torch.device("cpu")) == torch.float32


@pytest.mark.parametrize("name, words", [("mps", "MPS is not available"), ("cuda:3", "CUDA is not available"),
                                          ("tpu", "unknown device")])
def test_an_unavailable_device_is_named(monkeypatch, name, words):
    _machine(monkeypatch, cuda=False, mps=False)
    with pytest.raises(ConfigError, match=words) as caught:
        resolve_device(name)
    assert caught.value.fix


def test_a_gpu_index_beyond_the_machine_is_named(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ConfigError, match=r"'cuda:3' does not exist \(1 CUDA devices\)"):
        resolve_device("cuda:3")


def test_explicit_precisions_name_their_dtype():
    assert [precision_dtype(p) for p in (Precision.FP32, Precision.BF16, Precision.FP16)] == [
        torch.float32, torch.bfloat16, torch.float16]


@pytest.mark.parametrize("name", ["meta", "xla"])
def test_a_device_that_cannot_hold_data_is_refused_by_name(name):
    with pytest.raises(ConfigError, match=rf"device '{name}' cannot run acetune") as caught:
        resolve_device(name)
    assert "auto, cpu, cuda" in caught.value.fix


def test_cpu_with_an_index_is_the_cpu():
    assert str(resolve_device("cpu:0")) == "cpu"


def test_bf16_on_the_cpu_is_allowed_only_with_bf16_units(monkeypatch):
    from acetune.model import devices

    monkeypatch.setattr(devices, "cpu_has_bf16_units", lambda: True)
    assert resolve_precision(Precision.BF16, torch.device("cpu")) == torch.bfloat16
    monkeypatch.setattr(devices, "cpu_has_bf16_units", lambda: False)
    with pytest.raises(ConfigError, match="no bf16 matrix units") as caught:
        resolve_precision(Precision.BF16, torch.device("cpu"))
    assert "fp32" in caught.value.fix
    with pytest.raises(ConfigError, match="fp16 on the CPU"):
        resolve_precision(Precision.FP16, torch.device("cpu"))
