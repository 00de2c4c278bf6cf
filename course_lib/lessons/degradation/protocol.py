"""Notebook 01's sizes per run profile and its training protocol, the same in every profile."""
from __future__ import annotations

from torch import nn

from ...errors import ConfigError
from ...models import plain_net, residual_net

# From the blog: plain SGD, constant lr 0.1, no momentum. Not the blog's: batch 128 (it uses 64), BatchNorm, these
# nets. He et al. used momentum 0.9, weight decay and lr steps.
# A constant lr makes a run of N steps exactly the first N steps of a longer run with the same seed, so one
# run gives every budget of the sweep (see sweep.train_depth_net, and the test that checks it).
PROTOCOL = dict(width=16, batch_norm=True, lr=0.1, batch_size=128, momentum=0.0, final_fraction=0.2)

# budgets: the training budgets in epochs (32 SGD steps each on the 4,000-digit sample), shortest first.
# The cpu profile's second budget is 3x the first, so a slow start would show as a gap that closes.
SETTINGS = {
    "smoke": dict(
        sweep=dict(dataset="sample", train_limit=512, test_limit=256, depths=(4, 8), seeds=1, budgets=(1, 3)),
        gradient=dict(depths=(8, 20, 32, 56), batch=128),  # cheap: the same in every profile
        identity=dict(layers=(2, 8), steps=20, n=16),
    ),
    "cpu": dict(
        sweep=dict(dataset="sample", train_limit=None, test_limit=None, depths=(8, 20, 44), seeds=3, budgets=(2, 6)),
        gradient=dict(depths=(8, 20, 32, 56), batch=128),
        identity=dict(layers=(2, 8, 16), steps=100, n=32),
    ),
    "full": dict(
        sweep=dict(dataset="sample", train_limit=None, test_limit=None, depths=(8, 32, 56), seeds=3,
                   budgets=(2, 6, 12)),
        gradient=dict(depths=(8, 20, 32, 56), batch=128),
        identity=dict(layers=(2, 8, 16, 32), steps=300, n=64),
    ),
}

def build_net(kind: str, depth: int) -> nn.Module:
    """A sweep net: ``plain`` or ``residual``, ``depth`` layers, width and BatchNorm from :data:`PROTOCOL`."""
    builders = {"plain": plain_net, "residual": residual_net}
    if kind not in builders:
        raise ConfigError(f"unknown net kind {kind!r}; valid: {', '.join(builders)}")
    return builders[kind](depth, PROTOCOL["width"], batch_norm=PROTOCOL["batch_norm"])
