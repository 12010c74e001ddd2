"""The report's "how it is measured" text, written from the run's own parameters."""

from __future__ import annotations

from typing import Any

from bench.params import Parameters


def _idle(p: Parameters) -> str:
    return f"the CPUs were {p.idle_fraction:.0%} idle over {p.idle_window_s:g} s"


def text(p: Parameters) -> str:
    sizes = ", ".join(str(s) for s in p.scale)
    ports = p.proxy_ports
    return f"""\
- One Docker daemon, one Neutron (ML2/OVN, noauth, one API worker), one OVS/OVN: the local
  stack of `kuryr stack up`. It is shared: other engineers' tests may have loaded Neutron
  during the run, which shows as spread between runs, never as a missing row.
- Every network is created with an explicit `--subnet` and `--gateway` (kuryr-libnetwork
  requires them); each driver has its own range (10.241-244.x.0/23), so none overlap.
- Start latency: the wall time of the `docker` CLI process, as a user waits for it.
  {p.warmup} warm-up rounds, then {p.runs} rounds of one `docker run --rm` per network in a
  fixed order (A B C D E, A B C D E, ...). p90 interpolates linearly between the closest
  ranks.
- Network create/rm: {p.net_reps} `docker network create` then `docker network rm` per
  network, interleaved across networks.
- Containers at once: {p.parallel} `docker run -d ... sleep` processes all started at the
  same moment; wall time from the first start to the last return, then all removed at once.
  {p.parallel_reps} bursts per network, interleaved across networks, each once {_idle(p)}
  (so no burst pays for the background work another left); the median burst is compared.
- Scale: from an idle machine, long-running `sleep` containers started {p.fill_width} at a
  time until the network holds N (N = {sizes}), then {p.scale_probes} `docker run --rm`
  probes right away (*right after the fill*), then, once {_idle(p)} (at most
  {p.idle_limit_s:g} s: the work a fill leaves behind, such as Kuryr's pool refills and
  bookkeeping, is done), {p.scale_probes} more (*settled*). Each driver's growth is its
  step's median over its first step's, for both; a driver is compared with the bridge's
  growth only at a step where both held the same number of containers. A driver stops
  growing its network once filling would exceed the fill time budget ({p.fill_budget_s:g} s
  per driver); the table then says how many it reached.
- Neutron requests: counted by a small proxy (bench/proxy.py, 127.0.0.1:{ports["kuryrlib"]}
  for kuryr-libnetwork, :{ports["kuryr"]} for Kuryr) that forwards to Neutron and logs each
  request. For this phase only, each daemon is restarted with its `[neutron] endpoint` on
  the proxy (the timing phases talk to Neutron directly), and Kuryr's is restored
  afterwards. Each operation is counted {p.count_reps} times: `network_create` and
  `network_rm` on networks of their own, `start` = `docker run -d ... sleep`, `stop` =
  `docker rm -f`, `run_rm` = `docker run --rm ... true` (start and stop), and for Kuryr
  `start_pool_miss` = `docker run -d --ip X ... sleep` with an address X no port holds, so
  that no pool port can serve it, and its `stop_pool_miss`. Each operation is counted from
  the docker command's start until the daemon had made no request for {p.quiet_gap_s:g} s (at
  most {p.quiet_max_s:g} s). *sync*: a Docker request waited for it: for Kuryr, the request
  carried the id of the Docker request being served (`X-OpenStack-Request-ID`, which Kuryr
  sends with every Neutron request it makes for one and with none of its background work),
  whenever it arrived; for kuryr-libnetwork, which sends no id, it reached Neutron while
  the docker command was running. *async*: the others.
- Bookkeeping lag: on a Kuryr network (Kuryr IPAM), the daemon restarted with `[pool]
  bookkeeping` set to each mode in turn (the rest of its config unchanged), then, from an
  idle machine, {p.lag_single} `docker run -d ... sleep` one at a time (each after the
  previous one's port showed) and {p.lag_burst} at once. A thread lists the network's
  ports in Neutron every {p.lag_poll_s * 1000:g} ms; a container's lag is when its endpoint
  id first showed as a port's device_id minus when its `docker run` returned (late by at
  most one listing), 0 when Neutron listed it before `docker run` returned.
- Peak RSS: VmHWM of each daemon process after the scale phase (for Kuryr, since its last
  start, which the shared stack may have made more recent than the run's start).
- kuryr-libnetwork 18.0.0 runs from PyPI in its own venv with `[neutron] auth_type = none`,
  its binding scripts (`bindir` = the venv's libexec/kuryr: veth + the `ovs` script, which
  puts the host end on br-int with `external_ids:iface-id`), and its own default
  subnetpools `kuryrlib`/`kuryrlib6`, so it never touches Kuryr's `kuryr`/`kuryr6`."""


def section(results: dict[str, Any]) -> list[str]:
    recorded = results.get("parameters")
    p = Parameters.from_dict(recorded) if recorded else Parameters()
    note = (
        []
        if recorded
        else ["This run did not record its parameters: the text shows this code's defaults.", ""]
    )
    return ["## How it is measured", "", *note, text(p), ""]
