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
