"""course_lib.exercises.nb02: check_basic_block passes the solution and says what is wrong otherwise."""
import torch.nn.functional as F
from torch import nn

from course_lib.exercises.nb02 import SolutionBasicBlock, check_basic_block, reference_block
from course_lib.models import count_params


def lines(report):
    return [(ok, msg) for ok, msg in report.lines]


def failures(report):
    return [msg for ok, msg in report.lines if not ok]


class NoProjection(nn.Module):  # forgets the projection shortcut
    def __init__(self, in_channels, out_channels, stride=1, zero_init=False):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if zero_init:
            nn.init.zeros_(self.bn2.weight)

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + x)


class WithBias(NoProjection):  # convs keep their bias, projection present
    def __init__(self, in_channels, out_channels, stride=1, zero_init=False):
        super().__init__(in_channels, out_channels, stride, zero_init)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + self.shortcut(x))


class SkipBeforeLastBn(WithBias):  # adds x before the last BN, so the BN swallows the skip; no biases
    def __init__(self, in_channels, out_channels, stride=1, zero_init=False):
        super().__init__(in_channels, out_channels, stride, zero_init)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)

    def forward(self, x):
        out = self.conv2(F.relu(self.bn1(self.conv1(x))))
        return F.relu(self.bn2(out + self.shortcut(x)))


class Crashes(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1, zero_init=False):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)

    def forward(self, x):
        return self.conv3(x)  # a typo: the student's own error


class Stub(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1, zero_init=False):
        super().__init__()
        raise NotImplementedError("MyBlock.__init__ is yours to write")


class NoZeroInitArgument(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()


def test_solution_passes_every_check():
    report = check_basic_block(SolutionBasicBlock)
    assert report.passed, str(report)
    assert len(report.lines) == 4 + 2 + 4  # shapes, identity (train, eval), parameters
    assert "All checks passed." in str(report)


def test_solution_has_the_reference_parameter_count():
    for args in [(16, 16, 1), (16, 32, 2), (64, 128, 2)]:
        assert count_params(SolutionBasicBlock(*args)) == count_params(reference_block(*args))


def test_stub_is_reported_as_not_implemented_without_raising():
    report = check_basic_block(Stub)
    assert not report.passed
    (msg,) = failures(report)
    assert "not implemented yet" in msg and "NotImplementedError" in msg
    assert "raise NotImplementedError" in msg  # the student's own line


def test_missing_projection_fails_the_shape_checks_with_a_hint():
    report = check_basic_block(NoProjection)
    msgs = failures(report)
    assert not report.passed
    assert any("MyBlock(16, 16, stride=2)" in m and "must match the size" in m and "projection" in m for m in msgs)
    assert any("MyBlock(16, 32, stride=1)" in m for m in msgs)
    assert any(ok and "shape (stride 1, same channels)" in m for ok, m in lines(report))
    assert any(ok and "identity at zero-init" in m for ok, m in lines(report))


def test_conv_bias_fails_the_parameter_check_with_a_hint():
    report = check_basic_block(WithBias)
    msgs = failures(report)
    assert len(msgs) == 4 and all(m.startswith("parameters:") and "bias=False" in m for m in msgs)
    assert "4,688" in msgs[0] and "4,672" in msgs[0]


def test_skip_added_before_the_last_bn_fails_the_identity_check():
    msgs = failures(check_basic_block(SkipBeforeLastBn))
    assert len(msgs) == 2 and all("identity at zero-init" in m and "LAST" in m for m in msgs)


def test_student_error_is_reported_with_their_line_not_a_course_lib_traceback():
    report = check_basic_block(Crashes)
    msgs = failures(report)
    assert "AttributeError" in msgs[0] and "conv3" in msgs[0]
    assert "test_exercises_nb02.py" in msgs[0] and "return self.conv3(x)" in msgs[0]
    assert "course_lib" not in msgs[0]
    assert sum("conv3" in m for m in msgs) == 1  # the same error is reported once


def test_wrong_signature_and_non_module_are_explained():
    (msg,) = failures(check_basic_block(NoZeroInitArgument))
    assert "zero_init" in msg and "__init__" in msg
    (msg,) = failures(check_basic_block(lambda *a, **k: None))
    assert "nn.Module" in msg
