"""The byte-level repair of dockerd's network store, on BoltDB files built here."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from kuryr.stack import netstore

PAGE = 4096
LIBKV_INDEX = struct.pack("<Q", 7)


def _fnv64a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def _meta_page(pgid: int, root: int, txid: int, pages: int) -> bytes:
    fields = struct.pack("<IIIIQQQQQ", 0xED0CDAED, 2, PAGE, 0, root, 0, 2, pages, txid)
    body = fields + struct.pack("<Q", _fnv64a(fields))
    return (struct.pack("<QHHI", pgid, 0x04, 0, 0) + body).ljust(PAGE, b"\0")


def _leaf(items: list[tuple[int, bytes, bytes]], pgid: int = 0) -> bytes:
    """A leaf page body: (flags, key, value) elements, then keys and values."""
    headers, data = b"", b""
    for i, (flags, key, value) in enumerate(items):
        pos = (len(items) - i) * 16 + len(data)
        headers += struct.pack("<IIII", flags, pos, len(key), len(value))
        data += key + value
    return struct.pack("<QHHI", pgid, 0x02, len(items), 0) + headers + data


def _branch(children: list[tuple[bytes, int]], pgid: int) -> bytes:
    headers, data = b"", b""
    for i, (key, pgid) in enumerate(children):
        pos = (len(children) - i) * 16 + len(data)
        headers += struct.pack("<IIQ", pos, len(key), pgid)
        data += key
    return struct.pack("<QHHI", pgid, 0x01, len(children), 0) + headers + data


def _db(values: dict[bytes, bytes], inline: bool = False) -> bytes:
    """Meta pages 0-1 (1 newer), freelist 2, root leaf 3 with bucket ``libnetwork``
    whose keys sit inline or behind a branch page 4 over leaf pages 5 and 6."""
    items = [(0, k, v) for k, v in sorted(values.items())]
    freelist = struct.pack("<QHHI", 2, 0x10, 0, 0).ljust(PAGE, b"\0")
    if inline:
        bucket = struct.pack("<QQ", 0, 0) + _leaf(items)
        root = _leaf([(0x01, b"libnetwork", bucket)], 3).ljust(PAGE, b"\0")
        pages = [_meta_page(0, 3, 1, 4), _meta_page(1, 3, 2, 4), freelist, root]
        return b"".join(pages)
    half = len(items) // 2
    root = _leaf([(0x01, b"libnetwork", struct.pack("<QQ", 4, 0))], 3).ljust(PAGE, b"\0")
    branch = _branch([(items[0][1], 5), (items[half][1], 6)], 4).ljust(PAGE, b"\0")
    left = _leaf(items[:half], 5).ljust(PAGE, b"\0")
    right = _leaf(items[half:], 6).ljust(PAGE, b"\0")
    # Page 0 holds an older meta naming a root that no longer exists.
    pages = [_meta_page(0, 9, 1, 7), _meta_page(1, 3, 2, 7), freelist, root, branch, left, right]
    return b"".join(pages)


def _network(name: str, in_delete: bool, ipam: str = "default", info: bool = False) -> bytes:
    record: dict[str, object] = {
        "addrSpace": "LocalDefault",
        "id": f"{name}-id",
        "inDelete": in_delete,
        "ipamType": ipam,
        "ipamV4Config": '[{"PreferredPool":"","SubPool":"","Gateway":"","AuxAddresses":null}]',
        "name": name,
        "networkType": "kuryr",
    }
    if info:
        record["ipamV4Info"] = '[{"IPAMData":"{}","PoolID":"LocalDefault/10.9.0.0/24"}]'
    return LIBKV_INDEX + json.dumps(dict(sorted(record.items())), separators=(",", ":")).encode()


def _key(name: str) -> bytes:
    return netstore.NETWORK_KEY + f"{name}-id/".encode()


STORE = {
    _key("stale"): _network("stale", in_delete=True),
    _key("live"): _network("live", in_delete=False),
    _key("releasing"): _network("releasing", in_delete=True, info=True),
    _key("kuryripam"): _network("kuryripam", in_delete=True, ipam="kuryr"),
    b"docker/network/v1.0/endpoint_count/stale-id/": LIBKV_INDEX + b'{"Count":0}',
}


def _record(db: bytes, name: str) -> dict[str, object]:
    for entry in netstore.entries(db):
        if entry.key == _key(name):
            return json.loads(entry.value[len(LIBKV_INDEX) :])
    raise AssertionError(f"no record {name}")


@pytest.mark.parametrize("inline", [False, True])
def test_entries_reads_every_live_key(inline: bool) -> None:
    db = _db(STORE, inline)
    assert {e.key: e.value for e in netstore.entries(db)} == STORE


@pytest.mark.parametrize("inline", [False, True])
def test_only_the_half_removed_default_ipam_network_is_rewritten(inline: bool) -> None:
    db = _db(STORE, inline)
    out, repairs = netstore.repaired(db)
    assert [r.name for r in repairs] == ["stale"]
    assert len(out) == len(db)
    assert _record(out, "stale")["ipamType"] == "null"
    assert {k: v for k, v in _record(out, "stale").items() if k != "ipamType"} == {
        k: v for k, v in _record(db, "stale").items() if k != "ipamType"
    }
    changed = [i for i, (a, b) in enumerate(zip(db, out, strict=True)) if a != b]
    assert changed[0] >= repairs[0].offset
    assert changed[-1] < repairs[0].offset + len(netstore.DEFAULT_IPAM)


@pytest.mark.parametrize("name", ["live", "releasing", "kuryripam"])
def test_records_not_in_delete_or_with_pools_or_other_ipam_are_untouched(name: str) -> None:
    db = _db(STORE)
    out, _ = netstore.repaired(db)
    assert _record(out, name) == _record(db, name)
    entry = next(e for e in netstore.entries(db) if e.key == _key(name))
    assert out[entry.offset : entry.offset + len(entry.value)] == entry.value


def test_a_repaired_store_needs_no_repair() -> None:
    out, _ = netstore.repaired(_db(STORE))
    assert netstore.half_removed(out) == []
    assert netstore.repaired(out) == (out, [])


def test_the_replacement_keeps_the_length() -> None:
    assert len(netstore.NULL_IPAM) == len(netstore.DEFAULT_IPAM)


def test_not_a_bolt_file_is_refused() -> None:
    with pytest.raises(netstore.StoreError):
        netstore.entries(b"{}" * 4096)


def test_a_corrupt_meta_checksum_is_refused() -> None:
    db = bytearray(_db(STORE))
    for page in (0, 1):
        db[page * PAGE + 16 + 56] ^= 0xFF
    with pytest.raises(netstore.StoreError):
        netstore.entries(bytes(db))


def test_repair_file_rewrites_in_place(tmp_path: Path) -> None:
    path = tmp_path / "local-kv.db"
    path.write_bytes(_db(STORE))
    repairs = netstore.repair_file(path)
    assert [r.network_id for r in repairs] == ["stale-id"]
    assert path.read_bytes() == netstore.repaired(_db(STORE))[0]
    assert netstore.repair_file(path) == []


def test_the_panic_is_recognised_only_in_reserve_pools() -> None:
    panic = (
        "panic: runtime error: index out of range [0] with length 0\n\n"
        "goroutine 1 [running]:\n"
        "github.com/docker/libnetwork.(*controller).reservePools(0x558e69247e70?)\n"
    )
    assert netstore.panicked_in_reserve_pools(panic)
    assert not netstore.panicked_in_reserve_pools(panic.replace("reservePools", "New"))
    assert not netstore.panicked_in_reserve_pools("failed to start daemon: pid file found\n")
