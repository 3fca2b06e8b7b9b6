"""`make demo`: build 10 territories on the bundled Georgia counties with qgis_process.

Runs ``territory:buildterritories`` through ``qgis_process`` with the plugin loaded as QGIS
loads it, writes ``demo-output/georgia_territories.gpkg`` and prints a per-territory summary.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import qgis_process  # noqa: E402


def main() -> int:
    out_dir = ROOT / "demo-output"
    out_dir.mkdir(exist_ok=True)
    units_path = out_dir / "georgia_territories.gpkg"
    territories_path = out_dir / "georgia_territory_summary.gpkg"
    for path in (units_path, territories_path):
        if path.exists():
            path.unlink()
    source = ROOT / "resources" / "data" / "georgia_counties.gpkg"
    print(f"Building 10 territories from {source.name} (159 Georgia counties, 1990 Census),")
    print("balanced on population and elderly population within ±5 %, contiguous.")
    started = time.perf_counter()
    answer = qgis_process.run("territory:buildterritories", {
        "INPUT": f"{source}|layername=georgia_counties",
        "TERRITORY_COUNT": 10,
        "BALANCE_FIELDS": ["population", "elderly"],
        "TOLERANCE": 5,
        "CONTIGUOUS": True,
        "RANDOM_SEED": 0,
        "TERRITORY_FIELD": "territory",
        "OUTPUT": f"ogr:dbname='{units_path}' table=\"units\" (geom)",
        "OUTPUT_TERRITORIES": f"ogr:dbname='{territories_path}' table=\"territories\" (geom)",
    })
    seconds = time.perf_counter() - started
    results = answer.get("results", {})
    print(f"\nqgis_process finished in {seconds:.1f} s")
    with sqlite3.connect(territories_path) as db:
        rows = db.execute(
            "SELECT territory, units, population, population_dev_pct, elderly, elderly_dev_pct, contiguous "
            "FROM territories ORDER BY territory").fetchall()
    print(f"\n{'territory':<14}{'counties':>9}{'population':>12}{'dev %':>8}{'elderly':>10}{'dev %':>8}  contiguous")
    for name, count, pop, pop_dev, eld, eld_dev, contiguous in rows:
        flag = "yes" if contiguous else "NO"
        print(f"{name:<14}{count:>9}{pop:>12,.0f}{pop_dev:>8.2f}{eld:>10,.0f}{eld_dev:>8.2f}  {flag}")
    print(f"\nWorst deviation: {results.get('MAX_DEVIATION')} %; non-contiguous territories: "
          f"{results.get('NONCONTIGUOUS')}")
    for warning in answer.get("log", {}).get("warning", []):
        print(f"Warning: {warning}")
    print(f"Units with their territory: {units_path}")
    print(f"One feature per territory:  {territories_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
