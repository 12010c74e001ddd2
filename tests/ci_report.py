"""CI's proof that the end-to-end tests ran: ``python -m tests.ci_report REPORT.xml`` reads
pytest's JUnit XML report and fails unless every module of tests/e2e has a passing test and
no e2e test was skipped (an e2e test never skips: a stack it cannot use is a failure). A run
that deselected, skipped or never reached the e2e tests therefore cannot pass CI. An expected
failure is not a skip: it ran, and the e2e suite marks them strict, so a fix upstream that
makes one pass fails the run until the mark goes."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

E2E_DIR = Path(__file__).resolve().parent / "e2e"
E2E_PACKAGE = "tests.e2e"
SLOWEST = 25
OUTCOMES = ("failure", "error", "skipped")


@dataclass(frozen=True)
class Case:
    classname: str
    name: str
    outcome: str  # "passed", "xfailed", or the JUnit child it carries: failure, error, skipped
    seconds: float = 0.0

    @property
    def module(self) -> str:
        """The test module, without a test class pytest names after it."""
        parts = self.classname.split(".")
        while len(parts) > 1 and parts[-1].startswith("Test"):
            parts.pop()
        return ".".join(parts)

    def in_module(self, module: str) -> bool:
        return self.classname == module or self.classname.startswith(f"{module}.")


def cases(report: str) -> list[Case]:
    """Every testcase of a JUnit XML report with its outcome."""
    found = []
    for case in ET.fromstring(report).iter("testcase"):
        outcome = next((_outcome(c) for c in case if c.tag in OUTCOMES), "passed")
        seconds = float(case.get("time") or 0.0)
        found.append(Case(case.get("classname", ""), case.get("name", ""), outcome, seconds))
    return found


def _outcome(child: ET.Element) -> str:
    # pytest writes an expected failure as a <skipped> of type pytest.xfail.
    if child.tag == "skipped" and child.get("type") == "pytest.xfail":
        return "xfailed"
    return child.tag


def e2e_modules(directory: Path = E2E_DIR) -> list[str]:
    return sorted(f"{E2E_PACKAGE}.{p.stem}" for p in directory.glob("test_*.py"))


def e2e_gaps(ran: Sequence[Case], modules: Iterable[str]) -> list[str]:
    """Why the report does not prove the e2e tests ran; empty when it does."""
    modules = list(modules)
    if not modules:
        return [f"no e2e test module in {E2E_DIR}"]
    gaps = [
        f"{module}: no test passed"
        for module in modules
        if not any(c.in_module(module) and c.outcome == "passed" for c in ran)
    ]
    gaps += [
        f"{c.classname}::{c.name} was skipped"
        for c in ran
        if c.outcome == "skipped" and any(c.in_module(m) for m in modules)
    ]
    return gaps


def module_seconds(ran: Iterable[Case]) -> list[tuple[str, float]]:
    """Each test module's total time, the slowest first: where `make test`'s budget goes."""
    totals: dict[str, float] = {}
    for case in ran:
        totals[case.module] = totals.get(case.module, 0.0) + case.seconds
    return sorted(totals.items(), key=lambda item: -item[1])


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.ci_report REPORT.xml", file=sys.stderr)
        return 2
    try:
        ran = cases(Path(argv[0]).read_text())
    except (OSError, ET.ParseError) as exc:
        print(f"ci: no readable test report: {exc}", file=sys.stderr)
        return 1
    for module, seconds in module_seconds(ran)[:SLOWEST]:
        print(f"ci: {seconds:7.1f} s  {module}")
    gaps = e2e_gaps(ran, e2e_modules())
    for gap in gaps:
        print(f"ci: e2e tests did not run: {gap}", file=sys.stderr)
    if gaps:
        return 1
    e2e = [c for c in ran if c.in_module(E2E_PACKAGE)]
    passed = sum(1 for c in e2e if c.outcome == "passed")
    xfailed = sum(1 for c in e2e if c.outcome == "xfailed")
    modules = len(e2e_modules())
    print(f"ci: {passed} e2e tests passed in {modules} modules, {xfailed} failed as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
