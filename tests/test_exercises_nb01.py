"""Tests for notebook 01's exercise checks (course_lib.exercises.nb01): they pass the worked solutions, and they
fail, with a message that says what to fix, on the usual mistakes. CPU, < 30 s."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import course_lib.lessons.degradation as D
from course_lib.exercises import nb01
from course_lib.models import count_params, plain_net, residual_net
from course_lib.training import seed_everything

# ---------------------------------------------------------------------------- exercise 1


def test_check_layer_gradient_norms_passes_the_solution_and_explains_failures():
    assert nb01.check_layer_gradient_norms(nb01.solution_layer_gradient_norms).passed

    def stub(model, images, labels):
        raise NotImplementedError

    report = nb01.check_layer_gradient_norms(stub)
    assert not report.passed and "not implemented yet" in str(report)

    def reversed_order(model, images, labels):
        return nb01.solution_layer_gradient_norms(model, images, labels)[::-1]

    assert "reverse order" in str(nb01.check_layer_gradient_norms(reversed_order))

    def float32_norms(model, images, labels):  # the classic slip: plain-56's first layers underflow to 0
        model.train()
        F.cross_entropy(model(images), labels).backward()
        return [m.weight.grad.norm().item() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]

    report = nb01.check_layer_gradient_norms(float32_norms)
    assert not report.passed and "double()" in str(report)

    def crashes(model, images, labels):
        return model(images_typo)  # noqa: F821

    report = nb01.check_layer_gradient_norms(crashes)
    assert "NameError" in str(report) and "crashes" in str(report)


# ---------------------------------------------------------------------------- exercise 2


def test_check_mystery_guess():
    truth = {"A": "plain, BN", "B": "residual, no BN", "C": "plain, no BN"}
    assert nb01.check_mystery_guess(truth).passed
    assert "not answered yet" in str(nb01.check_mystery_guess({"A": None, "B": None, "C": None}))
    wrong = nb01.check_mystery_guess({"A": "plain, no BN", "B": "residual, no BN", "C": "plain, BN"})
    assert not wrong.passed and "Hint" in str(wrong)
    assert not nb01.check_mystery_guess({"A": "resnet", "B": "x", "C": "y"}).passed
    shapes = {k: nb01.flow_shape(k) for k in "ABC"}  # the curves really look like the answer says
    assert shapes == {"A": "grows", "B": "flat", "C": "vanishes"}


# ---------------------------------------------------------------------------- exercise 3


def branch(pair, x):
    return pair.bn2(pair.conv2(F.relu(pair.bn1(pair.conv1(x)))))


class Stub(nb01.SolutionSkipPair):
    def forward(self, x):
        raise NotImplementedError


class NoFinalRelu(nb01.SolutionSkipPair):
    def forward(self, x):
        return branch(self, x) + x


class ReluBeforeAdd(nb01.SolutionSkipPair):
    def forward(self, x):
        return F.relu(branch(self, x)) + x


class NoSkip(nb01.SolutionSkipPair):
    def forward(self, x):
        return F.relu(branch(self, x))


class Projection(nb01.SolutionSkipPair):
    def __init__(self, width):
        super().__init__(width)
        self.proj = nn.Conv2d(width, width, 1, bias=False)

    def forward(self, x):
        return F.relu(branch(self, x) + self.proj(x))


class Typo(nb01.SolutionSkipPair):
    def forward(self, x):
        return F.relu(self.bn3(x) + x)


def test_check_skip_pair_passes_the_solution():
    report = nb01.check_skip_pair(nb01.SolutionSkipPair)
    assert report.passed, str(report)
    assert "the skip is there" in str(report) and "4,672 parameters" in str(report)


def test_check_skip_pair_explains_each_usual_mistake():
    cases = {Stub: "not implemented yet", NoFinalRelu: "apply the ReLU after the addition",
             ReluBeforeAdd: "add x first, then the ReLU", NoSkip: "it outputs 0: there is no skip",
             Projection: "an identity skip adds no parameter", Typo: "AttributeError"}
    for pair_class, message in cases.items():
        report = nb01.check_skip_pair(pair_class)
        assert not report.passed and message in str(report), (pair_class.__name__, str(report))
    assert "not in the stub: proj.weight" in str(nb01.check_skip_pair(Projection))
    assert "line" in str(nb01.check_skip_pair(Typo))  # the student's own line


def test_net_with_pairs_is_the_residual_net_with_the_plain_nets_weights():
    x = D.digit_batch(8)[0]
    seed_everything(0)
    yours = nb01.net_with_pairs(nb01.SolutionSkipPair, 20)
    seed_everything(0)
    reference = residual_net(20)
    assert count_params(yours) == count_params(plain_net(20))
    assert torch.equal(yours.train()(x), reference.train()(x))
    seed_everything(0)
    no_skip = nb01.net_with_pairs(NoSkip, 20)
    seed_everything(0)
    assert torch.equal(no_skip.train()(x), plain_net(20).train()(x))


def test_rerun_with_trains_exactly_like_the_sweeps_residual_net(capsys):
    data = D.sweep_data("smoke")
    runs = D.sweep(data, [8], [0], [1], device="cpu", verbose=False)
    result = dict(runs=runs)
    yours = nb01.rerun_with(nb01.SolutionSkipPair, result, data, device="cpu")
    residual = next(r for r in runs if r["kind"] == "residual")
    assert yours["curve"] == residual["curve"] and yours["final_train_loss"] == residual["final_train_loss"]
    assert "trained exactly like residual-8" in capsys.readouterr().out
    assert nb01.rerun_with(Stub, result, data, device="cpu") is None  # an unfinished pair: nothing is trained
    out = capsys.readouterr().out
    assert "FAIL  not run yet" in out and "does not pass" in out and "PASS" not in out
