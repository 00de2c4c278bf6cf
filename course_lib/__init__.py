"""course_lib: the code behind the ResNet course. Notebooks import it; nothing is copied.

Data flows one way: profile -> data -> model -> fit -> result -> plot. Importing it changes no torch state:
``setup()``, ``fit`` and the timing loop flush denormals (``devices.flush_denormals``).
"""
from .checkpoints import load_checkpoint, load_into, save_checkpoint
from .data import BatchIterator, Data, DataInfo, blog_loader, load_data
from .devices import pick_device
from .errors import CheckpointError, ConfigError, CourseError, DataError, DeviceError
from .history import History
from .models import (BasicBlock, BlogCNN, BlogPlain, BlogResNet, Bottleneck, ResNet, build_model,
                     count_params, plain_net, residual_net, resnet18, resnet34, resnet50)
from .profiles import Profile, get_profile
from .results import describe, load_or_train, make_meta
from .setup import setup
from .training import Protocol, SpeedOptions, evaluate, fit, seed_everything

__version__ = "0.1.0"
