"""kuryr.stack.teardown: every removal step is attempted, and what is shared or holds the
state goes only once nothing failed (the next ``down`` retries the rest)."""

from __future__ import annotations

from pathlib import Path

from kuryr.stack.errors import StackError
from kuryr.stack.teardown import remove_members, remove_one


def failing(name: str) -> None:
    raise StackError(name, "refused")


def test_one_machine_attempts_every_step_and_keeps_its_directory_on_a_failure(
    tmp_path: Path,
) -> None:
    done: list[str] = []
    errors = remove_one(
        [lambda: done.append("a"), lambda: failing("b"), lambda: done.append("c")], tmp_path
    )
    assert done == ["a", "c"] and [e.component for e in errors] == ["b"]
    assert tmp_path.exists()
    assert remove_one([lambda: done.append("d")], tmp_path) == []
    assert not tmp_path.exists()


def test_members_go_last_first_and_the_shared_part_only_when_all_went(tmp_path: Path) -> None:
    order: list[str] = []
    shared: list[str] = []

    def remove(name: str) -> list[StackError]:
        order.append(name)
        return [StackError(name, "refused")] if name == "h2" else []

    errors = remove_members(["h2", "h3"], remove, lambda: shared.append("x"), tmp_path)
    assert order == ["h3", "h2"] and len(errors) == 1 and shared == [] and tmp_path.exists()
    assert remove_members(["h3"], remove, lambda: shared.append("x"), tmp_path) == []
    assert shared == ["x"] and not tmp_path.exists()
