"""What ``-p`` adds to a container start: ``docker run --rm -p 8080:80`` against ``docker run
--rm`` on the same Kuryr network, attached to the stack's ``kuryr-router`` (kuryr.domain.published).

Two cases, each interleaved with plain starts: the first publisher of the network (Kuryr makes
the floating IP, and releases it again at the container's stop), and a network whose floating
IP another running container keeps (the steady state: only the port forwarding is made)."""

from __future__ import annotations

from typing import Any

from bench.dockercli import IMAGE, PREFIX, Outcome, docker
from bench.markdown import errors, seconds, table
from bench.stats import Summary

NETWORK = f"{PREFIX}publish"
# Outside every driver's 10.<241-244>.0.0/16 (bench.drivers).
SUBNET, GATEWAY = "10.245.0.0/23", "10.245.0.1"
ROUTER = "kuryr-router"
HOLDER = f"{PREFIX}publish-holder"
CASES = {
    "first": "first publisher of the network (floating IP made and released)",
    "reused": "another container keeps the network's floating IP",
}


def _run(*publish: str) -> Outcome:
    return docker("run", "--rm", f"--net={NETWORK}", *publish, IMAGE, "true")


def _timings(done: list[Outcome]) -> dict[str, Any]:
    samples = [o.elapsed for o in done if o.ok]
    return {
        "summary": Summary.of(samples).as_dict() if samples else None,
        "errors": len(done) - len(samples),
        "error_examples": sorted({o.error for o in done if not o.ok})[:3],
    }


def _interleaved(runs: int, warmup: int) -> dict[str, dict[str, Any]]:
    for _ in range(warmup):
        _run()
        _run("-p", "8080:80")
    plain: list[Outcome] = []
    published: list[Outcome] = []
    for _ in range(runs):
        plain.append(_run())
        published.append(_run("-p", "8080:80"))
    return {"plain": _timings(plain), "publish": _timings(published)}


def measure(runs: int, warmup: int) -> dict[str, Any]:
    """Both cases on a network of their own, removed at the end."""
    made = docker(
        "network", "create", "-d", "kuryr", "--ipam-driver", "kuryr", "--subnet", SUBNET,
        "--gateway", GATEWAY, "-o", f"neutron.router={ROUTER}", NETWORK,
    )  # fmt: skip
    if not made.ok:
        return {"error": made.error}
    try:
        results = {"first": _interleaved(runs, warmup)}
        holder = docker(
            "run", "-d", "--name", HOLDER, f"--net={NETWORK}", "-p", "8079:80", IMAGE,
            "sleep", "3600",
        )  # fmt: skip
        if not holder.ok:
            return {**results, "error": holder.error}
        results["reused"] = _interleaved(runs, warmup)
        return results
    finally:
        docker("rm", "-f", HOLDER)
        docker("network", "rm", NETWORK)


def extra(case: dict[str, Any]) -> float | None:
    """The median start with -p minus the median start without, on the same network."""
    published, plain = ((case[k]["summary"] or {}).get("median") for k in ("publish", "plain"))
    if published is None or plain is None:
        return None
    return float(published) - float(plain)


def section(results: dict[str, Any]) -> list[str]:
    measured = results.get("publish")
    if not measured:
        return []
    if "error" in measured and "first" not in measured:
        return ["## `docker run -p`", "", f"Not measured: {measured['error']}", ""]
    rows = []
    for key, label in CASES.items():
        case = measured.get(key)
        if case is None:
            continue
        plain, publish = (case[k]["summary"] or {} for k in ("plain", "publish"))
        rows.append(
            [
                label,
                seconds(plain.get("median")),
                seconds(publish.get("median")),
                seconds(publish.get("p90")),
                seconds(extra(case)),
                f"{errors(case['plain'])} / {errors(case['publish'])}",
            ]
        )
    header = [
        "case",
        "`docker run` median s",
        "`-p 8080:80` median s",
        "`-p` p90 s",
        "extra median s",
        "errors (plain / -p)",
    ]
    intro = (
        "`docker run --rm -p 8080:80 kuryr/busybox true` against the same without `-p`, "
        f"interleaved, on a Kuryr network attached to `{ROUTER}` (the forwarding is made at "
        "the start and removed at the stop)."
    )
    return ["## `docker run -p`: the cost of publishing", "", intro, "", *table(header, rows)]
