"""course_lib.devices: device choice, native bf16 detection (CPU and CUDA, simulated) and the one AMP decision."""
from __future__ import annotations

import pytest
import torch

from course_lib import ConfigError, DeviceError, Protocol, build_model, fit, load_data
from course_lib.devices import AmpPolicy, amp_policy, native_bf16, pick_device
from course_lib.training import SpeedOptions, fast_speed_options

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_device_selection(capsys, monkeypatch):
    monkeypatch.setattr("course_lib.devices._announced_device", set())
    assert pick_device("cpu") == CPU
    auto = pick_device("auto")
    assert "device:" in capsys.readouterr().out  # auto announces what it picked
    if not torch.cuda.is_available():
        assert auto.type in ("cpu", "mps")
        with pytest.raises(DeviceError, match="device='auto'"):
            pick_device("cuda")
        with pytest.raises(DeviceError):
            fit(build_model("blog-cnn"), load_data("sample", train_limit=64, test_limit=64), Protocol(epochs=1),
                SpeedOptions(device="cuda"), progress=False)
    with pytest.raises(ConfigError, match="auto, cpu, cuda"):
        pick_device("gpu")


@pytest.fixture
def cpu_reports(monkeypatch):
    """Make torch report the given CPU features, as its cpuinfo-backed ``torch.cpu.get_capabilities`` does."""
    def report(**features):
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"architecture": "x86_64", **features},
                            raising=False)
    return report


@pytest.fixture
def gpu_with(monkeypatch):
    """Simulate a CUDA GPU of the given compute capability that torch calls bf16-capable (as it calls a T4)."""
    def gpu(capability):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    return gpu


def test_native_bf16_on_cpu_follows_what_torch_reports(cpu_reports, monkeypatch):
    cpu_reports(avx512_f=True, avx512_bf16=True, amx_bf16=False)
    assert native_bf16(CPU)
    cpu_reports(amx_bf16=True, amx_tile=True)
    assert native_bf16("cpu")
    cpu_reports(avx512_f=True, avx2=True)  # AVX-512 without BF16: oneDNN would emulate bf16
    assert not native_bf16(CPU)
    cpu_reports(avx512_bf16=True)
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)  # no oneDNN, no fast bf16
    assert not native_bf16(CPU)
    assert not native_bf16(torch.device("mps"))


def test_native_bf16_on_older_torch_uses_its_per_feature_checks(monkeypatch):
    monkeypatch.delattr(torch.cpu, "get_capabilities", raising=False)  # as on a torch without it
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert native_bf16(CPU)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    assert not native_bf16(CPU)
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)  # nothing to ask: not native
    assert not native_bf16(CPU)


def test_native_bf16_on_cuda_needs_compute_capability_8(gpu_with):
    gpu_with((7, 5))  # T4: torch.cuda.is_bf16_supported() says True, but bf16 is emulated
    assert torch.cuda.is_bf16_supported() and not native_bf16(CUDA)
    gpu_with((8, 0))
    assert native_bf16(CUDA)
    gpu_with((9, 0))
    assert native_bf16(CUDA)


def test_amp_policy_is_the_one_autocast_and_scaler_decision(gpu_with):
    assert amp_policy(CPU, False) == AmpPolicy(dtype=None, scaler=False, device_type="cpu")
    assert amp_policy(CPU, True) == AmpPolicy(torch.bfloat16, False, "cpu")
    assert amp_policy(CPU, "fp16") == AmpPolicy(torch.float16, False, "cpu")  # a GradScaler only on CUDA
    gpu_with((7, 5))
    assert amp_policy(CUDA, True) == AmpPolicy(torch.float16, True, "cuda")  # emulated bf16: fp16 + scaler
    assert amp_policy(CUDA, "bf16") == AmpPolicy(torch.bfloat16, False, "cuda")
    gpu_with((8, 0))
    assert amp_policy(CUDA, True) == AmpPolicy(torch.bfloat16, False, "cuda")
    assert amp_policy(CUDA, "fp16").scaler
    policy = amp_policy(CPU, "bf16")
    assert amp_policy(CUDA, policy) is policy  # an AmpPolicy passes through unchanged
    with pytest.raises(ConfigError, match="fp8"):
        amp_policy(CPU, "fp8")


def test_amp_policy_contexts_run_on_cpu():
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    with amp_policy(CPU, "bf16").autocast():
        assert torch.is_autocast_enabled("cpu") and (a @ b).dtype == torch.bfloat16
    assert not torch.is_autocast_enabled("cpu")
    with amp_policy(CPU, False).autocast():
        assert (a @ b).dtype == torch.float32
    assert amp_policy(CPU, "fp16").grad_scaler() is None


def test_fast_speed_options_turn_bf16_on_only_where_it_is_native(cpu_reports, gpu_with):
    cpu_reports(avx512_bf16=True)
    assert fast_speed_options(CPU) == SpeedOptions(device=CPU, amp="bf16", channels_last=True)
    cpu_reports(avx512_f=True)
    fast = fast_speed_options(CPU)
    assert fast == SpeedOptions(device=CPU, amp=False, channels_last=True)
    assert fast.pipeline == "memory" and fast.compile is False
    gpu_with((8, 0))
    assert fast_speed_options(CUDA) == SpeedOptions(device=CUDA, amp=True, channels_last=True,
                                                    compile="reduce-overhead")
    assert fast_speed_options(torch.device("mps")) == SpeedOptions(device=torch.device("mps"))
    with pytest.raises(ConfigError):
        fast_speed_options("tpu")
