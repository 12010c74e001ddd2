"""Configuration: an INI file that accepts kuryr-libnetwork's section and key names.

Sections and keys (all optional; defaults suit the local stack):

``[DEFAULT]``  ``debug``; ``socket`` (the plugin socket, default
``/run/docker/plugins/kuryr.sock``); ``socket_group`` (owner group for mode 0660);
``state_dir`` (local durable state, default ``/var/lib/kuryr``);
``metrics_listen`` (``127.0.0.1:PORT`` or ``unix:/path``; off when empty);
``request_timeout`` (seconds one Docker request may spend on backend calls in total; keep it
under dockerd's 30 s plugin timeout; default 20).

``[neutron]``  standard keystoneauth options. ``auth_type = none`` with ``endpoint`` talks to
a noauth Neutron; ``cloud`` names a clouds.yaml entry; with neither, ``OS_*`` variables are
used. Also kuryr-libnetwork's ``default_subnetpool_v4`` / ``default_subnetpool_v6``,
``vif_plugging_timeout``, ``enable_dhcp``, ``timeout``, ``retries``; ``port_active_timeout``
(seconds after Join by which Neutron must report a container's port ACTIVE; default 30); and
``router`` (a Neutron router's name or id: every network's subnets Kuryr makes are attached
to it at CreateNetwork and detached when they go, except ``--internal`` networks'; ``-o
neutron.router=NAME|ID`` chooses per network, an empty value none; default none; the router
itself is never created or deleted by Kuryr); ``floating_ip_per`` (``network``: the ports ``-p``
publishes on a network share one floating IP; ``container``: each container gets its own;
default ``network``; kuryr.domain.published).

``[binding]``  ``host`` (the chassis name used as ``binding:host_id``; default: OVSDB
``external_ids:hostname``; nested mode binds nothing, kuryr.domain.ports.mine),
``ovsdb_connection``, ``integration_bridge``, ``veth_dst_prefix``; ``tx_checksum_offload``
(default true; ``false`` turns TX checksum offload, and with it TSO, off on each container's
veth: needed for TCP and UDP between hosts when OVS runs the userspace datapath (OVS 3.1 drops
tunnelled packets that carry offload flags), at some cost in same-host throughput). Nested mode
(containers inside a Nova VM, kuryr.backends.binding.nested): ``driver`` (``veth``: the host's
own br-int, the default; ``vlan``: each container a trunk subport, its VLAN subinterface of the
VM's NIC moved into it; ``macvlan``: a macvlan device of the VM's NIC, its address in the VM
port's allowed_address_pairs); kuryr-lib's ``default_driver`` (and its old name ``driver``) with
``kuryr.lib.binding.drivers.<name>`` are accepted, as is kuryr-libnetwork's ``[DEFAULT]
port_driver`` (``kuryr_libnetwork.port_driver.drivers.vlan`` / ``nested`` / ``veth``) when it
agrees; ``link_iface`` (the VM's NIC, whose MAC finds the VM's Neutron port; required in nested
mode); ``vlan_device`` (vlan mode's container device: ``sublink``, the NIC's 802.1Q
subinterface, the default; ``ovs``, an access port tagged with the subport's VLAN id on the
OVS bridge ``integration_bridge`` whose uplink is the NIC, for a VM whose kernel has no
802.1Q, kuryr.backends.binding.vlan_ovs).

``[pool]``  pre-created ports per subnet per host, sized by demand (kuryr.domain.ports.sizing);
off while ``max`` is 0. ``max`` (free-or-being-created ports, at most); ``min`` (the floor: refill
when fewer are free, and what an idle pool shrinks to; kuryr-libnetwork's meaning kept; default
2); ``initial`` (free ports a new network's pool aims at, at least ``min``; default 4);
``window`` (seconds: the target grows to the most ports taken within one window; default 10);
``idle_after`` (seconds without a take after which the pool shrinks to ``min``, its surplus
deleted in the background; 0 never; default 300); ``batch`` (the least a refill creates in one
bulk POST);
``bookkeeping`` (``deferred``: a port's device_id, name and tags reach Neutron in the
background after CreateEndpoint answers; ``immediate``: before it answers, as kuryr-libnetwork
does; journaled either way; default ``deferred``); ``bookkeeping_delay`` (seconds a journaled
Neutron bookkeeping write waits, so a container that stops sooner costs Neutron nothing;
default 0); ``background_pause`` / ``background_longest`` (bookkeeping writes and pool refills
that can wait run once Docker has sent no container request for ``background_pause`` seconds,
at most ``background_longest`` seconds late; defaults 0.5 and 5).

Environment overrides (what a managed plugin's ``docker plugin set`` changes): a non-empty
``KURYR_<KEY>`` sets a ``[DEFAULT]`` key (``KURYR_DEBUG``, ``KURYR_STATE_DIR``, ...) and a
non-empty ``KURYR_<SECTION>_<KEY>`` a key of ``[neutron]``, ``[binding]``, ``[pool]`` or
``[reconcile]`` (``KURYR_NEUTRON_ENDPOINT``, ``KURYR_NEUTRON_AUTH_TYPE``,
``KURYR_BINDING_HOST``, ...), over the file's value. An empty variable leaves the file's
value: Docker gives a plugin every declared variable, set or not. Other ``KURYR_*`` variables
(``KURYR_CONFIG``, ``KURYR_STACK_DIR``) are not keys.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

DEFAULT_CONFIG_FILE = Path("/etc/kuryr/kuryr.conf")

_N = TypeVar("_N", int, float)

BOOKKEEPING_DEFERRED = "deferred"
BOOKKEEPING_IMMEDIATE = "immediate"
BOOKKEEPING_MODES = (BOOKKEEPING_DEFERRED, BOOKKEEPING_IMMEDIATE)


@dataclass(frozen=True)
class NeutronConfig:
    auth_type: str = ""
    endpoint: str = ""
    cloud: str = ""
    # Remaining keystoneauth options (auth_url, username, password, project_name, ...).
    auth: dict[str, str] = field(default_factory=dict)
    region_name: str = ""
    default_subnetpool_v4: str = "kuryr"
    default_subnetpool_v6: str = "kuryr6"
    enable_dhcp: bool = True
    timeout: float = 10.0
    retries: int = 2
    vif_plugging_timeout: float = 10.0
    # Seconds after Join by which Neutron must report a container's port ACTIVE
    # (kuryr.domain.ports.status): later, the daemon logs the port and the reason and repairs it.
    port_active_timeout: float = 30.0
    # The router (name or id) new subnets are attached to (kuryr.domain.routers); "" for none.
    router: str = ""
    # Whose floating IP ``-p`` publishes on (kuryr.domain.published): FLOATING_IP_PER.
    floating_ip_per: str = "network"


FLOATING_IP_PER = ("network", "container")
# GetCapabilities' Scope (and ConnectivityScope): ``capability_scope``.
SCOPES = ("local", "global")


@dataclass(frozen=True)
class BindingConfig:
    host: str = ""
    ovsdb_connection: str = "unix:/var/run/openvswitch/db.sock"
    integration_bridge: str = "br-int"
    veth_dst_prefix: str = "eth"
    tx_checksum_offload: bool = True
    # BINDING_DRIVERS: veth (the host's br-int) or a nested mode (vlan, macvlan).
    driver: str = "veth"
    link_iface: str = ""  # nested mode: the VM's NIC
    # VLAN_DEVICES: vlan mode's container device, the NIC's 802.1Q subinterface (sublink) or
    # an access port of an OVS bridge (integration_bridge) on the NIC (ovs).
    vlan_device: str = "sublink"

    @property
    def nested(self) -> bool:
        return self.driver in NESTED_DRIVERS


BINDING_VETH = "veth"
BINDING_VLAN = "vlan"
BINDING_MACVLAN = "macvlan"
NESTED_DRIVERS = (BINDING_VLAN, BINDING_MACVLAN)
BINDING_DRIVERS = (BINDING_VETH, *NESTED_DRIVERS)
VLAN_DEVICE_OVS = "ovs"
VLAN_DEVICES = ("sublink", VLAN_DEVICE_OVS)
# kuryr-lib names its binding drivers by module; the same drivers under Kuryr's names.
_KURYR_LIB_DRIVERS = {f"kuryr.lib.binding.drivers.{name}": name for name in BINDING_DRIVERS}
# kuryr-libnetwork's port drivers and the binding drivers each one works with.
_PORT_DRIVERS = {
    "kuryr_libnetwork.port_driver.drivers.veth": (BINDING_VETH,),
    "kuryr_libnetwork.port_driver.drivers.vlan": (BINDING_VLAN,),
    "kuryr_libnetwork.port_driver.drivers.nested": (BINDING_MACVLAN,),
}


@dataclass(frozen=True)
class PoolConfig:
    min: int = 2
    max: int = 0
    batch: int = 0
    initial: int = 4
    window: float = 10.0
    idle_after: float = 300.0
    bookkeeping: str = BOOKKEEPING_DEFERRED
    bookkeeping_delay: float = 0.0
    background_pause: float = 0.5
    background_longest: float = 5.0


@dataclass(frozen=True)
class ReconcileConfig:
    interval: float = 30.0
    grace: float = 30.0


@dataclass(frozen=True)
class Config:
    debug: bool = False
    socket: Path = Path("/run/docker/plugins/kuryr.sock")
    socket_group: str = ""
    state_dir: Path = Path("/var/lib/kuryr")
    metrics_listen: str = ""
    request_timeout: float = 20.0
    # kuryr-libnetwork's key: the scope GetCapabilities reports. ``global`` lets a Swarm
    # manager allocate a swarm-scoped network through Kuryr (AllocateNetwork); on a dockerd
    # outside swarm mode it makes every Kuryr network need a cluster store, so local is the
    # default (README: Swarm).
    capability_scope: str = "local"
    neutron: NeutronConfig = field(default_factory=NeutronConfig)
    binding: BindingConfig = field(default_factory=BindingConfig)
    pool: PoolConfig = field(default_factory=PoolConfig)
    reconcile: ReconcileConfig = field(default_factory=ReconcileConfig)


# A section name no file uses, so configparser's [DEFAULT] inheritance never applies.
_NO_DEFAULT_SECTION = "kuryr:no-default-section"

_NEUTRON_KEYS = {
    "auth_type",
    "endpoint",
    "cloud",
    "region_name",
    "default_subnetpool_v4",
    "default_subnetpool_v6",
    "enable_dhcp",
    "timeout",
    "retries",
    "vif_plugging_timeout",
    "port_active_timeout",
    "router",
    "floating_ip_per",
}


def _positive(name: str, value: float) -> float:
    if value <= 0:
        raise ValueError(f"{name} must be positive, not {value:g}")
    return value


def _at_least_0(name: str, value: _N) -> _N:
    if value < 0:
        raise ValueError(f"{name} must be 0 or more, not {value:g}")
    return value


def _one_of(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value.lower() not in choices:
        raise ValueError(f"{name} = {value!r}: expected one of {', '.join(choices)}")
    return value.lower()


_ENV_PREFIX = "KURYR_"
_DEFAULT_KEYS = frozenset(
    (
        "debug",
        "socket",
        "socket_group",
        "state_dir",
        "metrics_listen",
        "request_timeout",
        "capability_scope",
        "port_driver",
    )
)
_ENV_SECTIONS = frozenset(("neutron", "binding", "pool", "reconcile"))


def env_overrides(environ: Mapping[str, str]) -> Iterator[tuple[str, str, str]]:
    """(section, key, value) for each non-empty ``KURYR_*`` variable that names a key."""
    for name, value in sorted(environ.items()):
        if not name.startswith(_ENV_PREFIX) or not value:
            continue
        rest = name.removeprefix(_ENV_PREFIX).lower()
        section, _, key = rest.partition("_")
        if rest in _DEFAULT_KEYS:
            yield "DEFAULT", rest, value
        elif section in _ENV_SECTIONS and key:
            yield section, key, value


def load(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read ``path`` (or ``$KURYR_CONFIG``, or the default file if present; with no file,
    the defaults), then apply the environment's overrides (:func:`env_overrides`)."""
    environ = os.environ if environ is None else environ
    parser = new_parser()
    if path is None:
        env = environ.get("KURYR_CONFIG")
        path = Path(env) if env else DEFAULT_CONFIG_FILE
        if not env and not path.exists():
            path = None
    if path is not None and not parser.read(path):
        raise FileNotFoundError(f"config file {path} cannot be read")
    for section, key, value in env_overrides(environ):
        _section(parser, section)[key] = value
    return parse(parser)


