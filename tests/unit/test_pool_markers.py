"""A marker subnetpool is told from any other subnetpool by its description alone."""

from __future__ import annotations

from kuryr.domain import pool_markers

SHARED = "5ea26d9a-02b6-4aa6-90f8-35d28d5d161a"


def test_a_marker_names_its_shared_pool() -> None:
    marker = {
        "name": "kuryrPool-10.10.7.0/24",
        "description": pool_markers.DESCRIPTION_PREFIX + SHARED,
    }
    assert pool_markers.shared_pool_of(marker) == SHARED


def test_other_subnetpools_are_no_markers() -> None:
    for description in (None, "", "an ip-range pool", pool_markers.DESCRIPTION_PREFIX):
        pool = {"name": "kuryrPool-10.10.7.0/24", "description": description}
        assert pool_markers.shared_pool_of(pool) is None
