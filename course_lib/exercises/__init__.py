"""Exercise checks: the ``check_*`` functions (one module per notebook) tell a student what is right or wrong,
and report the student's own error and line when their code crashes, never a traceback from inside course_lib."""
from __future__ import annotations

import linecache
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

_LIB_DIR = str(Path(__file__).resolve().parent.parent)


class StudentCodeError(Exception):
    """The student's code raised; the message names their error and their line."""


def _student_frame(tb) -> traceback.FrameSummary | None:
    frames = traceback.extract_tb(tb)
    theirs = [f for f in frames if not str(Path(f.filename).resolve()).startswith(_LIB_DIR)
              and "site-packages" not in f.filename and "/lib/python" not in f.filename]
    return theirs[-1] if theirs else (frames[-1] if frames else None)


def student_call(what: str, fn: Callable, *args, **kwargs) -> Any:
    """Call the student's ``fn``; if it raises, raise :class:`StudentCodeError` pointing at their line."""
    try:
        return fn(*args, **kwargs)
    except Exception as err:  # noqa: BLE001 - anything the student's code raises is reported
        frame = _student_frame(err.__traceback__)
        where = ""
        if frame is not None:
            line = (frame.line or linecache.getline(frame.filename, frame.lineno)).strip()
            cell = "your notebook cell" if frame.filename.startswith("<") or "ipykernel" in frame.filename else Path(frame.filename).name
            where = f" at line {frame.lineno} of {cell}, in {frame.name}(): `{line}`"
        raise StudentCodeError(f"your code raised {type(err).__name__}: {err} while {what}{where}") from None


@dataclass
class Report:
    """One line per check; ``passed`` is True when every check passed."""

    title: str
    lines: list[tuple[bool, str]] = field(default_factory=list)

    def check(self, ok: bool, message_ok: str, message_fail: str) -> bool:
        self.lines.append((bool(ok), message_ok if ok else message_fail))
        return bool(ok)

    def error(self, message: str) -> None:
        self.lines.append((False, message))

    def student_error(self, err: "StudentCodeError") -> None:
        """Record the student's own error; a bare stub gets "not implemented yet"."""
        if "NotImplementedError" in str(err):
            self.error("not implemented yet: replace `raise NotImplementedError` with your code")
        else:
            self.error(str(err))

    @property
    def passed(self) -> bool:
        return bool(self.lines) and all(ok for ok, _ in self.lines)

    def __str__(self) -> str:
        body = "\n".join(f"  {'PASS' if ok else 'FAIL'}  {msg}" for ok, msg in self.lines)
        verdict = "All checks passed." if self.passed else "Not yet: fix the FAIL lines above and run the check again."
        return f"{self.title}\n{body}\n{verdict}"

    def _repr_pretty_(self, p, cycle):  # IPython shows the report, not a dataclass repr
        p.text(str(self))

    def __repr__(self) -> str:
        return str(self)