def new_parser() -> configparser.ConfigParser:
    """A parser with oslo.config's semantics: ``[DEFAULT]`` keys stay in ``[DEFAULT]``.

    configparser would otherwise copy every ``[DEFAULT]`` key into each section, and keys such
    as ``bindir`` or ``debug`` would reach keystoneauth as authentication options.
    """
    return configparser.ConfigParser(interpolation=None, default_section=_NO_DEFAULT_SECTION)


def _section(parser: configparser.ConfigParser, name: str) -> configparser.SectionProxy:
    if not parser.has_section(name):
        parser.add_section(name)
    return parser[name]


def parse(parser: configparser.ConfigParser) -> Config:
    """Build a :class:`Config` from a parser made by :func:`new_parser`."""
    d = _section(parser, "DEFAULT")
    neutron = _section(parser, "neutron")
    binding = _section(parser, "binding")
    pool = _section(parser, "pool")
    reconcile = _section(parser, "reconcile")
    auth = {k: v for k, v in neutron.items() if k not in _NEUTRON_KEYS}
    nd = NeutronConfig()
    pd = PoolConfig()
    request_timeout = d.getfloat("request_timeout", Config.request_timeout)
    return Config(
        debug=d.getboolean("debug", False),
        socket=Path(d.get("socket", str(Config.socket))),
        socket_group=d.get("socket_group", ""),
        state_dir=Path(d.get("state_dir", str(Config.state_dir))),
        metrics_listen=d.get("metrics_listen", ""),
        request_timeout=request_timeout,
        capability_scope=_one_of(
            "capability_scope", d.get("capability_scope", Config.capability_scope).strip(), SCOPES
        ),
        neutron=NeutronConfig(
            auth_type=neutron.get("auth_type", ""),
            endpoint=neutron.get("endpoint", ""),
            cloud=neutron.get("cloud", ""),
            auth=auth,
            region_name=neutron.get("region_name", ""),
            default_subnetpool_v4=neutron.get("default_subnetpool_v4", nd.default_subnetpool_v4),
            default_subnetpool_v6=neutron.get("default_subnetpool_v6", nd.default_subnetpool_v6),
            enable_dhcp=neutron.getboolean("enable_dhcp", nd.enable_dhcp),
            timeout=neutron.getfloat("timeout", nd.timeout),
            retries=neutron.getint("retries", nd.retries),
            vif_plugging_timeout=neutron.getfloat("vif_plugging_timeout", nd.vif_plugging_timeout),
            port_active_timeout=_positive(
                "[neutron] port_active_timeout",
                neutron.getfloat("port_active_timeout", nd.port_active_timeout),
            ),
            router=neutron.get("router", nd.router).strip(),
            floating_ip_per=_one_of(
                "[neutron] floating_ip_per",
                neutron.get("floating_ip_per", nd.floating_ip_per).strip(),
                FLOATING_IP_PER,
            ),
        ),
        binding=_binding(binding, d.get("port_driver", "").strip()),
        pool=PoolConfig(
            min=_at_least_0("[pool] min", pool.getint("min", pd.min)),
            max=_at_least_0("[pool] max", pool.getint("max", pd.max)),
            batch=_at_least_0("[pool] batch", pool.getint("batch", pd.batch)),
            initial=_at_least_0("[pool] initial", pool.getint("initial", pd.initial)),
            window=_positive("[pool] window", pool.getfloat("window", pd.window)),
            idle_after=_at_least_0("[pool] idle_after", pool.getfloat("idle_after", pd.idle_after)),
            bookkeeping=_bookkeeping(pool.get("bookkeeping", pd.bookkeeping)),
            bookkeeping_delay=pool.getfloat("bookkeeping_delay", 0.0),
            background_pause=pool.getfloat("background_pause", pd.background_pause),
            background_longest=pool.getfloat("background_longest", pd.background_longest),
        ),
        reconcile=_reconcile(reconcile, request_timeout),
    )


