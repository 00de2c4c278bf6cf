"""Run profiles: how big every experiment in the course is, chosen once by ``$COURSE_PROFILE``.

``smoke`` takes seconds per notebook (CI, install checks), ``cpu`` minutes on a 2-core laptop (the default
without a GPU), ``full`` is the blog's protocol on full MNIST (the default with a GPU). Each lesson keeps its
sizes in a table named ``SETTINGS``, one row per profile, read with ``settings(SETTINGS, profile)``.
"""
from __future__ import annotations

import copy
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

    def __str__(self) -> str:
        return f"{self.name} ({self.description})"


PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", "seconds per notebook: CI and install checks", "sample", 2000, 1000),
    "cpu": Profile("cpu", "minutes per notebook on a CPU laptop", "mnist", 8000, 2000),
    "full": Profile("full", "the blog's full protocol, meant for a GPU", "mnist", None, None),
}


def default_profile_name() -> str:
    """``full`` when a GPU (CUDA or Apple MPS) is present, ``cpu`` otherwise."""
    from .devices import describe_machine  # imports torch: only when no profile is named

    return "full" if describe_machine()["gpu_present"] else "cpu"


def get_profile(name: "Profile | str | None" = None) -> Profile:
    """``name`` itself when it is a Profile, else the profile it names (an unknown name is a :class:`ConfigError`
    listing the valid ones), else ``$COURSE_PROFILE``'s, else the default."""
    if isinstance(name, Profile):
        return name
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


def settings(table: Mapping[str, Any], profile: "Profile | str | None" = None) -> Any:
    """A lesson's ``SETTINGS`` row for ``profile``, checked to cover every profile, as a deep copy."""
    missing = [name for name in PROFILES if name not in table]
    if missing:
        raise ConfigError(f"settings table has no row for profile(s) {missing}; add one for each of {list(PROFILES)}")
    row = table[get_profile(profile).name]
    return copy.deepcopy(row)
