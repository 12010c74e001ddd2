"""The pure parts of a failing stack test's evidence: UUIDs named, names, bounded excerpts."""

from __future__ import annotations

from pathlib import Path

from tests.evidence import (
    REPO,
    Evidence,
    LogSlice,
    OvnRows,
    dir_name_of,
    is_stack_test,
    summary,
    uuids,
)

PORT = "49156f00-31b3-4845-a10b-ef6a7ccd0b71"
NET = "1A6075F0-9DAF-4F47-9108-2B3ED411025C"


def test_uuids_in_order_distinct_and_lower_cased() -> None:
    text = (
        f"port {PORT} of network {NET} not wired; tap49156f00-31 is down; "
        f"again {PORT}; docker id {'ab' * 32}; {PORT}x is no uuid"
    )
    assert uuids(text) == [PORT, NET.lower()]


def test_uuids_are_bounded() -> None:
    many = " ".join(f"{i:08x}-0000-0000-0000-000000000000" for i in range(30))
    assert len(uuids(many, most=12)) == 12
    assert uuids("no ids here") == []


def test_dir_names_are_safe_and_bounded() -> None:
    name = dir_name_of("tests/e2e/test_x.py::test_y[a/b c]")
    assert name == "tests_e2e_test_x.py_test_y_a_b_c"
    assert len(dir_name_of("x" * 500)) == 150


def test_only_e2e_and_integration_tests_are_stack_tests() -> None:
    assert is_stack_test(REPO / "tests/e2e/test_crash.py")
    assert is_stack_test(REPO / "tests/integration/test_ipam.py")
    assert not is_stack_test(REPO / "tests/unit/test_naming.py")
    assert not is_stack_test(Path("/elsewhere/tests/e2e/test_crash.py"))


def found(nodeid: str, lines: int) -> Evidence:
    return Evidence(
        nodeid,
        Path(f"/ev/{nodeid}"),
        logs=[LogSlice("kuryr.log", [f"line {i} " + "x" * 500 for i in range(lines)], dropped=3)],
        ovn=[
            OvnRows(PORT, "_uuid : 1\nname : x", "(ovn-sbctl exited 1: refused)"),
            OvnRows(NET.lower(), "", ""),
        ],
    )


def test_summary_is_bounded() -> None:
    out = summary([found(f"t{i}", 1000) for i in range(8)])
    assert out[:2] == ["t0: /ev/t0", "  kuryr.log: 1003 lines in the window"]
    assert out[2].startswith("    line 994 ") and len(out[2]) == 4 + 200
    assert f"  {PORT}: Logical_Switch_Port, no SB row" in out
    assert f"  {NET.lower()}: no NB row, no SB row" in out
    # Five tests in detail (2 + 6 + 2 lines each), the other three by path only.
    assert len(out) == 5 * 10 + 3
    assert out[-1] == "t7: /ev/t7"