def _reconcile(section: configparser.SectionProxy, request_timeout: float) -> ReconcileConfig:
    rd = ReconcileConfig()
    interval = section.getfloat("interval", rd.interval)
    grace = section.getfloat("grace", rd.grace)
    if interval < 0:
        raise ValueError(f"[reconcile] interval must be 0 (off) or positive, not {interval:g}")
    # A start or stop under way (RequestAddress answered, CreateEndpoint or Join not yet
    # there) looks orphaned to a pass; each of its steps ends within request_timeout.
    if grace < request_timeout:
        raise ValueError(
            f"[reconcile] grace ({grace:g}) must be at least request_timeout ({request_timeout:g})"
        )
    return ReconcileConfig(interval=interval, grace=grace)


def _binding_driver(binding: configparser.SectionProxy, port_driver: str) -> str:
    """``driver`` (Kuryr's key, and kuryr-lib's deprecated name) or ``default_driver``
    (kuryr-lib's), by Kuryr's name or kuryr-lib's module; checked against kuryr-libnetwork's
    ``[DEFAULT] port_driver`` when that is set."""
    given = {k: binding[k].strip() for k in ("driver", "default_driver") if binding.get(k)}
    names = {k: _KURYR_LIB_DRIVERS.get(v, v).lower() for k, v in given.items()}
    if len(set(names.values())) > 1:
        raise ValueError(f"[binding] driver and default_driver disagree: {given}")
    driver = next(iter(names.values()), "")
    if port_driver:
        allowed = _PORT_DRIVERS.get(port_driver)
        if allowed is None:
            raise ValueError(
                f"[DEFAULT] port_driver = {port_driver!r}: expected one of "
                + ", ".join(_PORT_DRIVERS)
            )
        driver = driver or allowed[0]
        if driver not in allowed:
            raise ValueError(
                f"[DEFAULT] port_driver = {port_driver} does not work with [binding] driver "
                f"{driver} (it needs {' or '.join(allowed)})"
            )
    driver = driver or BindingConfig.driver
    if driver == "ipvlan":
        # README: ipvlan devices share the VM NIC's MAC, so Neutron cannot tell containers apart.
        raise ValueError("[binding] driver = ipvlan is not supported (README: Nested mode)")
    return _one_of("[binding] driver", driver, BINDING_DRIVERS)


