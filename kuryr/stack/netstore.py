"""Repair of dockerd 20.10's network store after a removal it did not finish.

dockerd marks a network ``"inDelete":true``, releases its IPAM pools (dropping
``ipamV4Info``) and only then removes the record. Stopped in between, the record stays;
with Docker's default IPAM every later start replays its pool reservation and panics in
libnetwork ``(*controller).reservePools`` indexing the missing ``ipamV4Info``.

The store ``network/files/local-kv.db`` is a BoltDB file: values sit raw inside pages and
bolt v1 keeps no checksum over them, so rewriting a value in place with the same length
keeps the file valid. Such a record's ``"ipamType":"default"`` becomes ``"ipamType":"null"``
padded with JSON whitespace: Docker's built-in ``null`` IPAM asks for no replay, has no
pool to release, and dockerd then finishes removing the network at start.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PANIC = "panic: runtime error: index out of range"
PANIC_SITE = "(*controller).reservePools"
NETWORK_KEY = b"docker/network/v1.0/network/"
DEFAULT_IPAM = b'"ipamType":"default"'
NULL_IPAM = b'"ipamType":"null"'.ljust(len(DEFAULT_IPAM))

_MAGIC = 0xED0CDAED
_META_OFFSET = 16
_META = struct.Struct("<IIII QQ QQQ Q")
_PAGE_HEADER = struct.Struct("<QHHI")
_BRANCH_ELEMENT = struct.Struct("<IIQ")
_LEAF_ELEMENT = struct.Struct("<IIII")
_BUCKET_HEADER = struct.Struct("<QQ")
_BRANCH_PAGE, _LEAF_PAGE = 0x01, 0x02
_BUCKET_LEAF = 0x01


class StoreError(ValueError):
    """The bytes are not a BoltDB file this module can read."""


@dataclass(frozen=True)
class Entry:
    key: bytes
    value: bytes
    offset: int  # where the value starts in the file


@dataclass(frozen=True)
class Repair:
    name: str
    network_id: str
    offset: int  # where the replaced ``"ipamType":"default"`` starts in the file


def panicked_in_reserve_pools(log_text: str) -> bool:
    """Whether a dockerd log shows the panic a half-removed network causes."""
    return PANIC in log_text and PANIC_SITE in log_text


def _fnv64a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def _meta(db: bytes, page_size_guess: int) -> tuple[int, int]:
    """The (page size, root bucket page) of the newest valid meta page."""
    best: tuple[int, int, int] | None = None
    for page in (0, 1):
        start = page * page_size_guess + _META_OFFSET
        if len(db) < start + _META.size:
            continue
        fields = _META.unpack_from(db, start)
        magic, version, page_size, _, root, _, _, _, txid, checksum = fields
        if magic != _MAGIC or version != 2:
            continue
        if _fnv64a(db[start : start + _META.size - 8]) != checksum:
            continue
        if best is None or txid > best[0]:
            best = (txid, page_size, root)
    if best is None:
        raise StoreError("no valid BoltDB meta page")
    return best[1], best[2]


def _page_size(db: bytes) -> int:
    if len(db) < _META_OFFSET + _META.size:
        raise StoreError("file too short for a BoltDB meta page")
    magic, _, page_size = struct.unpack_from("<III", db, _META_OFFSET)
    if magic != _MAGIC or page_size < 512 or page_size & (page_size - 1):
        raise StoreError("not a BoltDB file")
    return page_size


def _walk(db: bytes, page_start: int, page_size: int, depth: int) -> Iterator[Entry]:
    """Every key/value under the page at ``page_start``, nested buckets included."""
    if depth > 64:
        raise StoreError("BoltDB tree too deep")
    if page_start + _PAGE_HEADER.size > len(db):
        raise StoreError(f"BoltDB page at {page_start} is past the end of the file")
    _, flags, count, _ = _PAGE_HEADER.unpack_from(db, page_start)
    base = page_start + _PAGE_HEADER.size
    if flags & _BRANCH_PAGE:
        for i in range(count):
            _, _, child = _BRANCH_ELEMENT.unpack_from(db, base + i * _BRANCH_ELEMENT.size)
            yield from _walk(db, child * page_size, page_size, depth + 1)
    elif flags & _LEAF_PAGE:
        for i in range(count):
            element = base + i * _LEAF_ELEMENT.size
            elem_flags, pos, ksize, vsize = _LEAF_ELEMENT.unpack_from(db, element)
            key_at = element + pos
            value_at = key_at + ksize
            if value_at + vsize > len(db):
                raise StoreError(f"BoltDB value at {value_at} is past the end of the file")
            key, value = db[key_at:value_at], db[value_at : value_at + vsize]
            if elem_flags & _BUCKET_LEAF:
                yield from _bucket(db, value, value_at, page_size, depth + 1)
            else:
                yield Entry(key, value, value_at)
    else:
        raise StoreError(f"BoltDB page at {page_start} is neither branch nor leaf")


def _bucket(db: bytes, value: bytes, value_at: int, page_size: int, depth: int) -> Iterator[Entry]:
    root, _ = _BUCKET_HEADER.unpack_from(value)
    # An inline bucket (root 0) carries its single leaf page right after its header.
    page_start = value_at + _BUCKET_HEADER.size if root == 0 else root * page_size
    yield from _walk(db, page_start, page_size, depth)


def entries(db: bytes) -> list[Entry]:
    """Every live key/value of a BoltDB file (free pages hold stale copies: not read)."""
    page_size, root = _meta(db, _page_size(db))
    return list(_walk(db, root * page_size, page_size, 0))


def _half_removed(entry: Entry) -> Repair | None:
    if not entry.key.startswith(NETWORK_KEY):
        return None
    # libkv puts an 8-byte index before the JSON.
    start = entry.value.find(b"{")
    if start < 0:
        return None
    try:
        record = json.loads(entry.value[start:])
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("inDelete") is not True:
        return None
    if "ipamV4Info" in record or record.get("ipamType") != "default":
        return None
    if entry.value.count(DEFAULT_IPAM) != 1:
        return None
    return Repair(
        name=str(record.get("name", "")),
        network_id=str(record.get("id", "")),
        offset=entry.offset + entry.value.index(DEFAULT_IPAM),
    )


def half_removed(db: bytes) -> list[Repair]:
    """The network records the reservePools panic comes from."""
    found = (_half_removed(entry) for entry in entries(db))
    return [repair for repair in found if repair is not None]


def repaired(db: bytes) -> tuple[bytes, list[Repair]]:
    """The store with each half-removed network moved to the null IPAM, same length."""
    repairs = half_removed(db)
    out = bytearray(db)
    for repair in repairs:
        out[repair.offset : repair.offset + len(NULL_IPAM)] = NULL_IPAM
    return bytes(out), repairs


def repair_file(path: Path) -> list[Repair]:
    """Repair the store at ``path`` in place; only while no dockerd has it open."""
    repairs = half_removed(path.read_bytes())
    if not repairs:
        return []
    with open(path, "r+b") as f:
        for repair in repairs:
            f.seek(repair.offset)
            f.write(NULL_IPAM)
        f.flush()
        os.fsync(f.fileno())
    return repairs
