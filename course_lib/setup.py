"""The one call at the top of every notebook: device, profile and data source, printed."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .profiles import Profile, get_profile
from .training import pick_device


@dataclass
class Setup:
    """What a notebook runs with. ``data`` is None unless ``setup(load=True)``."""

    device: torch.device
    profile: Profile
    data: object = None


def setup(load: bool = True, device: str = "auto", profile: str | None = None, seed: int = 0) -> Setup:
    """Pick the device and profile, load the profile's data, seed everything, and print all three.

    Returns a :class:`Setup` with ``device``, ``profile`` and ``data``
    (a :class:`course_lib.data.Data`, sized by the profile).
    """
    from .data import load_data
    from .training import seed_everything

    torch.set_flush_denormal(True)  # denormals slow the no-BatchNorm nets several-fold on CPU
    prof = get_profile(profile)
    dev = pick_device(device, verbose=False)
    print(f"device : {dev.type}" + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else "")
          + f" | torch {torch.__version__} | {torch.get_num_threads()} CPU threads")
    print(f"profile: {prof}  (set COURSE_PROFILE=smoke|cpu|full to change)")
    data = None
    if load:
        data = load_data(profile=prof)
        print(f"data   : {data.info}")
    seed_everything(seed)
    return Setup(dev, prof, data)
