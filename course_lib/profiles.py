"""Run profiles: how big every experiment in the course is.

One environment variable, ``COURSE_PROFILE``, chooses the profile, and this
module is the only place that reads it:

* ``smoke`` -- seconds per notebook, for CI and for checking an install;
* ``cpu``   -- minutes per notebook on a 2-core laptop, the default without a GPU;
* ``full``  -- the blog's protocol on full MNIST, the default with a GPU.

Each experiment keeps its own sizes in a small table keyed by profile name and
reads its row with :func:`settings` (``settings(TABLE, profile)``), so the sizes sit
next to the code that uses them while the choice of profile is made here, once.
:func:`as_profile` is the one place that turns "a Profile, a name or None" into a Profile.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

from .errors import ConfigError

ENV_VAR = "COURSE_PROFILE"


@dataclass(frozen=True)
class Profile:
    """A named run size. ``dataset`` is what the notebooks load by default."""

    name: str
    description: str
    dataset: str
    train_limit: int | None  # images used for training in the default data call (None: all)
    test_limit: int | None

    def pick(self, table: Mapping[str, Any]) -> Any:
        """Return ``table[self.name]``; every table must cover every profile."""
        missing = [name for name in PROFILES if name not in table]
        if missing:
            raise ConfigError(
                f"settings table has no row for profile(s) {missing}; "
                f"add one for each of {list(PROFILES)}"
            )
        return table[self.name]

    def __str__(self) -> str:
        return f"{self.name} ({self.description})"


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        "smoke", "seconds per notebook: CI and install checks", "sample", 2000, 1000
    ),
    "cpu": Profile(
        "cpu", "minutes per notebook on a CPU laptop", "mnist", 8000, 2000
    ),
    "full": Profile(
        "full", "the blog's full protocol, meant for a GPU", "mnist", None, None
    ),
}


def _gpu_present() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return torch.cuda.is_available() or bool(mps and mps.is_available())


def default_profile_name() -> str:
    """``full`` when a GPU (CUDA or Apple MPS) is present, ``cpu`` otherwise."""
    return "full" if _gpu_present() else "cpu"


def get_profile(name: str | None = None) -> Profile:
    """The profile named by ``name``, else by ``$COURSE_PROFILE``, else the default.

    An unknown name raises :class:`ConfigError` listing the valid ones.
    """
    source = "argument"
    if name is None:
        name = os.environ.get(ENV_VAR, "").strip() or None
        source = f"environment variable {ENV_VAR}"
    if name is None:
        return PROFILES[default_profile_name()]
    key = name.strip().lower()
    if key not in PROFILES:
        fix = (f"set {ENV_VAR} to one of them, or unset it to get the default" if source != "argument"
               else "give one of them, or none to get the default")
        raise ConfigError(f"unknown run profile {name!r} (from the {source}); "
                          f"valid profiles are: {', '.join(PROFILES)}. Fix: {fix}.")
    return PROFILES[key]


def as_profile(profile: "Profile | str | None" = None) -> Profile:
    """``profile`` itself when it is a :class:`Profile`, else :func:`get_profile` of the name (None: the default)."""
    return profile if isinstance(profile, Profile) else get_profile(profile)


def settings(table: Mapping[str, Any], profile: "Profile | str | None" = None) -> Any:
    """A lesson's settings row for ``profile``: ``table[name]``, checked to cover every profile.

    Every lesson reads its sizes this way, e.g. ``settings(SWEEP_SETTINGS, "cpu")["epochs"]``.
    A row that is a dict is returned as a copy, so a caller may change it freely.
    """
    row = as_profile(profile).pick(table)
    return dict(row) if isinstance(row, Mapping) else row
