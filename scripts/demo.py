"""`make demo`: build 10 territories on the bundled North Carolina counties with qgis_process.

Runs ``territory:buildterritories`` through ``qgis_process`` with the plugin loaded as QGIS
loads it, balancing two real workload measures at once on a layer in geographic coordinates,
writes ``demo-output/nc_territories.gpkg`` and prints a per-territory summary.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import qgis_process  # noqa: E402

LAYER = "nc_counties"
MEASURES = ["births_1974", "births_1979"]
TERRITORIES = 10


def main() -> int:
    out_dir = ROOT / "demo-output"
    out_dir.mkdir(exist_ok=True)
    units_path = out_dir / "nc_territories.gpkg"
    territories_path = out_dir / "nc_territory_summary.gpkg"
    for path in (units_path, territories_path):
        if path.exists():
            path.unlink()
    source = ROOT / "resources" / "data" / f"{LAYER}.gpkg"
    print(f"Building {TERRITORIES} territories from {source.name} (100 North Carolina counties),")
    print("balanced on births in 1974 and in 1979 at once, within ±5 %, each in one piece.")
    started = time.perf_counter()
    answer = qgis_process.run("territory:buildterritories", {
        "INPUT": f"{source}|layername={LAYER}",
        "TERRITORY_COUNT": TERRITORIES,
        "BALANCE_FIELDS": MEASURES,
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
    columns = ", ".join(f"{m}, {m}_dev" for m in MEASURES)
    with sqlite3.connect(territories_path) as db:
        query = f"SELECT territory, units, {columns}, contiguous FROM territories ORDER BY territory"
        rows = db.execute(query).fetchall()
    header = "".join(f"{m:>14}{'dev %':>8}" for m in MEASURES)
    print(f"\n{'territory':<14}{'counties':>9}{header}  contiguous")
    for name, count, *figures, contiguous in rows:
        cells = "".join(f"{figures[2 * a]:>14,.0f}{figures[2 * a + 1]:>8.2f}" for a in range(len(MEASURES)))
        print(f"{name:<14}{count:>9}{cells}  {'yes' if contiguous else 'NO'}")
    print(f"\nWorst deviation: {results.get('MAX_DEVIATION')} %; non-contiguous territories: "
          f"{results.get('NONCONTIGUOUS')}")
    for warning in answer.get("log", {}).get("warning", []):
        print(f"Warning: {warning}")
    print(f"Units with their territory: {units_path}")
    print(f"One feature per territory:  {territories_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
