"""course_lib.exercises.nb02: check_preact_block passes the solution and says what is wrong otherwise."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.exercises.nb02 import SolutionPreActBlock, check_preact_block
from course_lib.lessons.residual_block import PreActBlock
from course_lib.models import count_params


def failures(report):
    return [msg for ok, msg in report.lines if not ok]


class OriginalOrder(nn.Module):
    """Writes the 2015 block by mistake: BN after each conv and relu after the sum."""

    def __init__(self, in_channels, out_channels, stride=1, zero_init=False):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
        if zero_init:
            nn.init.zeros_(self.bn2.weight)

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + (x if self.shortcut is None else self.shortcut(x)))


class NoProjection(SolutionPreActBlock):
    def __init__(self, in_channels, out_channels, stride=1, zero_init=False):
        super().__init__(in_channels, out_channels, stride, zero_init)
        self.shortcut = None


class ProjectionWithBn(SolutionPreActBlock):
    def __init__(self, in_channels, out_channels, stride=1, zero_init=False):
        super().__init__(in_channels, out_channels, stride, zero_init)
        if self.shortcut is not None:
            self.shortcut = nn.Sequential(self.shortcut, nn.BatchNorm2d(out_channels))


class ReluAfterSum(SolutionPreActBlock):
    def forward(self, x):
        return F.relu(super().forward(x))


class ZeroInitIgnored(SolutionPreActBlock):
    def __init__(self, in_channels, out_channels, stride=1, zero_init=False):
        super().__init__(in_channels, out_channels, stride, zero_init=False)


class Crashes(SolutionPreActBlock):
    def forward(self, x):
        return self.conv3(x)  # a typo: the student's own error


class Stub(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1, zero_init=False):
        super().__init__()
        raise NotImplementedError("MyPreActBlock.__init__ is yours to write")


class NoZeroInitArgument(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()


def test_solution_and_reference_pass_every_check():
    for block_cls in (SolutionPreActBlock, PreActBlock):
        report = check_preact_block(block_cls)
        assert report.passed, str(report)
        assert len(report.lines) == 4 + 3 + 4 + 2  # shapes, identity (train, eval, not without zero-init), params, outputs


@pytest.mark.parametrize("args", [(16, 16, 1), (16, 16, 2), (16, 32, 1), (16, 32, 2)])
def test_solution_computes_what_the_reference_computes(args):
    torch.manual_seed(0)
    ours = SolutionPreActBlock(*args)
    reference = PreActBlock(*args)
    assert count_params(ours) == count_params(reference)
    state = reference.state_dict()
    ours.load_state_dict(state)  # same names, same shapes
    x = torch.randn(2, 16, 8, 8)
    assert torch.allclose(ours(x), reference(x), atol=1e-6)


def test_stub_is_reported_as_not_implemented_without_raising():
    report = check_preact_block(Stub)
    assert not report.passed and "not implemented yet" in str(report)


def test_the_original_block_fails_the_identity_check_with_a_hint():
    report = check_preact_block(OriginalOrder)
    text = "\n".join(failures(report))
    assert "identity at zero-init" in text and "no relu" in text


def test_relu_after_the_sum_fails_on_negative_inputs():
    text = "\n".join(failures(check_preact_block(ReluAfterSum)))
    assert "identity at zero-init (train mode)" in text


def test_missing_projection_is_explained():
    text = "\n".join(failures(check_preact_block(NoProjection)))
    assert "projection" in text and "MyPreActBlock(16, 16, stride=2)" in text and "MyPreActBlock(16, 32, stride=1)" in text


def test_projection_with_batchnorm_fails_the_parameter_count_with_a_hint():
    text = "\n".join(failures(check_preact_block(ProjectionWithBn)))
    assert "parameters: MyPreActBlock(16, 32, stride=1)" in text and "without a BatchNorm" in text


def test_zero_init_that_does_nothing_is_caught():
    text = "\n".join(failures(check_preact_block(ZeroInitIgnored)))
    assert "set conv2's weight to 0" in text


def test_student_error_is_reported_with_their_line_not_a_course_lib_traceback():
    report = check_preact_block(Crashes)
    text = str(report)
    assert "AttributeError" in text and "conv3" in text and "self.conv3(x)" in text
    assert "course_lib/exercises" not in text


def test_wrong_signature_and_non_module_are_explained():
    assert "zero_init=False" in str(check_preact_block(NoZeroInitArgument))
    assert "derived from nn.Module" in str(check_preact_block(lambda *a: None))


class ProjectsRawInput(SolutionPreActBlock):
    """The projection takes x instead of relu(bn1(x)): same parameters, same shapes."""

    def forward(self, x):
        pre = F.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(x)
        return self.conv2(F.relu(self.bn2(self.conv1(pre)))) + shortcut


class Bn1Unused(SolutionPreActBlock):
    def forward(self, x):
        pre = F.relu(x)
        shortcut = x if self.shortcut is None else self.shortcut(pre)
        return self.conv2(F.relu(self.bn2(self.conv1(pre)))) + shortcut


class ReluBeforeBN(SolutionPreActBlock):
    def forward(self, x):
        pre = self.bn1(F.relu(x))
        shortcut = x if self.shortcut is None else self.shortcut(pre)
        return self.conv2(self.bn2(F.relu(self.conv1(pre)))) + shortcut


class AuditorsBlock(nn.Module):
    """Other layer names, projection on the raw x, bn1 unused, relu and BN swapped in the branch."""

    def __init__(self, i, o, stride=1, zero_init=False):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(i)
        self.conv1 = nn.Conv2d(i, o, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(o)
        self.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False)
        self.sc = None if (stride == 1 and i == o) else nn.Conv2d(i, o, 1, stride, bias=False)
        if zero_init:
            nn.init.zeros_(self.conv2.weight)

    def forward(self, x):
        s = x if self.sc is None else self.sc(x)
        out = self.conv1(F.relu(x))
        return self.conv2(self.bn2(F.relu(out))) + s


@pytest.mark.parametrize("wrong", [ProjectsRawInput, Bn1Unused, ReluBeforeBN, AuditorsBlock])
def test_wrong_blocks_with_the_right_shapes_and_counts_fail_the_output_check(wrong):
    report = check_preact_block(wrong)
    fails = failures(report)
    assert not report.passed and fails and all(f.startswith("outputs (") for f in fails)
    assert any("eval mode" in f for f in fails) and any("train mode" in f for f in fails)
    if wrong is ProjectsRawInput:  # only the blocks with a projection are wrong
        assert not any("(16, 16, stride=1) by" in f for f in fails) and all("(16, 32, stride=2) by" in f for f in fails)


def test_the_output_check_matches_other_layer_names_by_shape():
    class Renamed(SolutionPreActBlock):
        def __init__(self, in_channels, out_channels, stride=1, zero_init=False):
            super().__init__(in_channels, out_channels, stride, zero_init)
            self.proj, self.shortcut = self.shortcut, None

        def forward(self, x):
            pre = F.relu(self.bn1(x))
            shortcut = x if self.proj is None else self.proj(pre)
            return self.conv2(F.relu(self.bn2(self.conv1(pre)))) + shortcut

    assert check_preact_block(Renamed).passed


def test_notebook_02_neither_shows_nor_runs_the_solution():
    """The solution lives in course_lib.exercises.nb02 and docs/answers/02.md; the notebook's check reports FAIL."""
    import json
    from pathlib import Path

    cells = json.loads((Path(__file__).resolve().parents[1] / "notebooks" / "02_residual_block.ipynb")
                       .read_text(encoding="utf-8"))["cells"]
    sources = ["".join(c["source"]) for c in cells]
    assert not any("Solution" in s for s in sources)
    assert not any("residual_block.PreActBlock" in s for s in sources)  # the library's own answer is not pointed at
    checks = [c for c, s in zip(cells, sources) if c["cell_type"] == "code" and "check_preact_block(" in s]
    assert len(checks) == 1
    printed = json.dumps(checks[0]["outputs"])
    assert "not implemented yet" in printed and "PASS" not in printed
