"""The one call at the top of every notebook: it sets the device, threads, profile, data and seed, and prints
them, so every run of a notebook starts from the same state."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch

from .data import load_data
from .devices import flush_denormals, pick_device
from .errors import ConfigError
from .profiles import Profile, get_profile
from .training import seed_everything


@dataclass
class Setup:
    """What a notebook runs with. ``data`` is None unless ``setup(load=True)``."""

    device: torch.device
    profile: Profile
    data: object = None


THREADS_ENV = "COURSE_THREADS"


@dataclass(frozen=True)
class ThreadChoice:
    """How many threads PyTorch trains with, out of how many cores, and why (``source``)."""

    threads: int
    cores: int
    source: str  # "load" (chosen from the free cores), "env" (COURSE_THREADS), "argument", "no load average"

    @property
    def line(self) -> str:
        """The one line every notebook prints, facts only: ``threads: 1 (of 2 cores); COURSE_THREADS=N sets it``."""
        head = f"threads: {self.threads} (of {self.cores} core{'s' * (self.cores != 1)})"
        if self.source in ("env", "argument"):
            where = f"{THREADS_ENV}={self.threads}" if self.source == "env" else f"setup(threads={self.threads})"
            return f"{head}, set by {where}"
        return f"{head}; {THREADS_ENV}=N sets it"


def _usable_cores() -> int:
    """Cores this process may run on (a container or ``taskset`` may allow fewer than the machine has)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _whole_threads(value, where: str) -> int:
    """``value`` (an int, or the text of one) as a thread count >= 1, else a ConfigError naming ``where``."""
    whole = type(value) is int or (isinstance(value, str) and value.strip().isdigit())
    if not whole or int(value) < 1:
        raise ConfigError(f"{where} must be a whole number of threads >= 1, got {value!r}. "
                          f"Fix: use e.g. 2, or leave it unset to use the cores that are free.")
    return int(value)


def choose_threads(threads: int | None = None) -> ThreadChoice:
    """How many threads to train with: ``threads``, else ``$COURSE_THREADS``, else the free cores (usable cores
    minus the 1-minute load average, at least 1): two processes at 2 threads on 2 cores both slow down several-fold.
    """
    cores = _usable_cores()
    if threads is not None:
        return ThreadChoice(_whole_threads(threads, "setup(threads=...)"), cores, "argument")
    env = os.environ.get(THREADS_ENV, "").strip()
    if env:
        return ThreadChoice(_whole_threads(env, f"{THREADS_ENV}={env}"), cores, "env")
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):  # Windows has no load average
        return ThreadChoice(cores, cores, "no load average")
    free = math.floor(cores - load + 0.5)
    return ThreadChoice(min(cores, max(1, free)), cores, "load")


def setup(load: bool = True, device: str = "auto", profile: "Profile | str | None" = None, seed: int = 0,
          threads: int | None = None) -> Setup:
    """Pick the device, threads (see :func:`choose_threads`) and profile, load the profile's data, seed
    everything, and print them, one fact a line."""
    prof = get_profile(profile)
    dev = pick_device(device, verbose=False)
    choice = choose_threads(threads)
    torch.set_num_threads(choice.threads)
    flush_denormals()
    print(f"device : {dev.type}" + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""))
    print(f"torch  : {torch.__version__}")
    print(choice.line)
    print(f"profile: {prof}; set COURSE_PROFILE=smoke|cpu|full to change it")
    data = load_data(profile=prof) if load else None
    if data is not None:
        print(f"data   : {data.info}")
    seed_everything(seed)
    return Setup(dev, prof, data)
