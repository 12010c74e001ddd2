"""Neutron's list filters as the in-memory Neutron (tests/fakes/neutron.py) applies them,
checked against the real one (tests/integration/test_neutron_fake.py):

- ``field=value``: equality; a list of values matches any of them; an empty value filters
  nothing (``?device_id=`` lists every port); booleans compare case-insensitively;
- ``tags`` (all of them), ``tags-any``, ``not-tags``, ``not-tags-any``: comma-separated, and
  repeated parameters add up;
- ``fixed_ips``: ``subnet_id=X`` and ``ip_address=Y`` entries, met by one fixed IP;
- ``fields`` picks the attributes of each answer; ``limit`` cuts the list;
- any other key that is not an attribute of the resource is refused (400), as Neutron does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from kuryr.backends.neutron_api import NeutronError, Params, Resource

_TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")
_PAGING = ("limit", "marker", "sort_key", "sort_dir", "page_reverse")


def select(
    resource: str, rows: Iterable[Resource], params: Params | None, attributes: set[str]
) -> list[Resource]:
    """The rows the query answers, ordered by id as Neutron orders them, each cut to the
    requested ``fields``."""
    params = params or {}
    unknown = [
        k
        for k in params
        if k not in attributes and k not in (*_TAG_FILTERS, *_PAGING, "fields", "fixed_ips")
    ]
    if unknown:
        raise NeutronError(
            f"Neutron GET /{resource} failed: 400 HTTPBadRequest: "
            f"{sorted(unknown)} is invalid attribute for filtering",
            400,
            "HTTPBadRequest",
        )
    found = [row for row in rows if _matches(row, params)]
    found.sort(key=lambda row: str(row["id"]))
    limit = params.get("limit")
    if isinstance(limit, str) and limit:
        found = found[: int(limit)]
    fields = _values(params.get("fields"))
    if fields:
        found = [{k: v for k, v in row.items() if k in fields} for row in found]
    return found


def _values(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _tags(value: str | Sequence[str] | None) -> set[str]:
    return {t for v in _values(value) for t in v.split(",") if t}


def _matches(row: Resource, params: Params) -> bool:
    for key, value in params.items():
        if key in ("fields", *_PAGING):
            continue
        if key in _TAG_FILTERS:
            if not _tags_match(key, set(row.get("tags") or []), _tags(value)):
                return False
        elif key == "fixed_ips":
            if not _fixed_ips_match(row, _values(value)):
                return False
        else:
            wanted = [v for v in _values(value) if v != ""]
            if wanted and not any(_equal(row.get(key), v) for v in wanted):
                return False
    return True


def _tags_match(kind: str, have: set[str], wanted: set[str]) -> bool:
    if not wanted:
        return True
    if kind == "tags":
        return wanted <= have
    if kind == "tags-any":
        return bool(wanted & have)
    if kind == "not-tags":
        return not wanted <= have
    return not wanted & have


def _fixed_ips_match(port: Resource, entries: list[str]) -> bool:
    wanted: dict[str, set[str]] = {}
    for entry in entries:
        key, _, value = entry.partition("=")
        wanted.setdefault(key, set()).add(value)
    for fixed in port.get("fixed_ips") or []:
        if all(fixed.get(key) in values for key, values in wanted.items()):
            return True
    return False


def _equal(have: Any, wanted: str) -> bool:
    if isinstance(have, bool):
        return wanted.lower() == str(have).lower()
    if have is None:
        return False
    return str(have) == wanted
