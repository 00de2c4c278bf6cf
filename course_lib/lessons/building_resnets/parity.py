"""Proving that what we built is the real thing: copy one network's weights into another and compare their
outputs in eval and train mode, BatchNorms randomised first so that a BN in the wrong place shows."""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ...errors import ConfigError
from ...models import count_params


@dataclass
class Parity:
    """The result of copying one network's weights into another and comparing them, in eval and in train mode."""

    name: str
    params_source: int
    params_target: int
    tensors_copied: int
    input_shape: tuple
    max_abs_diff: float
    allclose: bool
    identical: bool
    max_abs_diff_train: float = 0.0
    allclose_train: bool = True

    @property
    def passed(self) -> bool:
        return self.params_source == self.params_target and self.allclose and self.allclose_train

    def outputs_sentence(self, expect_equal: bool) -> str:
        """Whether the two networks compute the same outputs, and whether that was ``expect_equal``."""
        same = self.allclose and self.allclose_train
        if same:
            verdict = "the same outputs" + (" (identical)" if self.identical else f" (max |diff| {self.max_abs_diff:.1g})")
        else:
            verdict = f"different outputs (max |diff| {max(self.max_abs_diff, self.max_abs_diff_train):.3g})"
        expected = "as expected" if same == expect_equal else "NOT as expected"
        return f"with the same weights, the two compute {verdict}: {expected}"

    def __str__(self) -> str:
        same = "=" if self.params_source == self.params_target else "!="
        shape = " x ".join(map(str, self.input_shape))
        return (f"{self.name}: params {self.params_target:,} {same} {self.params_source:,}; "
                f"{self.tensors_copied} tensors copied (BatchNorm randomised); outputs on a {shape} input: "
                f"eval mode allclose {self.allclose}, identical {self.identical} (max |diff| {self.max_abs_diff:.1g}); "
                f"train mode allclose {self.allclose_train} (max |diff| {self.max_abs_diff_train:.1g})")


@torch.no_grad()
def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm of ``model`` random weight, bias and running statistics, in place.

    A fresh BN is nearly the identity in eval mode, so two networks with fresh BNs cannot show where the BNs
    sit (conv -> relu -> BN and conv -> BN -> relu compute the same); random values make each a different map.
    """
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            if m.affine:
                m.weight.copy_(torch.empty(n).uniform_(0.5, 1.5, generator=g)
                               * torch.where(torch.rand(n, generator=g) < 0.2, -1.0, 1.0))
                m.bias.copy_(0.5 * torch.randn(n, generator=g))
            if m.track_running_stats:
                m.running_mean.copy_(0.5 * torch.randn(n, generator=g))
                m.running_var.copy_(torch.empty(n).uniform_(0.5, 2.0, generator=g))
    return model


def copy_weights(source: nn.Module, target: nn.Module) -> int:
    """Load ``source``'s state dict into ``target`` and return the tensor count; :class:`ConfigError` names the
    keys or shapes that do not match."""
    theirs, ours = source.state_dict(), target.state_dict()
    missing, extra = sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))
    bad = [f"{k} {tuple(theirs[k].shape)} vs {tuple(ours[k].shape)}"
           for k in ours if k in theirs and theirs[k].shape != ours[k].shape]
    if missing or extra or bad:
        parts = ([f"only in target: {missing[:3]}"] if missing else []) + \
                ([f"only in source: {extra[:3]}"] if extra else []) + ([f"shapes differ: {bad[:3]}"] if bad else [])
        raise ConfigError(f"the two networks do not have the same layers ({'; '.join(parts)}). "
                          f"Fix: build the target with the same blocks, stages and widths as the source.")
    target.load_state_dict(theirs)
    return len(theirs)


def _max_diff(a: Tensor, b: Tensor) -> tuple[float, bool]:
    return (a - b).abs().max().item(), torch.allclose(a, b, rtol=1e-5, atol=1e-6)


@torch.no_grad()
def compare_outputs(source: nn.Module, target: nn.Module, x: Tensor, name: str = "", seed: int = 0) -> Parity:
    """Copy the weights of ``source`` (a copy, BatchNorms randomised) into ``target`` and compare their outputs on
    ``x`` (N x C x H x W, N >= 2) in eval mode, then in train mode; ``source`` itself is left unchanged."""
    source = randomize_batchnorm(copy.deepcopy(source), seed)
    copied = copy_weights(source, target)
    source.eval(), target.eval()
    a, b = source(x), target(x)
    diff, close = _max_diff(a, b)
    identical = torch.equal(a, b)
    kept = copy.deepcopy(target.state_dict())  # a train-mode pass updates the running statistics
    source.train(), target.train()
    diff_train, close_train = _max_diff(source(x), target(x))
    target.load_state_dict(kept)
    target.eval()
    return Parity(name or type(target).__name__, count_params(source), count_params(target), copied,
                  tuple(x.shape), diff, close, identical, diff_train, close_train)


def torchvision_parity(depth: int, input_size: tuple = (3, 224, 224), batch: int = 2, seed: int = 0) -> Parity:
    """Build torchvision's ResNet-``depth`` (random init, no download) and ours; copy theirs into ours; compare."""
    import torchvision

    from ... import models

    if depth not in models.RESNET_LAYOUTS:
        raise ConfigError(f"no ResNet-{depth}; valid depths are {sorted(models.RESNET_LAYOUTS)}")
    torch.manual_seed(seed)
    theirs = getattr(torchvision.models, f"resnet{depth}")(weights=None)
    ours = getattr(models, f"resnet{depth}")()
    x = torch.randn(batch, *input_size, generator=torch.Generator().manual_seed(seed))
    return compare_outputs(theirs, ours, x, name=f"ResNet-{depth} ours vs torchvision")
