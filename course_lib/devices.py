"""Devices: which one to train on, what it computes natively, and the one mixed-precision decision that
training, evaluation and every timing loop share."""
from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import dataclass

import torch

from .errors import ConfigError, DeviceError

DEVICE_NAMES = ("auto", "cpu", "cuda", "cuda:N", "mps")
_announced_device: set[str] = set()


def flush_denormals() -> None:
    """Flush denormal floats to zero, process-wide: they slow nets without BatchNorm several-fold on a CPU.

    ``setup()``, ``fit`` and the timing loop call it, so a timed step is ``fit``'s step; importing changes nothing."""
    torch.set_flush_denormal(True)


def mps_available() -> bool:
    """Whether Apple's MPS backend is usable here."""
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def sync_device(device: torch.device) -> None:
    """Wait for ``device``'s queued work (CUDA and MPS run asynchronously), so a timer measures the work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def pick_device(device: str | torch.device | None = "auto", verbose: bool = True) -> torch.device:
    """Resolve ``auto`` (CUDA, then Apple MPS, then CPU; announced once), ``cpu``, ``cuda[:N]`` or ``mps``; a device
    this machine lacks raises :class:`DeviceError` saying what is available instead."""
    device = str(device or "auto")  # a torch.device, or anything else a user may pass, as its name
    name = device.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            picked, why = torch.device("cuda"), f"CUDA GPU: {torch.cuda.get_device_name(0)}"
        elif mps_available():
            picked, why = torch.device("mps"), "Apple GPU (MPS)"
        else:
            picked, why = torch.device("cpu"), "no CUDA or MPS GPU found"
        if verbose and "auto" not in _announced_device:
            print(f"[course_lib] device: {picked.type} ({why})")
            _announced_device.add("auto")
        return picked
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DeviceError(f"device {device!r} was asked for, but this machine has no usable CUDA GPU "
                              f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}). Fix: use "
                              f"device='auto' (picks {'mps' if mps_available() else 'cpu'} here) or device='cpu'.")
        index, count = name[5:] if name != "cuda" else "0", torch.cuda.device_count()
        if not index.isdigit() or int(index) >= count:
            raise DeviceError(f"device {device!r}: only {count} CUDA device(s) present. "
                              f"Fix: use cuda:0 .. cuda:{count - 1}.")
        return torch.device(name)
    if name == "mps":
        if not mps_available():
            raise DeviceError("device 'mps' was asked for, but Apple's MPS backend is not available here. "
                              "Fix: use device='auto' or device='cpu'.")
        return torch.device("mps")
    raise ConfigError(f"unknown device {device!r}; valid devices are: {', '.join(DEVICE_NAMES)}")


def as_device(device: str | torch.device | None) -> torch.device:
    """A ``torch.device`` as it is (present or not), a name through :func:`pick_device` (quietly)."""
    return device if isinstance(device, torch.device) else pick_device(device, verbose=False)


# --------------------------------------------------------------------------- mixed precision

# CPU features (as torch's cpuinfo names them) with bf16 dot-product instructions. Elsewhere oneDNN
# emulates bf16, which is slower than fp32. Arm's bf16 is left out until it is measured.
_CPU_BF16_FEATURES = ("avx512_bf16", "amx_bf16")


def cpu_features() -> dict:
    """The CPU features torch detected, e.g. ``{"avx512_bf16": True, ...}``; ``{}`` if this torch cannot say."""
    get_capabilities = getattr(torch.cpu, "get_capabilities", None)  # newer torch: the whole cpuinfo report
    if get_capabilities is not None:
        return dict(get_capabilities())
    features = {}  # older torch: one private check per feature; AMX tiles come with AMX-BF16 on every such CPU
    for key, check in (("avx512_bf16", "_is_avx512_bf16_supported"), ("amx_bf16", "_is_amx_tile_supported")):
        with contextlib.suppress(Exception):
            features[key] = bool(getattr(torch.cpu, check)())
    return features


def native_bf16(device: str | torch.device = "cpu") -> bool:
    """Whether ``device`` computes bfloat16 natively, not by emulation (slower than fp32). CPU: AVX512-BF16 or
    AMX-BF16 as torch reports it, and oneDNN. CUDA: capability 8.0+ (``is_bf16_supported`` counts emulation)."""
    dev = as_device(device)
    if dev.type == "cuda":
        return torch.cuda.is_available() and tuple(torch.cuda.get_device_capability(dev)) >= (8, 0)
    if dev.type == "cpu":
        features = cpu_features()
        return torch.backends.mkldnn.is_available() and any(features.get(k) for k in _CPU_BF16_FEATURES)
    return False


@dataclass(frozen=True)
class AmpPolicy:
    """How a step runs in mixed precision: ``dtype`` None (fp32), bfloat16 or float16; ``scaler``: whether
    gradients need a GradScaler (fp16 on CUDA only: bf16 has fp32's range)."""

    dtype: torch.dtype | None
    scaler: bool
    device_type: str

    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast context for this policy (a no-op for fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """A fresh GradScaler when the policy needs one, else None."""
        return torch.amp.GradScaler(self.device_type) if self.scaler else None


def check_amp(amp) -> None:
    """Raise :class:`ConfigError` unless ``amp`` is None, False, True, ``"bf16"`` or ``"fp16"``."""
    if not (amp is None or isinstance(amp, (bool, AmpPolicy)) or amp in ("bf16", "fp16")):
        raise ConfigError(f"unknown amp setting {amp!r}; valid: False, True, 'bf16', 'fp16'")


def amp_policy(device: str | torch.device, amp: bool | str | AmpPolicy = False) -> AmpPolicy:
    """Autocast dtype and GradScaler for ``amp`` on ``device``: False (fp32), True (bf16, but fp16 on a CUDA GPU
    without native bf16), ``"bf16"`` or ``"fp16"``; an :class:`AmpPolicy` is returned unchanged."""
    if isinstance(amp, AmpPolicy):
        return amp
    check_amp(amp)
    dev = as_device(device)
    if amp is None or amp is False:
        dtype = None
    elif amp is True:
        dtype = torch.float16 if dev.type == "cuda" and not native_bf16(dev) else torch.bfloat16
    else:
        dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return AmpPolicy(dtype=dtype, scaler=dtype == torch.float16 and dev.type == "cuda", device_type=dev.type)


# --------------------------------------------------------------------------- the machine a measurement ran on


def describe_machine(device: str | torch.device | None = None) -> dict:
    """What a measurement ran on, as JSON values: the CPU, cores, torch threads, versions, whether a GPU is here;
    with ``device``: its name (a CUDA GPU's model, else the device type) and whether it has native bf16."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:  # Linux names the model
        cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    info = dict(cpu=cpu, cpu_cores=os.cpu_count(), torch_threads=torch.get_num_threads(),
                platform=platform.platform(terse=True), python=platform.python_version(), torch=torch.__version__,
                cuda=torch.version.cuda, cudnn=cudnn, gpu_present=torch.cuda.is_available() or mps_available())
    if device is not None:
        dev = torch.device(device)
        on_gpu = dev.type == "cuda" and torch.cuda.is_available()
        info.update(device=str(dev), device_name=torch.cuda.get_device_name(dev) if on_gpu else dev.type,
                    native_bf16=native_bf16(dev))
        if on_gpu:
            info["compute_capability"] = ".".join(map(str, torch.cuda.get_device_capability(dev)))
    return info
