"""The one meaning of an empty attribute value, of a lock value, and the one natural sort,
shared by the algorithms, the panel and the layer helpers."""

from __future__ import annotations

import re


def is_null(value) -> bool:
    """None or a NULL attribute value (QVariant NULL under Qt5, None under Qt6): the one NULL test."""
    return value is None or (hasattr(value, "isNull") and value.isNull())


def is_empty_value(value) -> bool:
    """NULL, None or blank text: a unit with no territory (or no lock, no name)."""
    return is_null(value) or (isinstance(value, str) and value.strip() == "")


def text_or_none(value) -> str | None:
    """An attribute value as stripped text; None for NULL, None and blank text."""
    if is_empty_value(value):
        return None
    text = str(value).strip()
    return text or None


def as_number(value) -> float | None:
    """An attribute value as a float; None for NULL and for what is not a number."""
    if type(value) is float:  # the usual case, a million times on a large layer
        return value
    if is_null(value):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


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


#: lock values that mean "not locked" and "locked where it is"; any other text locks a unit to the
#: territory of that name. Empty values never lock. (The one meaning of a lock field: README.)
UNLOCK_FLAGS = frozenset({"0", "false", "no", "n", "f", "off"})
LOCK_FLAGS = frozenset({"1", "true", "yes", "y", "t", "x", "on", "locked", "lock"})


def lock_value(value, territory_names=()) -> tuple[bool, str | None]:
    """What a lock field's value means: (locked?, territory name it is locked to or None = its own).

    A value that is the name of one of ``territory_names`` locks the unit to that territory; then
    the flags (1/yes/true/x… lock a unit where it is, 0/no/false… do not lock); any other text
    names the territory the unit is locked to. Empty values never lock.
    """
    if is_empty_value(value):
        return False, None
    if str(value).strip() in territory_names:
        return True, str(value).strip()
    if isinstance(value, bool):
        return bool(value), None
    if isinstance(value, (int, float)):
        return value != 0, None
    text = str(value).strip()
    lower = text.lower()
    if lower in UNLOCK_FLAGS:
        return False, None
    if lower in LOCK_FLAGS:
        return True, None
    try:
        return float(text) != 0, None
    except ValueError:
        return True, text


def default_names(existing, count: int, stem: str = "Territory") -> list[str]:
    """``existing`` names completed to ``count`` with "Territory 1" … (zero-padded to the width of
    the count, so that "Territory 02" sorts before "Territory 10")."""
    names = list(existing)[:count]
    taken = set(names)
    width = len(str(count))
    k = 1
    while len(names) < count:
        candidate = f"{stem} {k:0{width}d}"
        if candidate not in taken:
            names.append(candidate)
            taken.add(candidate)
        k += 1
    return names


_NAME_WORDS = ("name", "county", "city", "town", "place", "zip", "postcode", "account", "customer", "label")


def likely_name_field(layer) -> str:
    """A text field that names the units (NAME, county, zip…), or "" when none looks like one."""
    texts = [f.name() for f in layer.fields() if not f.isNumeric()]
    for word in _NAME_WORDS:
        for name in texts:
            if word in name.lower() and "territor" not in name.lower():
                return name
    return ""
