"""Formatting shared by the report's sections: numbers, ratios, error cells and tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from bench.drivers import ALL

TITLES = {d.key: d.title for d in ALL}


def title(key: str) -> str:
    return TITLES.get(key, key)


def median_of(summary: dict[str, Any] | None) -> float | None:
    return None if summary is None else float(summary["median"])


def seconds(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def times(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} x"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def errors(row: dict[str, Any]) -> str:
    if not row.get("errors"):
        return "0"
    return f"{row['errors']}: " + "; ".join(f"`{e}`" for e in row.get("error_examples", []))


def splice_section(markdown: str, heading: str, lines: list[str], before: Sequence[str]) -> str:
    """``markdown`` with its section ``heading`` replaced by ``lines``; a page without one
    gets it before the first of the sections ``before`` (or at its end). How a phase run
    alone rewrites its own section of docs/benchmarks.md and nothing else."""
    doc = markdown.rstrip("\n").split("\n")
    if heading in doc:
        start = doc.index(heading)
        later = (i for i in range(start + 1, len(doc)) if doc[i].startswith("## "))
        end = next(later, len(doc))
    else:
        start = end = next((i for i, line in enumerate(doc) if line in before), len(doc))
    head = doc[:start]
    if head and head[-1] != "":
        head.append("")
    own = lines if not lines or lines[-1] == "" else [*lines, ""]
    return "\n".join([*head, *own, *doc[end:]]).rstrip("\n") + "\n"
