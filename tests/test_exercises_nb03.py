"""Notebook 03's exercise check: ResNet-34's stage layout, against torchvision."""
from __future__ import annotations

from course_lib.exercises.nb03 import check_resnet34_layout, resnet34_layout_solution


def _fails(report) -> list[str]:
    return [msg for ok, msg in report.lines if not ok]


def test_the_solution_passes_including_weight_parity():
    report = check_resnet34_layout(resnet34_layout_solution)
    assert report.passed, str(report)
    text = str(report)
    assert "21,797,672 parameters" in text
    assert "outputs match" in text


def test_lists_instead_of_tuples_are_accepted():
    report = check_resnet34_layout(lambda: [list(stage) for stage in resnet34_layout_solution()])
    assert report.passed, str(report)


def test_the_stub_reports_not_implemented_without_raising():
    def resnet34_layout():
        raise NotImplementedError

    report = check_resnet34_layout(resnet34_layout)
    assert not report.passed
    assert "not implemented yet" in _fails(report)[0]


def test_a_student_error_is_reported_with_its_line():
    def resnet34_layout():
        stages = [(3, 64, 1)]
        return stages[4]

    report = check_resnet34_layout(resnet34_layout)
    assert not report.passed
    message = _fails(report)[0]
    assert "IndexError" in message and "line" in message and "stages[4]" in message


def test_wrong_stride_and_block_count_get_pointed_hints():
    report = check_resnet34_layout(lambda: [(3, 64, 2), (4, 128, 2), (5, 256, 2), (3, 512, 2)])
    fails = _fails(report)
    assert len(fails) == 2
    assert "stage 1" in fails[0] and "max-pool" in fails[0]
    assert "stage 3" in fails[1] and "too few" in fails[1]
    assert "Not yet" in str(report)


def test_resnet18s_layout_is_not_resnet34s():
    report = check_resnet34_layout(lambda: [(2, 64, 1), (2, 128, 2), (2, 256, 2), (2, 512, 2)])
    assert not report.passed
    assert sum("too few" in msg for msg in _fails(report)) == 4


def test_a_badly_shaped_answer_fails_cleanly():
    for answer in ([(3, 64), (4, 128), (6, 256), (3, 512)], "3, 4, 6, 3", [(3, 64, 1)] * 3, None):
        report = check_resnet34_layout(lambda answer=answer: answer)
        assert not report.passed
        assert "expected a list of 4 tuples" in _fails(report)[0]
