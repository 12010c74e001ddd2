"""The reason the bench records for a failed docker command."""

from __future__ import annotations

from bench.dockercli import Outcome


def _failed(stderr: str) -> Outcome:
    return Outcome(("docker", "run"), 0.0, 1.0, 125, "", stderr)


def test_error_is_dockers_reason_not_the_usage_hint() -> None:
    stderr = (
        "docker: Error response from daemon: network bench-kuryr not found.\n"
        "Run 'docker run --help' for more information\n"
    )
    assert _failed(stderr).error == (
        "docker: Error response from daemon: network bench-kuryr not found."
    )


def test_error_without_output_names_the_exit_status() -> None:
    assert _failed("\nSee 'docker run --help'.\n").error == "exit status 125"


def test_elapsed_and_ok() -> None:
    done = Outcome(("docker", "ps"), 10.0, 10.5, 0, "", "")
    assert done.ok and done.elapsed == 0.5


def test_error_skips_dockerd_warnings() -> None:
    stderr = (
        "WARNING: IPv4 forwarding is disabled. Networking will not work.\n"
        "docker: Error response from daemon: plugin not found.\n"
    )
    assert _failed(stderr).error == "docker: Error response from daemon: plugin not found."
