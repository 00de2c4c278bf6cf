"""Devices: which one to train on, what it computes natively, and the one mixed-precision decision.

:func:`pick_device` resolves a device name; :func:`native_bf16` says whether the device has fast
bfloat16 (from what torch itself reports, never from a list of CPU names); :func:`amp_policy` turns
an ``amp`` setting into autocast's dtype and the GradScaler decision, for training, evaluation and
every timing loop alike. All are re-exported by :mod:`course_lib.training`.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from .errors import ConfigError, DeviceError

DEVICE_NAMES = ("auto", "cpu", "cuda", "cuda:N", "mps")
_announced_device: set[str] = set()


def mps_available() -> bool:
    """Whether Apple's MPS backend is usable here."""
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def sync_device(device: torch.device) -> None:
    """Wait until ``device`` has finished its queued work (CUDA and MPS run asynchronously), so a
    timer read after this call measures the work, not just its launch. A no-op on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def pick_device(device: str | torch.device | None = "auto", verbose: bool = True) -> torch.device:
    """Resolve a device name: ``auto`` (CUDA, then Apple MPS, then CPU), ``cpu``, ``cuda[:N]``, ``mps``.

    ``auto`` announces its pick once per process. Asking for a device this machine
    does not have raises :class:`DeviceError` saying what is available instead.
    """
    if isinstance(device, torch.device):
        device = str(device)
    name = (device or "auto").strip().lower()
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
            raise DeviceError(
                f"device {device!r} was asked for, but this machine has no usable CUDA GPU "
                f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}). "
                f"Fix: use device='auto' (picks {'mps' if mps_available() else 'cpu'} here) or device='cpu'."
            )
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise DeviceError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) present. "
                              f"Fix: use cuda:0 .. cuda:{torch.cuda.device_count() - 1}.")
        return torch.device(name)
    if name == "mps":
        if not mps_available():
            raise DeviceError("device 'mps' was asked for, but Apple's MPS backend is not available here. "
                              "Fix: use device='auto' or device='cpu'.")
        return torch.device("mps")
    raise ConfigError(f"unknown device {device!r}; valid devices are: {', '.join(DEVICE_NAMES)}")


def as_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a ``torch.device``: a ``torch.device`` as it is (present or not), a name through
    :func:`pick_device` (quietly)."""
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
    """Whether ``device`` computes in bfloat16 natively (fast), not by emulation (slower than fp32).

    CPU: the CPU has AVX512-BF16 or AMX-BF16, as torch itself reports it, and PyTorch has oneDNN.
    CUDA: compute capability 8.0 (Ampere) or newer. ``torch.cuda.is_bf16_supported()`` also counts
    emulation (T4, V100), so it is not enough. Other devices: False.
    """
    dev = as_device(device)
    if dev.type == "cuda":
        return torch.cuda.is_available() and tuple(torch.cuda.get_device_capability(dev)) >= (8, 0)
    if dev.type == "cpu":
        features = cpu_features()
        return torch.backends.mkldnn.is_available() and any(features.get(k) for k in _CPU_BF16_FEATURES)
    return False


@dataclass(frozen=True)
class AmpPolicy:
    """How a step runs in mixed precision on one kind of device: the output of :func:`amp_policy`.

    ``dtype``: None (plain fp32, no autocast), ``torch.bfloat16`` or ``torch.float16``.
    ``scaler``: whether gradients need a GradScaler: only fp16 on CUDA (bf16 has fp32's range).
    ``device_type``: ``cpu``, ``cuda`` or ``mps``, as ``torch.autocast`` names it.
    """

    dtype: torch.dtype | None
    scaler: bool
    device_type: str

    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast context for this policy (a no-op context when ``dtype`` is None)."""
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
    """The one mixed-precision decision: autocast dtype and GradScaler for ``amp`` on ``device``.

    ``amp``: False (fp32), True (bf16 where the device has it natively, else fp16 on CUDA; bf16 on
    other devices), ``"bf16"`` or ``"fp16"``. An :class:`AmpPolicy` is returned unchanged.
    """
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
