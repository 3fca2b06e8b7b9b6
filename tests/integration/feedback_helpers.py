"""A Georgia alignment for the feedback tests, and feedback files written as a page writes them."""

from __future__ import annotations

import csv
from pathlib import Path

from qgis.core import QgsVectorLayer

BUILD = "territory:buildterritories"
PAGES = "territory:feedbackpages"
REVIEW = "territory:reviewfeedback"
HEADER = ["territory", "unit", "unit_name", "kind", "action", "reason", "submitted_by", "submitted_at", "plan_id"]


def build_georgia(run_algorithm, georgia_layer, count: int = 8) -> tuple[QgsVectorLayer, QgsVectorLayer]:
    built = run_algorithm(BUILD, {
        "INPUT": georgia_layer, "TERRITORY_COUNT": count, "BALANCE_FIELDS": ["population", "elderly"],
        "TOLERANCE": 10, "RANDOM_SEED": 1, "TIME_LIMIT": 5, "OUTPUT": "TEMPORARY_OUTPUT",
        "OUTPUT_TERRITORIES": "TEMPORARY_OUTPUT"})
    return built["OUTPUT"], built["OUTPUT_TERRITORIES"]


def make_pages(run_algorithm, units, table, folder: Path, **extra) -> dict:
    return run_algorithm(PAGES, {
        "INPUT": units, "TERRITORY_FIELD": "territory", "TERRITORIES": table,
        "BALANCE_FIELDS": ["population", "elderly"], "TOLERANCE": 10, "UNIT_ID_FIELD": "fips",
        "OUTPUT_FOLDER": str(folder), **extra})


def write_feedback(path: Path, rows: list[dict]) -> Path:
    """A feedback file with ``rows`` (missing columns empty), as a page saves it (BOM, CRLF)."""
    with open(path, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        writer.writerow(HEADER)
        for row in rows:
            writer.writerow([row.get(column, "") for column in HEADER])
    return path


def territory_of(units) -> dict[str, str]:
    """fips → territory code."""
    return {f["fips"]: f["territory"] for f in units.getFeatures()}


def neighbours_of(units) -> dict[str, set[str]]:
    """fips → fips of the counties it touches."""
    features = list(units.getFeatures())
    out = {f["fips"]: set() for f in features}
    for a in features:
        for b in features:
            if a.id() < b.id() and a.geometry().touches(b.geometry()):
                out[a["fips"]].add(b["fips"])
                out[b["fips"]].add(a["fips"])
    return out
