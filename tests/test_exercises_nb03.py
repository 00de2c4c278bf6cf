"""Notebook 03's exercise check: the student's bottleneck block, and ResNet-50 built from it, against torchvision."""
from __future__ import annotations

import torch
from torch import nn

from course_lib.exercises.nb03 import SolutionBottleneck, check_bottleneck
from course_lib.models import Bottleneck


def _fails(report) -> list[str]:
    return [msg for ok, msg in report.lines if not ok]


def test_the_solution_and_the_library_block_pass_including_weight_parity():
    for block_cls in (SolutionBottleneck, Bottleneck):
        report = check_bottleneck(block_cls)
        assert report.passed, str(report)
        text = str(report)
        assert "25,557,032 parameters" in text and "output shape (2, 1000)" in text
        assert "eval mode (running statistics): with torchvision's weights copied in" in text
        assert "train mode (batch statistics): with torchvision's weights copied in" in text
        assert text.count("outputs match") == 2


def test_the_stub_reports_not_implemented_without_raising():
    class Stub(nn.Module):
        expansion = 4

        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            raise NotImplementedError

    report = check_bottleneck(Stub)
    assert not report.passed and "not implemented yet" in _fails(report)[0]


def test_a_missing_expansion_is_explained():
    class NoExpansion(SolutionBottleneck):
        expansion = 1

    assert "expansion must be the class attribute 4" in str(check_bottleneck(NoExpansion))


class StrideOnFirstConv(SolutionBottleneck):  # the paper's v1: same parameters, other outputs
    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__(inplanes, planes, stride, downsample)
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, stride=stride, bias=False)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, padding=1, bias=False)


def test_the_stride_on_the_first_conv_passes_the_counts_but_not_the_outputs():
    report = check_bottleneck(StrideOnFirstConv)
    fails = _fails(report)
    assert len(fails) == 1 and "outputs differ" in fails[0] and "v1.5" in fails[0]


def test_other_layer_names_cannot_take_torchvisions_weights():
    class Renamed(nn.Module):
        expansion = 4

        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.branch = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, bias=False), nn.BatchNorm2d(planes), nn.ReLU(),
                nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(planes), nn.ReLU(),
                nn.Conv2d(planes, 4 * planes, 1, bias=False), nn.BatchNorm2d(4 * planes))
            self.downsample = downsample

        def forward(self, x):
            return torch.relu(self.branch(x) + (x if self.downsample is None else self.downsample(x)))

    fails = _fails(check_bottleneck(Renamed))
    assert len(fails) == 1 and "Name the layers as torchvision does" in fails[0]


def test_conv_biases_fail_the_parameter_count_with_a_hint():
    class WithBias(SolutionBottleneck):
        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__(inplanes, planes, stride, downsample)
            self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1)
            self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1)
            self.conv3 = nn.Conv2d(planes, planes * 4, kernel_size=1)

    fails = _fails(check_bottleneck(WithBias))
    assert fails and all("no bias" in f for f in fails)


def test_a_forgotten_shortcut_and_a_crash_are_reported_with_the_students_line():
    class NoShortcut(SolutionBottleneck):
        def forward(self, x):
            out = self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))
            return self.relu(self.bn3(self.conv3(out)) + x)

    text = str(check_bottleneck(NoShortcut))
    assert "RuntimeError" in text and "must match the size" in text

    class Crashes(SolutionBottleneck):
        def forward(self, x):
            return self.conv4(x)

    text = str(check_bottleneck(Crashes))
    assert "AttributeError" in text and "self.conv4(x)" in text and "course_lib/exercises" not in text


class ReluBeforeBN(SolutionBottleneck):
    """conv -> relu -> BN: invisible with fresh BatchNorms (weight 1, bias 0, mean 0, variance 1)."""

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.bn1(self.relu(self.conv1(x)))
        out = self.bn2(self.relu(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def test_a_relu_before_its_batchnorm_fails_the_output_comparison():
    fails = _fails(check_bottleneck(ReluBeforeBN))
    assert len(fails) == 1 and "eval mode" in fails[0] and "outputs differ" in fails[0] and "conv -> BN -> relu" in fails[0]


def test_randomised_batchnorm_is_what_makes_the_misplaced_bn_visible():
    from course_lib.lessons.building_resnets import compare_outputs, randomize_batchnorm
    from course_lib.models import ResNet

    torch.manual_seed(0)
    right, wrong = ResNet(SolutionBottleneck, [1, 1, 1, 1]), ResNet(ReluBeforeBN, [1, 1, 1, 1])
    x = torch.randn(2, 3, 64, 64)
    wrong.load_state_dict(right.state_dict())
    with torch.no_grad():  # fresh BNs: the two orders agree to float precision in eval mode
        assert torch.allclose(right.eval()(x), wrong.eval()(x), rtol=1e-4, atol=1e-5)
    parity = compare_outputs(right, wrong, x)
    assert not parity.allclose and not parity.allclose_train and not parity.passed
    assert compare_outputs(right, ResNet(SolutionBottleneck, [1, 1, 1, 1]), x).passed
    bn = randomize_batchnorm(nn.BatchNorm2d(8), seed=1)
    assert not torch.allclose(bn.weight, torch.ones(8)) and not torch.allclose(bn.running_var, torch.ones(8))
