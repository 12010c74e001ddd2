"""The daemon's lifecycle around the socket: start-up order, shutdown, metrics endpoint."""

from __future__ import annotations

import asyncio
import socket
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from kuryr import app, cli, metrics
from kuryr.config import Config
from kuryr.plugin.server import Domain, StartupError
from tests.unit.fake_drivers import fake_domain

Close = Callable[[], Awaitable[None]]


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="srv-") as name:
        yield Path(name)


class FakeBuild:
    """A domain builder that notes whether the socket existed while it was building."""

    def __init__(self) -> None:
        self.socket_seen_while_building: bool | None = None
        self.closed = 0

    async def __call__(self, config: Config) -> tuple[Domain, Close]:
        self.socket_seen_while_building = config.socket.exists()
        domain, _ = fake_domain()
        return domain, self.close

    async def close(self) -> None:
        self.closed += 1


async def wait_for(path: Path) -> None:
    while not path.exists():
        await asyncio.sleep(0.01)


async def get(sock: Path, url: str, method: str = "POST") -> tuple[int, str]:
    connector = aiohttp.UnixConnector(path=str(sock))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.request(method, f"http://kuryr{url}") as resp,
    ):
        return resp.status, await resp.text()


async def test_run_serves_after_build_and_cleans_up_on_stop(sock_dir: Path) -> None:
    config = Config(socket=sock_dir / "plugins" / "kuryr.sock")
    build, stop = FakeBuild(), asyncio.Event()
    task = asyncio.create_task(app.run(config, build, stop))
    await asyncio.wait_for(wait_for(config.socket), 10)
    assert build.socket_seen_while_building is False
    assert (await get(config.socket, "/Plugin.Activate"))[0] == 200
    stop.set()
    await asyncio.wait_for(task, 10)
    assert not config.socket.exists()
    assert build.closed == 1


async def test_systemd_hears_ready_once_the_socket_answers_and_stopping_at_stop(
    sock_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Type=notify: docker.service, ordered after kuryr.service, starts at READY=1."""
    config = Config(socket=sock_dir / "kuryr.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(sock_dir / "notify"))
        notify.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", str(sock_dir / "notify"))
        loop, stop = asyncio.get_running_loop(), asyncio.Event()
        task = asyncio.create_task(app.run(config, FakeBuild(), stop))
        ready = await asyncio.wait_for(loop.sock_recv(notify, 4096), 10)
        assert ready.decode().splitlines() == ["READY=1", f"STATUS=serving on {config.socket}"]
        assert (await get(config.socket, "/Plugin.Activate"))[0] == 200
        stop.set()
        assert await asyncio.wait_for(loop.sock_recv(notify, 4096), 10) == b"STOPPING=1"
        await asyncio.wait_for(task, 10)


async def test_domain_is_closed_when_the_socket_cannot_be_served(sock_dir: Path) -> None:
    occupied = sock_dir / "not-a-socket"
    occupied.write_text("")
    build = FakeBuild()
    with pytest.raises(StartupError):
        await app.run(Config(socket=occupied), build, asyncio.Event())
    assert build.closed == 1


async def test_metrics_count_requests_and_errors(sock_dir: Path) -> None:
    metrics_sock = sock_dir / "metrics.sock"
    config = Config(socket=sock_dir / "kuryr.sock", metrics_listen=f"unix:{metrics_sock}")
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(config, FakeBuild(), stop))
    await asyncio.wait_for(wait_for(config.socket), 10)
    assert (await get(config.socket, "/NetworkDriver.Leave"))[0] == 400
    status, text = await get(metrics_sock, "/metrics", "GET")
    stop.set()
    await asyncio.wait_for(task, 10)
    assert status == 200
    assert 'kuryr_request_errors_total{method="NetworkDriver.Leave",status="400"}' in text
    assert 'kuryr_request_seconds_count{method="NetworkDriver.Leave"}' in text
    assert not metrics_sock.exists()


def test_metrics_hooks() -> None:
    with metrics.neutron_call("POST", "ports"):
        pass
    metrics.set_pool_level("srv-subnet", 3)
    sample = metrics.REGISTRY.get_sample_value
    assert sample("kuryr_neutron_calls_total", {"method": "POST", "resource": "ports"})
    assert sample("kuryr_pool_ports", {"subnet": "srv-subnet"}) == 3
    metrics.forget_pool("srv-subnet")
    metrics.forget_pool("srv-subnet")
    assert sample("kuryr_pool_ports", {"subnet": "srv-subnet"}) is None


@pytest.mark.parametrize(
    ("listen", "where"),
    [
        ("127.0.0.1:9311", ("127.0.0.1", 9311)),
        ("[::1]:9311", ("::1", 9311)),
        ("unix:/run/kuryr/metrics.sock", Path("/run/kuryr/metrics.sock")),
    ],
)
def test_metrics_listen_forms(listen: str, where: object) -> None:
    assert metrics.parse_listen(listen) == where


@pytest.mark.parametrize("listen", ["9311", "127.0.0.1:", ":9311", "h:99999", "unix:rel/path"])
def test_bad_metrics_listen_is_refused(listen: str) -> None:
    with pytest.raises(ValueError, match="metrics_listen"):
        metrics.parse_listen(listen)


def test_unreadable_config_exits_2(sock_dir: Path) -> None:
    assert cli.main(["--config-file", str(sock_dir / "absent.conf"), "serve"]) == 2


def test_bad_metrics_listen_in_config_exits_2(sock_dir: Path) -> None:
    conf = sock_dir / "kuryr.conf"
    conf.write_text("[DEFAULT]\nmetrics_listen = everywhere\n")
    assert cli.main(["--config-file", str(conf), "serve"]) == 2
