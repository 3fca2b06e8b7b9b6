"""The one meaning of an empty attribute value, of a lock value, and the one natural sort,
shared by the algorithms, the panel and the layer helpers."""

from __future__ import annotations

import re


def is_empty_value(value) -> bool:
    """NULL, None or blank text: a unit with no territory (or no lock, no name)."""
    if value is None:
        return True
    if hasattr(value, "isNull") and value.isNull():
        return True
    return isinstance(value, str) and value.strip() == ""


def natural_key(text) -> list:
    """Sort key that puts “Territory 2” before “Territory 10” (case-insensitive)."""
    parts = re.split(r"(\d+)", str(text))
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in parts]


_ID_NAMES = {"fid", "id", "objectid", "object_id", "gid", "ogc_fid", "oid", "pk", "rowid", "fips", "geoid",
             "zip", "zipcode", "postcode"}
_WORKLOAD_WORDS = ("account", "sales", "potential", "revenue", "visit", "call", "customer", "client",
                   "workload", "demand", "population", "pop", "household", "prescriber", "outlet", "store",
                   "target", "volume", "count", "births", "elderly")


def looks_like_id(name: str) -> bool:
    """Field names that identify features rather than measure them (fid, id, *_id, codes)."""
    lower = name.lower()
    return lower in _ID_NAMES or lower.endswith("_id") or lower.endswith("id") and len(lower) <= 4


def measure_candidates(layer) -> list[str]:
    """Numeric fields of ``layer`` that can be balanced: ids and primary keys are never offered."""
    keys = set(layer.primaryKeyAttributes()) if hasattr(layer, "primaryKeyAttributes") else set()
    return [f.name() for i, f in enumerate(layer.fields())
            if f.isNumeric() and i not in keys and not looks_like_id(f.name())]


def likely_workloads(names: list[str]) -> list[str]:
    """The candidates whose names say they are workloads (accounts, sales, population…); shares
    and rates (pct_, _rate, percent) are left out."""
    picked = []
    for name in names:
        lower = name.lower()
        if lower.startswith(("pct", "percent", "share")) or lower.endswith(("_pct", "_rate", "_share", "_ratio")):
            continue
        if any(word in lower for word in _WORKLOAD_WORDS):
            picked.append(name)
    return picked
