"""Feedback pages (issue 22) on a 3,000-unit layer: page size and generation time.

`make bench-feedback` writes the section of bench/RESULTS.md between the markers below. One QGIS
process: the synthetic 3,000-unit Voronoi instance (bench/instances.py, seed 1) as a GeoPackage,
a plan from Build territories (not timed), then `processing.run("territory:feedbackpages")` timed
as a whole, for 20 territories (about 150 units a page) and 6 territories (about 500 a page).
Targets: every page ≤ 2 MB; all 20 pages ≤ 30 s.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BENCH, OUT, write_gpkg  # noqa: E402
from instances import synthetic_instance  # noqa: E402

SECTION_START = "<!-- feedback: written by bench/feedback.py -->"
SECTION_END = "<!-- /feedback -->"
FOLDER = OUT / "feedback"
SIZE = 3000
CASES = (20, 6)
PAGE_LIMIT_MB = 2.0
TIME_LIMIT_S = 30.0


def wiggly_ring(ring: np.ndarray, depth: int = 6) -> np.ndarray:
    """The ring with every edge replaced by a midpoint-displacement line (2**depth segments), the same
    line for both polygons that share the edge (it is drawn from the edge's ends alone): boundaries
    as detailed as real county lines (about 64 vertices per edge), neighbours still touching."""
    out = []
    for start, end in zip(ring, np.roll(ring, -1, axis=0)):
        key = tuple(np.round(np.concatenate(sorted([start, end], key=tuple)), 3))
        forward = tuple(start) <= tuple(end)
        a, b = (start, end) if forward else (end, start)
        rng = np.random.default_rng(abs(hash(key)) % (2 ** 63))
        line = np.array([a, b], dtype=float)
        for _level in range(depth):
            middle = (line[:-1] + line[1:]) / 2
            step = line[1:] - line[:-1]
            normal = np.column_stack([-step[:, 1], step[:, 0]])
            middle += normal * rng.uniform(-0.15, 0.15, (len(middle), 1))
            merged = np.empty((len(line) + len(middle), 2))
            merged[0::2], merged[1::2] = line, middle
            line = merged
        out.append(line[:-1] if forward else line[::-1][:-1])
    return np.concatenate(out)


def write_units(path: Path, wiggly: bool = False) -> list[str]:
    from qgis.core import QgsFields, QgsGeometry, QgsLineString, QgsPolygon, QgsWkbTypes
    from territory_planner.compat import DOUBLE, INT, make_field

    instance = synthetic_instance(SIZE, 20, 1)
    fields = QgsFields()
    fields.append(make_field("unit_id", INT))
    for measure in instance.measures:
        fields.append(make_field(measure, DOUBLE))

    def geometry(i: int):
        ring = wiggly_ring(instance.polygon(i)) if wiggly else instance.polygon(i)
        return QgsGeometry(QgsPolygon(QgsLineString(
            np.append(ring[:, 0], ring[0, 0]).tolist(), np.append(ring[:, 1], ring[0, 1]).tolist())))

    rows = ((geometry(i), [i] + instance.workloads[i].tolist()) for i in range(instance.size))
    write_gpkg(path, "units", fields, QgsWkbTypes.Type.Polygon, instance.crs, rows)
    return instance.measures


def run_case(layer, measures: list[str], territories: int) -> dict:
    import processing

    built = processing.run("territory:buildterritories", {
        "INPUT": layer, "TERRITORY_COUNT": territories, "BALANCE_FIELDS": measures, "TOLERANCE": 5.0,
        "RANDOM_SEED": 0, "TIME_LIMIT": 20, "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_TERRITORIES": "TEMPORARY_OUTPUT"})
    folder = FOLDER / f"pages-{territories}"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    start, cpu = time.perf_counter(), time.process_time()
    result = processing.run("territory:feedbackpages", {
        "INPUT": built["OUTPUT"], "TERRITORY_FIELD": "territory", "TERRITORIES": built["OUTPUT_TERRITORIES"],
        "BALANCE_FIELDS": measures, "TOLERANCE": 5.0, "UNIT_ID_FIELD": "unit_id", "OUTPUT_FOLDER": str(folder)})
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    sizes = [os.path.getsize(p) / 1e6 for p in result["PAGES"]]
    counts = [page_units(p) for p in result["PAGES"]]
    return {"territories": territories, "pages": len(sizes), "seconds": seconds, "cpu_seconds": cpu_seconds,
            "largest_mb": max(sizes), "mean_mb": sum(sizes) / len(sizes), "own_units_max": max(c[0] for c in counts),
            "shown_units_max": max(c[1] for c in counts), "load": os.getloadavg()[0]}


def page_units(path: str) -> tuple[int, int]:
    """(units of the territory, units drawn) on a page."""
    text = Path(path).read_text(encoding="utf-8")
    return text.count('class="own" data-unit='), text.count("data-unit=")


def section(records: list[dict]) -> str:
    lines = [SECTION_START, "", "## Feedback pages (issue 22): size and time on 3,000 units", "",
             "`make bench-feedback` (bench/feedback.py): the synthetic 3,000-unit Voronoi layer (seed 1, three "
             "measures) in a GeoPackage, a plan by Build territories (not timed), then "
             "`processing.run(\"territory:feedbackpages\")` timed as a whole (reading the layer and its "
             "neighbours, simplifying, writing every page and index.html). The same layer again with "
             "detailed boundaries: every Voronoi edge replaced by a 64-segment midpoint-displacement line shared by "
             "both neighbours (about as many vertices per unit as real county lines).", "",
             "| layer (vertices) | territories | pages | units per page (own / drawn, largest) | largest page MB "
             "| mean MB | total s (CPU s) | targets |", "|---|---|---|---|---|---|---|---|"]
    for r in records:
        targets = [f"every page ≤ {PAGE_LIMIT_MB:g} MB: {'met' if r['largest_mb'] <= PAGE_LIMIT_MB else 'NOT met'}"]
        if r["territories"] == 20:
            targets.append(f"all pages ≤ {TIME_LIMIT_S:g} s: {'met' if r['seconds'] <= TIME_LIMIT_S else 'NOT met'}")
        lines.append(f"| {r['layer']} ({r['vertices']:,}) | {r['territories']} | {r['pages']} | "
                     f"{r['own_units_max']} / {r['shown_units_max']} | "
                     f"{r['largest_mb']:.2f} | {r['mean_mb']:.2f} | {r['seconds']:.1f} ({r['cpu_seconds']:.1f}) | "
                     f"{'; '.join(targets)} |")
    lines += ["", "Load average when each case ended: " + ", ".join(f"{r['load']:.1f}" for r in records)
              + " (2 cores shared with other sessions).", "", SECTION_END]
    return "\n".join(lines)


def write_section(results: Path, block: str) -> None:
    text = results.read_text() if results.exists() else ""
    if SECTION_START in text and SECTION_END in text:
        before, rest = text.split(SECTION_START, 1)
        text = before + block + rest.split(SECTION_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    results.write_text(text)


def main() -> int:
    from worker import add_territory_provider, open_layer, start_qgis

    app = start_qgis()  # noqa: F841
    add_territory_provider()
    FOLDER.mkdir(parents=True, exist_ok=True)
    records = []
    for wiggly in (False, True):
        gpkg = FOLDER / f"units-3000{'-detailed' if wiggly else ''}.gpkg"
        measures = write_units(gpkg, wiggly)
        layer = open_layer(str(gpkg), "units")
        for territories in CASES:
            record = run_case(layer, measures, territories)
            record["layer"] = "detailed boundaries" if wiggly else "Voronoi (straight edges)"
            record["vertices"] = sum(f.geometry().constGet().nCoordinates() for f in layer.getFeatures())
            print(json.dumps(record), flush=True)
            records.append(record)
    write_section(BENCH / "RESULTS.md", section(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
