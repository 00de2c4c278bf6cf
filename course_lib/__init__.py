"""course_lib: the code behind the ResNet course. Notebooks import it; nothing is copied.

Data flows one way: profile -> data -> model -> fit -> result -> plot.
"""
import torch as _torch

# Denormal floats slow the nets without BatchNorm several-fold on a CPU. Every entry point (a notebook, the
# command line, a test) imports course_lib first, so this is the one place that flushes them to zero.
_torch.set_flush_denormal(True)

from .data import BatchIterator, Data, DataInfo, blog_loader, load_data
from .errors import CheckpointError, ConfigError, CourseError, DataError, DeviceError
from .models import (BasicBlock, BlogCNN, BlogPlain, BlogResNet, Bottleneck, ResNet, build_model,
                     count_params, plain_net, residual_net, resnet18, resnet34, resnet50, resnet101, resnet152)
from .profiles import Profile, get_profile
from .results import describe, load_or_train, make_meta
from .setup import setup
from .training import (History, evaluate, fit, load_checkpoint, load_into, pick_device, save_checkpoint,
                       seed_everything)

__version__ = "0.1.0"
