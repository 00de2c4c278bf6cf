"""Notebook 05's exercise checks: they pass the worked solutions and name the student's mistakes."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from course_lib.exercises import nb05
from course_lib.lessons.why_residuals_work.lesion import lesion_accuracy


def _stub(*args):
    raise NotImplementedError


def test_lesion_check_passes_the_solution_and_the_library_agrees_with_it():
    report = nb05.check_lesion(nb05.solution_lesion_accuracy)
    assert report.passed, str(report)
    nets, x, labels = nb05._example_nets()
    for kind, net in nets.items():
        assert net.training  # the example nets come in training mode: the function must switch modes itself
        y = labels[kind]
        accs = [lesion_accuracy(net, x, y, blocks) for blocks in nb05.LESION_CASES]
        assert accs[0] == 1.0 and max(accs[1:]) < 0.9  # the example nets do notice a lesion
        assert accs == pytest.approx([nb05.solution_lesion_accuracy(net, x, y, list(b)) for b in nb05.LESION_CASES])


def test_lesion_check_names_the_usual_mistakes():
    assert "not implemented yet" in str(nb05.check_lesion(_stub))

    def ignores_blocks(model, x, y, blocks):
        return (model.eval()(x).argmax(1) == y).float().mean().item()

    report = nb05.check_lesion(ignores_blocks)
    assert not report.passed and "nn.Identity()" in str(report)

    def one_based(model, x, y, blocks):  # the student counts blocks from 1
        return nb05.solution_lesion_accuracy(model, x, y, [b - 1 for b in blocks if b > 0])

    assert "numbered from 0" in str(nb05.check_lesion(one_based))

    def never_restores(model, x, y, blocks):
        for i in blocks:
            model.body[i] = nn.Identity()
        return (model.eval()(x).argmax(1) == y).float().mean().item()

    report = nb05.check_lesion(never_restores)
    assert not report.passed and "was changed by your function" in str(report)

    def crashes(model, x, y, blocks):
        return model.body[10]

    assert "IndexError" in str(nb05.check_lesion(crashes))


def _lesion_without_mode_handling(model, x, y, blocks, use_eval):
    saved = {i: model.body[i] for i in blocks}
    try:
        for i in saved:
            model.body[i] = nn.Identity()
        if use_eval:
            model.eval()  # ... and never back to the mode the model came in
        with torch.no_grad():
            return (model(x).argmax(1) == y).float().mean().item()
    finally:
        for i, block in saved.items():
            model.body[i] = block


def test_lesion_check_fails_a_function_that_forgets_eval_mode():
    report = nb05.check_lesion(lambda m, x, y, b: _lesion_without_mode_handling(m, x, y, b, use_eval=False))
    text = str(report)
    assert not report.passed
    assert "BatchNorm running statistics changed" in text and "model.eval()" in text


def test_lesion_check_fails_a_function_that_leaves_the_model_in_eval_mode():
    report = nb05.check_lesion(lambda m, x, y, b: _lesion_without_mode_handling(m, x, y, b, use_eval=True))
    text = str(report)
    assert not report.passed and "left in eval mode" in text and "model.train(was_training)" in text
    assert "kept its BatchNorm running statistics" in text  # every accuracy and the statistics are right


def test_the_solution_restores_training_and_eval_mode_and_the_statistics():
    nets, x, labels = nb05._example_nets()
    for kind, net in nets.items():
        y = labels[kind]
        for mode in (True, False):
            net.train(mode)
            stats = {k: v.clone() for k, v in net.state_dict().items()}
            nb05.solution_lesion_accuracy(net, x, y, [1, 2])
            assert net.training is mode
            assert all(torch.equal(v, stats[k]) for k, v in net.state_dict().items())


def test_lesioning_a_copy_is_also_accepted():
    def on_a_copy(model, x, y, blocks):
        m = copy.deepcopy(model).eval()
        for i in blocks:
            m.body[i] = nn.Identity()
        with torch.no_grad():
            return (m(x).argmax(1) == y).float().mean().item()

    assert nb05.check_lesion(on_a_copy).passed


def test_filter_normalize_check_passes_the_solution_and_explains_mistakes():
    assert nb05.check_filter_normalize(nb05.solution_filter_normalize).passed
    assert "not implemented yet" in str(nb05.check_filter_normalize(_stub))

    def unnormalised(direction, weights):  # forgets the rescaling and the 1-D zeros
        return [d.clone() for d in direction]

    bad = nb05.check_filter_normalize(unnormalised)
    assert not bad.passed and "filter norms differ" in str(bad) and "1-D parameters" in str(bad)

    def in_place(direction, weights):
        out = nb05.solution_filter_normalize(direction, weights)
        for d in direction:
            d.mul_(2)
        return out

    report = nb05.check_filter_normalize(in_place)
    assert not report.passed and "return new tensors" in str(report)

    def crashes(direction, weights):
        return [d / w.norm(dim=5) for d, w in zip(direction, weights)]

    assert "IndexError" in str(nb05.check_filter_normalize(crashes))