def _binding(binding: configparser.SectionProxy, port_driver: str) -> BindingConfig:
    bd = BindingConfig()
    driver = _binding_driver(binding, port_driver)
    link_iface = binding.get("link_iface", "").strip()
    if driver in NESTED_DRIVERS and not link_iface:
        raise ValueError(f"[binding] driver = {driver} needs link_iface (the VM's NIC, e.g. eth0)")
    vlan_device = _one_of(
        "[binding] vlan_device", binding.get("vlan_device", bd.vlan_device).strip(), VLAN_DEVICES
    )
    if vlan_device != bd.vlan_device and driver != BINDING_VLAN:
        raise ValueError(f"[binding] vlan_device = {vlan_device} applies to driver = vlan only")
    return BindingConfig(
        host=binding.get("host", ""),
        ovsdb_connection=binding.get("ovsdb_connection", bd.ovsdb_connection),
        integration_bridge=binding.get("integration_bridge", bd.integration_bridge),
        veth_dst_prefix=binding.get("veth_dst_prefix", bd.veth_dst_prefix),
        tx_checksum_offload=binding.getboolean("tx_checksum_offload", bd.tx_checksum_offload),
        driver=driver,
        link_iface=link_iface,
        vlan_device=vlan_device,
    )


def _bookkeeping(value: str) -> str:
    mode = value.strip().lower()
    if mode not in BOOKKEEPING_MODES:
        raise ValueError(
            f"[pool] bookkeeping = {value!r}: expected one of {', '.join(BOOKKEEPING_MODES)}"
        )
    return mode
