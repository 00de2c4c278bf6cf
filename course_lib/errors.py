"""Errors a user can fix, each message naming the problem and the fix: the command line prints one as a line
and exits with code 2, a notebook shows it without a traceback into ``course_lib``; library bugs stay Python's."""


class CourseError(Exception):
    """Base class: something the user can fix, explained in the message."""


class ConfigError(CourseError, ValueError):
    """An unknown name or a bad setting (profile, dataset, model, device, lr, an output path...)."""


class DataError(CourseError):
    """Data files are missing, truncated or corrupt, or no source could provide them."""


class DeviceError(CourseError, RuntimeError):
    """The requested device is not available on this machine."""


class CheckpointError(CourseError):
    """A checkpoint does not match the model it is loaded into, or is unreadable."""


class ResultError(CourseError):
    """A saved result (``results/NAME.json``) is truncated, corrupt or does not hold what a result holds."""
