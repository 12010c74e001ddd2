"""The words the daemon's admin socket and the operator's commands share."""

from __future__ import annotations

from kuryr.ops import admin_api


def test_the_pool_sizing_keys_read_on_one_line() -> None:
    cfg = {"min": 2, "max": 40, "batch": 4, "initial": 4, "window": 10.0, "idle_after": 300.0}
    assert admin_api.config_line(cfg) == (
        "min 2, max 40, batch 4, initial 4, window 10 s, idle_after 300 s"
    )
