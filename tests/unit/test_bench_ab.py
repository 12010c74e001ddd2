"""bench.ab's pure parts: the order of its rounds, its overrides, its config copies."""

from __future__ import annotations

import configparser
from pathlib import Path

from bench.ab import (
    OTHER,
    THIS,
    _by_driver,
    _launch,
    _order,
    _pool_overrides,
    _ratios,
    _round_drivers,
)
from bench.ourdaemon import Launch, write_config_copy


def test_each_side_goes_first_as_often_as_second() -> None:
    assert _order(2) == [OTHER, THIS, THIS, OTHER]
    assert _order(3)[-2:] == [OTHER, THIS]


def test_pool_overrides_name_pool_keys() -> None:
    assert _pool_overrides("min=20, max=40") == {("pool", "min"): "20", ("pool", "max"): "40"}
    assert _pool_overrides("") == {}


def test_the_other_side_runs_the_other_code_first_on_the_path() -> None:
    base = Launch(["/venv/bin/kuryr", "serve"], {"PYTHONPATH": "/x"})
    assert _launch(base, THIS, Path("/old")) is base
    assert _launch(base, OTHER, Path("/old")).env["PYTHONPATH"] == "/old:/x"
    assert _launch(base, OTHER, Path("/old")).argv == base.argv


def test_ratios_are_against_the_bridge_of_the_same_round() -> None:
    assert _ratios({"bridge": 0.5, "kuryr": 0.45, "kuryr-dipam": None}) == {
        "kuryr": 0.9,
        "kuryr-dipam": None,
    }
    assert _ratios({"kuryr": 0.45}) == {"kuryr": None}


def test_a_config_copy_sets_default_keys_and_new_sections(tmp_path: Path) -> None:
    original = tmp_path / "kuryr.conf"
    original.write_text("[DEFAULT]\nstate_dir = /a\n\n[pool]\nmin = 2\n")
    copy = tmp_path / "copy.conf"
    settings = {("DEFAULT", "state_dir"): "/b", ("pool", "min"): "20", ("neutron", "x"): "y"}
    write_config_copy(original, settings, copy)
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(copy)
    assert parser.defaults()["state_dir"] == "/b"
    assert parser.get("pool", "min") == "20" and parser.get("neutron", "x") == "y"


def test_each_round_has_networks_of_its_own() -> None:
    first, second = _round_drivers(0), _round_drivers(1)
    assert {d.network for d in first}.isdisjoint(d.network for d in second)
    assert [d.subnet(0) for d in first] != [d.subnet(1) for d in second]
    assert _by_driver({d.key: d.key for d in second}, second)["kuryr"] == "kuryr-1"
