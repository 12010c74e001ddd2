"""The CI check that e2e tests ran, on hand-written JUnit XML reports."""

from __future__ import annotations

from pathlib import Path

from tests.ci_report import Case, cases, e2e_gaps, e2e_modules, main, module_seconds

REPORT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="tests.unit.test_naming" name="test_a" />
<testcase classname="tests.e2e.test_crash" name="test_kill" time="2.5" />
<testcase classname="tests.e2e.test_expose.TestPorts" name="test_tcp" time="3.0" />
<testcase classname="tests.e2e.test_expose" name="test_udp" time="1.5"><skipped message="no" />
</testcase>
<testcase classname="tests.e2e.test_vif" name="test_b"><failure message="x" /></testcase>
<testcase classname="tests.e2e.test_vif" name="test_c"><error message="y" /></testcase>
<testcase classname="tests.e2e.test_crash" name="test_v6">
<skipped type="pytest.xfail" message="bug" /></testcase>
</testsuite></testsuites>"""


def test_outcomes_are_read_from_the_children() -> None:
    assert [c.outcome for c in cases(REPORT)] == [
        "passed",
        "passed",
        "passed",
        "skipped",
        "failure",
        "error",
        "xfailed",
    ]


def test_every_module_needs_a_pass_and_no_skip() -> None:
    gaps = e2e_gaps(cases(REPORT), ["tests.e2e.test_crash", "tests.e2e.test_expose"])
    assert gaps == ["tests.e2e.test_expose::test_udp was skipped"]
    assert e2e_gaps(cases(REPORT), ["tests.e2e.test_vif"]) == ["tests.e2e.test_vif: no test passed"]


def test_an_expected_failure_ran_and_is_no_gap() -> None:
    xfailed = Case("tests.e2e.test_crash", "test_v6", "xfailed")
    assert e2e_gaps([xfailed], ["tests.e2e.test_crash"]) == ["tests.e2e.test_crash: no test passed"]
    assert e2e_gaps(cases(REPORT), ["tests.e2e.test_crash"]) == []


def test_a_class_in_a_module_counts_for_it_but_a_longer_name_does_not() -> None:
    assert Case("tests.e2e.test_expose.TestPorts", "t", "passed").in_module("tests.e2e.test_expose")
    assert not Case("tests.e2e.test_exposed", "t", "passed").in_module("tests.e2e.test_expose")


def test_a_run_without_e2e_tests_fails() -> None:
    unit_only = [Case("tests.unit.test_naming", "test_a", "passed")]
    assert e2e_gaps(unit_only, ["tests.e2e.test_crash"]) == ["tests.e2e.test_crash: no test passed"]
    assert e2e_gaps(unit_only, []) != []


def test_modules_are_the_test_files_on_disk(tmp_path: Path) -> None:
    for name in ("test_b.py", "test_a.py", "helpers.py", "conftest.py"):
        (tmp_path / name).write_text("")
    assert e2e_modules(tmp_path) == ["tests.e2e.test_a", "tests.e2e.test_b"]


def test_a_missing_or_broken_report_fails(tmp_path: Path) -> None:
    assert main([str(tmp_path / "absent.xml")]) == 1
    broken = tmp_path / "broken.xml"
    broken.write_text("<testsuites><testcase")
    assert main([str(broken)]) == 1
    assert main([]) == 2


def test_module_times_add_up_a_modules_classes_slowest_first() -> None:
    assert module_seconds(cases(REPORT)) == [
        ("tests.e2e.test_expose", 4.5),
        ("tests.e2e.test_crash", 2.5),
        ("tests.unit.test_naming", 0.0),
        ("tests.e2e.test_vif", 0.0),
    ]
