"""Who uses a shared Neutron network, and what leaving it removes (kuryr.domain.sharing)."""

from __future__ import annotations

import secrets
from typing import Any

from kuryr import naming
from kuryr.domain.ports.port import Port
from kuryr.domain.sharing import ORPHAN_SUBNET_GRACE, Leaving, decide, removable_subnets
from kuryr.ops.host_pools import tally

NOW = 1_800_000_000.0
OLD = "2020-01-01T00:00:00Z"


def did() -> str:
    return secrets.token_hex(32)


def network(tags: list[str]) -> dict[str, Any]:
    return {"id": "net", "tags": tags}


def anchor(docker_id: str, host: str, used: list[str], made: list[str]) -> Port:
    return Port.from_neutron(
        {
            "id": f"anchor-{docker_id[:6]}",
            "device_owner": naming.ANCHOR_OWNER,
            "device_id": docker_id,
            "binding:host_id": host,
            "fixed_ips": [],
            "tags": naming.anchor_tags(used, made, internal=False),
        }
    )


def port(port_id: str, owner: str, host: str, subnet: str) -> Port:
    return Port.from_neutron(
        {
            "id": port_id,
            "device_owner": owner,
            "device_id": "x",
            "binding:host_id": host,
            "fixed_ips": [{"subnet_id": subnet, "ip_address": "10.0.0.5"}],
        }
    )


def subnet(subnet_id: str, name: str = "", created: str = OLD) -> dict[str, Any]:
    return {"id": subnet_id, "name": name or f"kuryr-subnet-{subnet_id}", "created_at": created}


def test_tag_claims_need_no_pairing_of_halves() -> None:
    a, b = did(), did()
    tags = [*naming.id_tags(a), *naming.id_tags(b), naming.existing_net_tag(b), "user"]
    assert naming.tag_claims(tags) == {a[:32]: False, b[:32]: True}
    assert naming.made_by_kuryr(tags)
    assert not naming.made_by_kuryr([*naming.id_tags(b), naming.existing_net_tag(b)])
    assert naming.made_by_kuryr([naming.TAG_MADE_NET])


def test_anchor_tags_round_trip() -> None:
    tags = naming.anchor_tags(["s1", "s2"], ["s2"], internal=True)
    assert naming.anchor_subnets(tags) == ({"s1", "s2"}, {"s2"})
    assert naming.TAG_INTERNAL_NET in tags
    assert all(len(t) <= 60 for t in naming.anchor_tags([secrets.token_hex(18)], [], False))


def test_creator_leaving_keeps_the_network_for_an_anchored_host() -> None:
    creator, other = did(), did()
    tags = [*naming.id_tags(creator), "user"]
    ports = [anchor(other, "h2", ["s2"], ["s2"])]
    plan = decide(network(tags), ports, Leaving(frozenset({creator})))
    assert not plan.delete_network
    assert plan.tags is not None and sorted(plan.tags) == sorted(["user", naming.TAG_MADE_NET])
    assert plan.users == [f"Docker network {other[:12]} on host h2"]


def test_last_anchored_host_out_deletes_a_network_kuryr_made() -> None:
    other = did()
    ports = [anchor(other, "h2", ["s2"], ["s2"])]
    plan = decide(
        network([naming.TAG_MADE_NET]),
        ports,
        Leaving(frozenset({other}), frozenset({"anchor-" + other[:6]})),
    )
    assert plan.delete_network and plan.delete_ports == ["anchor-" + other[:6]]


def test_last_one_out_of_an_adopted_network_only_untags_it() -> None:
    mine = did()
    tags = [*naming.id_tags(mine), naming.existing_net_tag(mine), naming.TAG_INTERNAL_NET, "u"]
    plan = decide(network(tags), [], Leaving(frozenset({mine})))
    assert not plan.delete_network and plan.tags == ["u"] and plan.users == []


def test_a_dead_hosts_ports_keep_the_network() -> None:
    creator = did()
    ports = [port("p", naming.DEVICE_OWNER, "dead", "s1")]
    plan = decide(network(naming.id_tags(creator)), ports, Leaving(frozenset({creator})))
    assert not plan.delete_network and plan.users == ["ports on host dead"]


def test_a_vm_port_blocks_the_last_one_out_of_a_network_kuryr_made() -> None:
    creator = did()
    ports = [port("vm", "compute:nova", "h9", "s1")]
    plan = decide(network(naming.id_tags(creator)), ports, Leaving(frozenset({creator})))
    assert plan.blockers == ["vm"] and not plan.delete_network


def test_subnets_another_host_uses_stay() -> None:
    creator, other = did(), did()
    ports = [
        anchor(other, "h2", ["shared", "s2"], ["s2"]),
        port("p3", naming.DEVICE_OWNER, "h3", "ported"),
    ]
    subnets = [subnet("shared"), subnet("s2"), subnet("ported"), subnet("mine")]
    leaving = Leaving(frozenset({creator}), made=frozenset({"shared", "ported", "mine"}))
    plan = decide(network(naming.id_tags(creator)), ports, leaving)
    assert removable_subnets(subnets, ports, leaving, plan, NOW) == ["mine"]


def test_an_anchored_host_never_removes_a_subnet_the_creator_may_use() -> None:
    creator, other = did(), did()
    ports = [anchor(other, "h2", ["c1", "s2"], ["s2"])]
    subnets = [subnet("c1"), subnet("s2"), subnet("orphan")]
    leaving = Leaving(frozenset({other}), frozenset({"anchor-" + other[:6]}), frozenset({"s2"}))
    plan = decide(network(naming.id_tags(creator)), ports, leaving)
    assert plan.unlisted_users
    assert removable_subnets(subnets, ports, leaving, plan, NOW) == ["s2"]


def test_orphan_subnets_go_only_once_older_than_the_grace() -> None:
    other = did()
    young = "2027-01-15T08:00:00Z"
    subnets = [subnet("old"), subnet("young", created=young), subnet("hand", name="by-hand")]
    plan = decide(network(["x"]), [], Leaving(frozenset({other})))
    now = 1_800_000_000.0 + ORPHAN_SUBNET_GRACE / 2  # 2027-01-15T08:00:00Z + grace/2
    assert removable_subnets(subnets, [], Leaving(frozenset({other})), plan, now) == ["old"]


def test_status_hosts_tallies_each_hosts_ports_per_network() -> None:
    ports = [
        {
            "network_id": "n",
            "binding:host_id": "h2",
            "device_owner": naming.DEVICE_OWNER,
            "device_id": "",
            "name": naming.POOL_PORT_NAME,
            "tags": [],
        },
        {
            "network_id": "n",
            "binding:host_id": "h2",
            "device_owner": naming.DEVICE_OWNER,
            "device_id": "ep",
            "name": "ep-port",
            "tags": [],
        },
        {**anchor(did(), "h2", [], []).to_neutron(), "network_id": "n"},
        {
            "network_id": "m",
            "binding:host_id": "h3",
            "device_owner": naming.DEVICE_OWNER,
            "device_id": "",
            "name": "",
            "tags": [naming.POOL_TAG],
        },
    ]
    assert tally(ports) == {
        "h2": {"n": {"pool": 1, "in_use": 1, "anchors": 1}},
        "h3": {"m": {"pool": 1, "in_use": 0, "anchors": 0}},
    }
