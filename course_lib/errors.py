"""The course's own errors. Each message names the problem and the fix."""


class CourseError(Exception):
    """Base class: something the user can fix, explained in the message."""


class ConfigError(CourseError, ValueError):
    """An unknown name or a bad setting (profile, dataset, model, device, lr...)."""


class DataError(CourseError):
    """Data files are missing, truncated or corrupt, or no source could provide them."""


class DeviceError(CourseError, RuntimeError):
    """The requested device is not available on this machine."""


class CheckpointError(CourseError):
    """A checkpoint does not match the model it is loaded into, or is unreadable."""
