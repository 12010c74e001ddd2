"""One VM's VLAN ids: the lowest free one, never one a subport holds, freed on release."""

from __future__ import annotations

import pytest

from kuryr.backends.binding.segmentation import SegmentationIds
from kuryr.errors import BackendError


def test_ids_start_at_1_and_a_port_keeps_its_own() -> None:
    ids = SegmentationIds()
    assert [ids.allocate("a"), ids.allocate("b"), ids.allocate("a")] == [1, 2, 1]


def test_loaded_subports_keep_theirs_and_the_gaps_are_used() -> None:
    ids = SegmentationIds()
    ids.load({"old1": 1, "old3": 3})
    assert [ids.allocate("x"), ids.allocate("y")] == [2, 4]
    assert ids.of("old3") == 3


def test_a_released_id_is_given_again() -> None:
    ids = SegmentationIds()
    ids.allocate("a")
    ids.allocate("b")
    ids.release("a")
    assert ids.allocate("c") == 1
    assert ids.held() == {"b": 2, "c": 1}


def test_an_id_refused_as_a_duplicate_is_set_aside_until_the_trunk_is_read_again() -> None:
    ids = SegmentationIds()
    assert ids.allocate("a") == 1
    ids.refused("a", 1)
    assert ids.of("a") is None
    assert ids.allocate("a") == 2
    ids.load({"a": 2})
    assert ids.allocate("b") == 1


def test_a_full_trunk_is_an_error() -> None:
    ids = SegmentationIds(first=1, last=2)
    ids.allocate("a")
    ids.allocate("b")
    with pytest.raises(BackendError, match="no free VLAN id"):
        ids.allocate("c")
