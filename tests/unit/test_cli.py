"""The ``kuryr`` command loads the configuration once, before any subcommand runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from kuryr import cli

COMMANDS = [["serve"], ["status"], ["status", "--hosts"], ["pools", "show"], ["gc"], ["port", "c"]]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_configuration_that_cannot_be_loaded_stops_every_subcommand(
    tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    absent = tmp_path / "absent.conf"
    assert cli.main(["--config-file", str(absent), *command]) == cli.CONFIG_REFUSED
    err = capsys.readouterr().err
    assert err.startswith(f"kuryr {command[0]}: cannot load configuration: ")
    assert str(absent) in err


def test_health_reports_the_configuration_as_its_first_failed_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "kuryr.conf"
    conf.write_text("[pool]\nmax = many\n")
    assert cli.main(["--config-file", str(conf), "health"]) == 1
    assert capsys.readouterr().out.startswith("FAIL  config   ")
