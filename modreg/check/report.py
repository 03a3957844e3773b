"""Check results and their three renderings: a rich table, JSON, and JUnit XML.

Every check — whatever it inspects — ends as one :class:`CheckResult`: the module, the
check's name, a status and a one-line message carrying the numbers. CI needs nothing else:
the exit status is 0 only when no result failed, each failure prints as one line naming the
module, the check and the numbers, and JUnit gets one testcase per result.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from modreg._text import safe_text
from modreg.errors import ModregError

__all__ = ["CheckReport", "CheckResult", "Status", "failure", "render_table", "run_check"]

Status = Literal["pass", "fail", "skip"]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one module."""

    module: str
    check: str
    status: Status
    message: str
    details: tuple[str, ...] = ()
    seconds: float = 0.0
    data: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def ok(self) -> bool:
        return self.status != "fail"

    def line(self) -> str:
        """``FAIL physics/drag@1.1.0 interface: ...`` — what CI logs show for this result.

        Module folders, names and messages may quote a module's text: control characters in
        them are shown escaped, never sent to the terminal.
        """
        return safe_text(f"{self.status.upper()} {self.module} {self.check}: {self.message}")

    def to_json(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "check": self.check,
            "status": self.status,
            "message": self.message,
            "details": list(self.details),
            "seconds": round(self.seconds, 4),
            "data": self.data,
        }


@dataclass
class CheckReport:
    """The results of one ``modreg check`` run, in the order the checks ran."""

    results: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.ok]

    def add(self, result: CheckResult) -> CheckResult:
        self.results.append(result)
        return result

    def extend(self, other: CheckReport) -> None:
        self.results.extend(other.results)

    def counts(self) -> dict[str, int]:
        return {s: sum(r.status == s for r in self.results) for s in ("pass", "fail", "skip")}

    def summary(self) -> str:
        counts = self.counts()
        verdict = "ok" if self.ok else "FAILED"
        return (
            f"{len(self.results)} check(s): {counts['pass']} passed, {counts['fail']} failed, "
            f"{counts['skip']} skipped: {verdict}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "counts": self.counts(),
            "results": [r.to_json() for r in self.results],
        }

    def to_junit(self) -> bytes:
        """JUnit XML: one ``<testsuite>`` per module, one ``<testcase>`` per check."""
        import xml.etree.ElementTree as ET

        root = ET.Element("testsuites", name="modreg check")
        suites: dict[str, ET.Element] = {}
        for result in self.results:
            # XML 1.0 cannot hold most control characters: module text is escaped first.
            module, message = safe_text(result.module), safe_text(result.message)
            if module not in suites:
                suites[module] = ET.SubElement(root, "testsuite", name=module)
            case = ET.SubElement(
                suites[module],
                "testcase",
                classname=module,
                name=safe_text(result.check),
                time=f"{result.seconds:.4f}",
            )
            text = "\n".join(safe_text(line) for line in (result.message, *result.details))
            if result.status == "fail":
                ET.SubElement(case, "failure", message=message).text = text
            elif result.status == "skip":
                ET.SubElement(case, "skipped", message=message)
            else:
                ET.SubElement(case, "system-out").text = text
        for element in (root, *suites.values()):
            cases = element.iter("testcase")
            _set_counts(element, list(cases))
        ET.indent(root)
        xml: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
        return xml

    def write_junit(self, path: str | Path) -> None:
        Path(path).write_bytes(self.to_junit())

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2)


def _set_counts(element: Any, cases: list[Any]) -> None:
    element.set("tests", str(len(cases)))
    element.set("failures", str(sum(c.find("failure") is not None for c in cases)))
    element.set("skipped", str(sum(c.find("skipped") is not None for c in cases)))
    element.set("errors", "0")
    element.set("time", f"{sum(float(c.get('time', 0)) for c in cases):.4f}")


class _Outcome:
    """What a check body fills in; :func:`run_check` turns it into a :class:`CheckResult`."""

    def __init__(self) -> None:
        self.status: Status = "pass"
        self.message = "ok"
        self.details: tuple[str, ...] = ()
        self.data: dict[str, Any] = {}

    def set(
        self,
        status: Status,
        message: str,
        details: tuple[str, ...] = (),
        data: dict[str, Any] | None = None,
    ) -> None:
        self.status, self.message, self.details = status, message, details
        self.data = data or {}


def failure(module: str, check: str, exc: ModregError) -> CheckResult:
    """A failed result carrying ``exc``'s one-line message."""
    return CheckResult(
        module, check, "fail", " ".join(str(exc).split()), data={"error": type(exc).__name__}
    )


@contextmanager
def run_check(report: CheckReport, module: str, check: str) -> Iterator[_Outcome]:
    """Time a check body; a modreg error inside it becomes a failed result, not a crash.

    CI must report every module, so one bad module's error (a manifest that does not
    validate, data that does not fit) is recorded as that check's failure and the run goes on.
    """
    outcome = _Outcome()
    start = time.perf_counter()
    try:
        yield outcome
    except ModregError as exc:
        outcome.set("fail", " ".join(str(exc).split()), data={"error": type(exc).__name__})
    report.add(
        CheckResult(
            module,
            check,
            outcome.status,
            outcome.message,
            outcome.details,
            time.perf_counter() - start,
            outcome.data,
        )
    )


def render_table(report: CheckReport, print_line: Callable[[str], None] | None = None) -> None:
    """Print the human table (rich), then one line per failure, then the summary.

    Cells are :class:`rich.text.Text`, so a folder named ``repo/[/x]`` or a message quoting
    ``[link=...]`` is printed as written, not read as markup.
    """
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(soft_wrap=False)
    if not console.is_terminal:  # CI logs: no terminal width to fit, keep rows whole
        console.width = max(console.width, 160)
    table = Table("module", "check", "status", "result", box=None, header_style="bold")
    styles = {"pass": "green", "fail": "bold red", "skip": "yellow"}
    for r in report.results:
        status = Text(r.status, style=styles[r.status])
        table.add_row(
            Text(safe_text(r.module)), Text(safe_text(r.check)), status, Text(safe_text(r.message))
        )
    console.print(table, highlight=False)
    emit = print_line or print
    for r in report.results:
        for detail in r.details:
            emit(safe_text(f"  {r.module} {r.check}: {detail}"))
    for r in report.failures:
        emit(r.line())
    emit(report.summary())
