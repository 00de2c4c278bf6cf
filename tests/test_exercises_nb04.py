"""Notebook 04's exercise: the check applies the course's rule for a real difference, refuses one seed as evidence,
and the worked solution (course_lib and the answers page, never the notebook) passes it."""
from __future__ import annotations

import json
import re
from pathlib import Path

from course_lib.exercises import nb04
from course_lib.stats import accuracy_interval, compare_accuracies, welch_p_value

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "04_cnn_vs_resnet.ipynb"


def test_the_check_never_accepts_one_seed_as_evidence():
    def gap_only(acc_a, acc_b, n_test):  # a big gap, whatever the seeds: the mistake the exercise is about
        return abs(sum(acc_a) / len(acc_a) - sum(acc_b) / len(acc_b)) > 0.01

    report = nb04.check_real_difference(gap_only)
    assert not report.passed and "one seed each" in str(report)


def test_the_check_catches_a_missing_wilson_step_and_reports_student_errors():
    def no_wilson(acc_a, acc_b, n_test):
        return min(len(acc_a), len(acc_b)) >= 3 and welch_p_value(acc_a, acc_b) < 0.05

    report = nb04.check_real_difference(no_wilson)
    assert not report.passed and "Wilson" in str(report)

    def stub(acc_a, acc_b, n_test):
        raise NotImplementedError

    assert "not implemented yet" in str(nb04.check_real_difference(stub))

    def broken(acc_a, acc_b, n_test):
        return acc_a[5]

    assert "IndexError" in str(nb04.check_real_difference(broken))


def test_the_solution_lives_outside_the_notebook_and_passes_the_check():
    assert nb04.check_real_difference(nb04.solution_real_difference).passed
    text = NOTEBOOK.read_text(encoding="utf-8")
    assert "<details>" not in text and "solution_real_difference" not in text  # no solution in the notebook
    answers = (NOTEBOOK.parent.parent / "docs" / "answers" / "04.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(def real_difference.*?)```", answers, re.S).group(1)
    namespace = {"welch_p_value": welch_p_value, "accuracy_interval": accuracy_interval}
    exec(code, namespace)  # noqa: S102 - the answers page's solution
    assert nb04.check_real_difference(namespace["real_difference"]).passed


def test_no_committed_output_shows_the_expected_answers():
    """The check's PASS lines list every case with its expected answer; only the student's own run may show them."""
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        shown = "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                        for o in cell.get("outputs", []))
        assert "PASS" not in shown and "All checks passed" not in shown
