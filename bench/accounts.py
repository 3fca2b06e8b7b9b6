"""Accounts over ZIP-like units (issue 21): 1,000,000 account points over 33,000 polygon units,
2 % of the accounts overridden, GeoPackage in and out.

    python bench/accounts.py [--jobs assign,build] [--fresh]

The instance (``instances.zip_like_accounts``): ZIP-code-like Voronoi units over the national box,
denser where the accounts are; accounts with lognormal visits and sales. The units carry a plan of
500 territories made once by the engine (balanced on the accounts' visits and sales summed per
unit); 2 % of the accounts, drawn at random, are overridden to a territory bordering their unit's.
Both layers are written once to ``bench/out/accounts/``.

Jobs (each in a process of its own, offscreen QGIS with the provider registered as the plugin does):
``assign``: ``territory:assignaccounts`` end to end, GeoPackages in and out; the account list is
read back and checked against the generator's own home units, plan and overrides. ``build``:
``territory:buildterritories`` with the accounts into 500 territories, balanced on the accounts'
visits and sales; judged counting the overrides where they are aligned. Time, CPU time and the
process's peak memory (VmHWM) per phase; results in ``bench/out/accounts/<job>.json`` and a
section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BENCH, OUT, make_importable, replace_section  # noqa: E402
from instances import ACCOUNTS_VERSION, NATION_CRS, zip_like_accounts  # noqa: E402
from scale import PhaseFeedback, peak_and_reset  # noqa: E402

UNITS, ACCOUNTS, TERRITORIES, SEED = 33_000, 1_000_000, 500, 1
OVERRIDDEN = 0.02
MEASURES = ["visits", "sales"]
HERE = OUT / "accounts"
DATA = HERE / f"v{ACCOUNTS_VERSION}"
UNITS_GPKG, ACCOUNTS_GPKG, TRUTH = DATA / "zips.gpkg", DATA / "accounts.gpkg", DATA / "truth.npz"
#: job → (wall-clock target seconds, peak memory target MB, timeout seconds)
JOBS = {"assign": (60, None, 1800), "build": (300, 4096, 3600), "panel": (3, None, 1800)}
#: the panel: a paint on accounts → table updated, 95th percentile target (ms), and how many clicks
PAINT_TARGET_MS, CLICKS = 50, 40
SECTION_START = "<!-- accounts: written by bench/accounts.py -->"
SECTION_END = "<!-- /accounts -->"
#: What the kept results measured (kept by hand; update with the results).
NOTES = [
    "Branch i21-accounts, 6 Dec 2026 09:00–09:50 UTC, `make bench-accounts FRESH=1` (assign and build after the "
    "GeoPackage reader, panel after the remembered homes), niced while other sessions kept the 2-core machine at a "
    "load average of 7–9: wall-clock seconds are inflated three to four times; CPU seconds show what a run costs.",
    "",
    "assign: ≤ 60 s met by CPU time (30.7 s: units 0.5, accounts read and located 5.5, writing the two GeoPackages "
    "24.7, about 10 of which is GDAL building the spatial index of the million written points when the file "
    "closes); every account's territory equals the generator's (its plan and overrides); the one wrong unit is an "
    "account within a centimetre of a boundary that the generator's rounding moved across it. The reading before "
    "the straight GeoPackage read took 10.7 CPU s (6.4 of them in QGIS's feature iterator).",
    "",
    "build: ≤ 5 min and < 4 GB met, within 5 % counting the overrides where they are aligned (judged from the "
    "written units and the generator's accounts), contiguous. One old code is gone (499 of 500 kept by overlap): "
    "its 20 overrides are named in the log and count at their units.",
    "",
    "panel: opening ≤ 3 s NOT met: reopening the project (the accounts' units remembered) takes 4.7 CPU s, of which "
    "1.4 reading the million accounts from the GeoPackage and about 1 s making them the ledger's loads; the first "
    "opening 6.3 CPU s (locating a million points in 33,000 polygons with GEOS prepared geometries: about 3 CPU s). "
    "The table shows the units' figures after 0.4 CPU s and the accounts' when the background task is done. A "
    "vectorised ray-crossing test of the points (numpy) was tried: the test itself took 0.4 CPU s but pairing "
    "points with candidate units took 3.6–4.6 s (units from a few hundred metres to 50 km across), so GEOS stays. "
    "Paint on accounts → table updated: p95 11.4 ms, met (one edit command, two territories' sums).",
]


# --- the instance -------------------------------------------------------------------------------

def job_prepare() -> None:
    """Write the units (with a plan) and the accounts (with 2 % overrides) as GeoPackages."""
    from worker import start_qgis

    app = start_qgis()  # noqa: F841
    make_importable()
    from common import write_gpkg
    from qgis.core import QgsFields, QgsGeometry, QgsLineString, QgsPoint, QgsPolygon, QgsWkbTypes
    from territory_planner.compat import DOUBLE, STRING, make_field
    from territory_planner.core.engine import build_territories
    from territory_planner.core.problem import Problem

    DATA.mkdir(parents=True, exist_ok=True)
    polygon_xy, offsets, edges, centroids, points, home, workloads = zip_like_accounts(UNITS, ACCOUNTS, SEED)
    unit_load = np.zeros((UNITS, len(MEASURES)))
    np.add.at(unit_load, home, workloads)
    from scipy import sparse

    adjacency = sparse.coo_matrix((np.ones(2 * len(edges)), (np.r_[edges[:, 0], edges[:, 1]],
                                                            np.r_[edges[:, 1], edges[:, 0]])),
                                  shape=(UNITS, UNITS)).tocsr()
    start = time.perf_counter()
    plan = build_territories(Problem(positions=centroids, workloads=unit_load, adjacency=adjacency,
                                     territory_count=TERRITORIES, measure_names=MEASURES, tolerance=0.05,
                                     time_limit=30.0))
    print(f"  plan of {TERRITORIES} territories in {time.perf_counter() - start:.0f} s, worst "
          f"{100 * plan.figures.max_deviation:.2f} %", flush=True)
    labels = plan.labels
    width = len(str(TERRITORIES))
    codes = [f"Territory {k + 1:0{width}d}" for k in range(TERRITORIES)]
    rng = np.random.default_rng(SEED)
    bordering = _bordering_territories(labels, edges)
    overridden = np.sort(rng.choice(ACCOUNTS, int(OVERRIDDEN * ACCOUNTS), replace=False))
    override = np.full(ACCOUNTS, -1, dtype=np.int64)
    for account in overridden.tolist():
        choices = bordering[labels[home[account]]]
        override[account] = choices[rng.integers(len(choices))]

    fields = QgsFields()
    for field in (make_field("zip", STRING, 8), make_field("territory", STRING, 20)):
        fields.append(field)

    def polygon(i: int):
        ring = polygon_xy[offsets[i]:offsets[i + 1]]
        return QgsGeometry(QgsPolygon(QgsLineString(np.append(ring[:, 0], ring[0, 0]).tolist(),
                                                    np.append(ring[:, 1], ring[0, 1]).tolist())))

    write_gpkg(UNITS_GPKG, "zips", fields, QgsWkbTypes.Type.Polygon, NATION_CRS,
               ((polygon(i), [f"{i:05d}", codes[labels[i]]]) for i in range(UNITS)), batch=10_000)
    fields = QgsFields()
    for field in (make_field("account_id", STRING, 10), make_field("visits", DOUBLE), make_field("sales", DOUBLE),
                  make_field("override", STRING, 20)):
        fields.append(field)
    xy, work, over = points.tolist(), workloads.tolist(), override.tolist()
    write_gpkg(ACCOUNTS_GPKG, "accounts", fields, QgsWkbTypes.Type.Point, NATION_CRS,
               ((QgsGeometry(QgsPoint(*xy[i])), [f"A{i:07d}", *work[i], codes[over[i]] if over[i] >= 0 else None])
                for i in range(ACCOUNTS)), batch=50_000)
    np.savez(TRUTH, home=home, labels=labels, override=override, workloads=workloads, edges=edges,
             centroids=centroids)


def _bordering_territories(labels: np.ndarray, edges: np.ndarray) -> list[list[int]]:
    a, b = labels[edges[:, 0]], labels[edges[:, 1]]
    cross = a != b
    pairs = np.unique(np.concatenate([np.column_stack([a[cross], b[cross]]),
                                      np.column_stack([b[cross], a[cross]])]), axis=0)
    out: list[list[int]] = [[] for _ in range(int(labels.max()) + 1)]
    for x, y in pairs.tolist():
        out[x].append(y)
    return out


# --- jobs -----------------------------------------------------------------------------------------

class AccountPhases(PhaseFeedback):
    """Phases of the account runs, from the algorithms' progress texts."""

    def text(self, text: str) -> None:
        if text.startswith("Reading units"):
            self.begin("reading units")
        elif text.startswith("Reading accounts"):
            self.begin("accounts: read and locate")
        elif text.startswith("Building"):
            self.begin("engine")
        elif text.startswith("Writing"):
            self.begin("writing GeoPackages")

    def progress(self, value: float) -> None:
        pass


def run_job(job: str, out_json: str) -> None:
    from worker import add_territory_provider, open_layer, start_qgis

    app = start_qgis()  # noqa: F841
    add_territory_provider()
    import processing

    out_dir = HERE / job
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.gpkg*"):
        old.unlink()
    units = open_layer(str(UNITS_GPKG), "zips")
    accounts = open_layer(str(ACCOUNTS_GPKG), "accounts")
    common = {"INPUT": units, "ACCOUNTS": accounts, "ACCOUNT_ID_FIELD": "account_id", "OVERRIDE_FIELD": "override",
              "TERRITORY_FIELD": "territory"}
    if job == "assign":
        algorithm = "territory:assignaccounts"
        params = {**common, "BALANCE_FIELDS": MEASURES, "OUTPUT": str(out_dir / "accounts.gpkg"),
                  "OUTPUT_SUMMARY": str(out_dir / "summary.gpkg")}
    else:
        algorithm = "territory:buildterritories"
        params = {**common, "TERRITORY_COUNT": TERRITORIES, "BALANCE_FIELDS": MEASURES, "TOLERANCE": 5.0,
                  "OUTPUT": str(out_dir / "zips.gpkg"), "OUTPUT_TERRITORIES": str(out_dir / "territories.gpkg")}
    baseline = peak_and_reset()
    recorder = AccountPhases()
    start, cpu_start = time.perf_counter(), time.process_time()
    result = processing.run(algorithm, params, feedback=recorder.feedback)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    recorder.end()
    del result
    truth = np.load(TRUTH)
    checks = check_assign(out_dir / "accounts.gpkg", truth) if job == "assign" else judge_build(
        out_dir / "zips.gpkg", truth)
    record = {"job": job, "units": UNITS, "accounts": ACCOUNTS, "overridden": int((truth["override"] >= 0).sum()),
              "territories": TERRITORIES, "seconds": seconds, "cpu_seconds": cpu_seconds,
              "peak_rss_mb": max(p["peak_rss_mb"] for p in recorder.phases), "qgis_before_mb": baseline,
              "phases": recorder.phases, "load": os.getloadavg()[0], **checks}
    Path(out_json).write_text(json.dumps(record, indent=1))


def _read_columns(path: Path, table: str, columns: list[str]) -> list[tuple]:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return connection.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
    finally:
        connection.close()


def check_assign(path: Path, truth) -> dict:
    """Every account's territory and source in the written list against the generator's truth."""
    width = len(str(TERRITORIES))
    codes = [f"Territory {k + 1:0{width}d}" for k in range(TERRITORIES)]
    home, labels, override = truth["home"], truth["labels"], truth["override"]
    expected = np.where(override >= 0, override, labels[home])
    rows = _read_columns(path, "accounts", ["account_id", "territory", "source", "unit"])
    index = {code: k for k, code in enumerate(codes)}
    wrong_territory = wrong_unit = 0
    sources: dict = {}
    for account_id, territory, source, unit in rows:
        i = int(account_id[1:])
        wrong_territory += index.get(territory, -1) != expected[i]
        wrong_unit += unit is None or int(unit) - 1 != home[i]  # the unit column holds the unit's feature id
        sources[source] = sources.get(source, 0) + 1
    return {"rows": len(rows), "wrong_territory": int(wrong_territory), "wrong_unit": int(wrong_unit),
            "sources": sources}


def judge_build(path: Path, truth) -> dict:
    """Balance of the built plan counting every account where it is aligned (overrides at their
    territory, the rest at their unit's)."""
    make_importable()
    from territory_planner.core.metrics import plan_figures

    rows = _read_columns(path, "zips", ["zip", "territory"])
    codes = sorted({territory for _, territory in rows})
    index = {code: k for k, code in enumerate(codes)}
    labels = np.full(UNITS, -1, dtype=np.int64)
    for zip_code, territory in rows:
        labels[int(zip_code)] = index[territory]
    width = len(str(TERRITORIES))
    old_codes = [f"Territory {k + 1:0{width}d}" for k in range(TERRITORIES)]
    override = np.array([index.get(old_codes[o], -1) if o >= 0 else -1 for o in truth["override"].tolist()])
    workloads, home = truth["workloads"], truth["home"]
    territory = np.where(override >= 0, override, labels[home])
    sums = np.zeros((len(codes), workloads.shape[1]))
    np.add.at(sums, territory, workloads)
    figures = plan_figures(labels, np.zeros((UNITS, workloads.shape[1])), territory_count=len(codes),
                           fixed_loads=sums, tolerance=0.05)
    from scipy import sparse

    edges = truth["edges"]
    adjacency = sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(UNITS, UNITS))
    pieces = plan_figures(labels, np.zeros((UNITS, 0)), adjacency=adjacency, territory_count=len(codes))
    kept = sum(1 for code in old_codes if code in index)
    return {"max_deviation_pct": [float(100 * d) for d in np.abs(figures.deviation).max(axis=0)],
            "within_tolerance": bool(figures.balanced), "noncontiguous": int(pieces.noncontiguous),
            "codes_kept": kept, "overrides_lost": int(np.sum((truth["override"] >= 0) & (override < 0)))}


def run_panel(out_json: str) -> None:
    """The panel on the instance: opening it with the accounts (the table counting every account
    where it is aligned), then painting accounts by clicking them."""
    import statistics

    from qgis.core import QgsApplication, QgsFeatureRequest, QgsProject, QgsRectangle
    from qgis.gui import QgsMapCanvas, QgsMessageBar

    app = QgsApplication([], True)
    app.initQgis()
    make_importable()
    sys.path.insert(0, str(BENCH.parent / "tests" / "integration"))
    from bench_dock import FakeIface
    from dock_helpers import click, select_row
    from territory_planner.ui.dock import TerritoryDock
    from worker import open_layer

    units, accounts = open_layer(str(UNITS_GPKG), "zips"), open_layer(str(ACCOUNTS_GPKG), "accounts")
    QgsProject.instance().addMapLayers([units, accounts])
    from territory_planner.layers.accounts import HomeCache

    remembered = HomeCache.for_layers(units, accounts).path
    if remembered and os.path.exists(remembered):
        os.remove(remembered)  # the first opening locates every account
    canvas = QgsMapCanvas()
    canvas.resize(1000, 800)
    canvas.setDestinationCrs(units.crs())
    tasks: list = []
    dock = TerritoryDock(FakeIface(canvas, QgsMessageBar()))
    dock.controller.run_task = tasks.append
    dock.show()
    peak_and_reset()
    wall, cpu = time.perf_counter(), time.process_time()
    form = dock.setup_form
    form.layer_combo.setLayer(units)
    form.accounts_combo.setLayer(accounts)
    form.account_id_combo.setField("account_id")
    form.override_combo.setField("override")
    form.measures_combo.deselectAllOptions()
    form.measures_combo.setCheckedItems(MEASURES)
    form.field_combo.setField("territory")
    app.processEvents()
    bound_wall, bound_cpu = time.perf_counter() - wall, time.process_time() - cpu
    task = [t for t in tasks if type(t).__name__ == "AccountsTask"][-1]  # the one for the whole setup
    task_wall, task_cpu = time.perf_counter(), time.process_time()
    assert task.run()
    task.finished(True)
    app.processEvents()
    open_wall, open_cpu = time.perf_counter() - wall, time.process_time() - cpu
    task_wall, task_cpu = time.perf_counter() - task_wall, time.process_time() - task_cpu
    assert dock.controller.accounts.ready
    truth = np.load(TRUTH)
    sums = {name: row for name, row in zip(dock.service.territory_names,
                                           dock.service.ledger.sums[dock.service.ledger.listed()])}
    width = len(str(TERRITORIES))
    codes = [f"Territory {k + 1:0{width}d}" for k in range(TERRITORIES)]
    expected = np.zeros((TERRITORIES, len(MEASURES)))
    np.add.at(expected, np.where(truth["override"] >= 0, truth["override"], truth["labels"][truth["home"]]),
              truth["workloads"])
    worst = max(float(np.abs(sums[code] - expected[k]).max()) for k, code in enumerate(codes))

    # reopening: a new panel on the project that holds the plan (the accounts' units are remembered)
    tasks.clear()
    wall, cpu = time.perf_counter(), time.process_time()
    panel = TerritoryDock(FakeIface(canvas, QgsMessageBar()))
    panel.controller.run_task = tasks.append
    panel.controller.restore_from_project()
    app.processEvents()
    reopen_task = [t for t in tasks if type(t).__name__ == "AccountsTask"][-1]
    assert reopen_task.run()
    reopen_task.finished(True)
    app.processEvents()
    reopen_wall, reopen_cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert panel.controller.accounts.ready
    panel.unload()

    rng = np.random.default_rng(3)
    sample = sorted(int(f) for f in rng.choice(dock.controller.accounts.fids, size=CLICKS, replace=False))
    spots = [f.geometry().asPoint() for f in accounts.getFeatures(QgsFeatureRequest().setFilterFids(sample))]
    announced: list = []
    dock.model.dataChanged.connect(lambda *_: announced.append(time.perf_counter()))
    dock.model.modelReset.connect(lambda *_: announced.append(time.perf_counter()))
    select_row(dock, codes[7])
    dock.paint_toolbar.paint_accounts_action.trigger()
    paint_ms, paint_cpu_ms = [], []
    for point in spots:
        canvas.setExtent(QgsRectangle(point.x() - 3000, point.y() - 2400, point.x() + 3000, point.y() + 2400))
        announced.clear()
        start, start_cpu = time.perf_counter(), time.process_time()
        before = accounts.undoStack().count()
        click(dock.paint_toolbar.account_tool, canvas, point.x(), point.y())
        if accounts.undoStack().count() > before and announced:
            paint_ms.append(1000.0 * (announced[-1] - start))
            paint_cpu_ms.append(1000.0 * (time.process_time() - start_cpu))
    paint_ms.sort()
    record = {"job": "panel", "units": UNITS, "accounts": ACCOUNTS, "territories": TERRITORIES,
              "seconds": reopen_wall, "cpu_seconds": reopen_cpu, "first_seconds": open_wall, "first_cpu": open_cpu,
              "bind_seconds": bound_wall, "bind_cpu": bound_cpu,
              "accounts_task_seconds": task_wall, "accounts_task_cpu": task_cpu, "peak_rss_mb": peak_and_reset(),
              "worst_sum_difference": worst, "paints": len(paint_ms),
              "paint_median_ms": statistics.median(paint_ms) if paint_ms else None,
              "paint_p95_ms": paint_ms[min(len(paint_ms) - 1, int(round(0.95 * (len(paint_ms) - 1))))]
              if paint_ms else None, "paint_cpu_median_ms": statistics.median(paint_cpu_ms) if paint_cpu_ms else None,
              "phases": [], "load": os.getloadavg()[0]}
    Path(out_json).write_text(json.dumps(record, indent=1))
    dock.unload()
    os._exit(0)  # QGIS's teardown of a GUI application may crash after the results are written


# --- runner ---------------------------------------------------------------------------------------

def run(job: str, fresh: bool) -> dict | None:
    result = HERE / f"{job}.json"
    if result.exists() and not fresh:
        return json.loads(result.read_text())
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    DATA.mkdir(parents=True, exist_ok=True)
    if not (UNITS_GPKG.exists() and ACCOUNTS_GPKG.exists() and TRUTH.exists()):
        start = time.perf_counter()
        subprocess.run([sys.executable, __file__, "prepare"], check=True, env=env, timeout=3600)
        print(f"  wrote the instance in {time.perf_counter() - start:.0f} s", flush=True)
    log = HERE / f"{job}.log"
    with open(log, "w") as out:
        process = subprocess.run([sys.executable, __file__, "job", job, str(result)], stdout=out,
                                 stderr=subprocess.STDOUT, env=env, timeout=JOBS[job][2])
    if process.returncode != 0 or not result.exists():
        print(f"  {job} failed; see {log}", flush=True)
        return None
    return json.loads(result.read_text())


def section() -> str:
    lines = [SECTION_START, "", "## Accounts over units (issue 21): 1,000,000 accounts over 33,000 ZIP-like units", "",
             "`make bench-accounts` runs `bench/accounts.py`: one process per job, offscreen QGIS, "
             "`processing.run` from GeoPackage layers to GeoPackage outputs. Instance: "
             "`instances.zip_like_accounts` (33,000 Voronoi units denser where the 1,000,000 accounts are, "
             "300 Zipf-sized metros), a 500-territory plan made once by the engine, 2 % of the accounts "
             "overridden to a territory bordering their unit's. Memory: the process's peak (VmHWM), QGIS included.",
             "", "| job | total s (CPU s) | peak MB | phases: s (CPU) / MB | checked | target |",
             "|---|---|---|---|---|---|"]
    for job, (seconds_target, mb_target, _) in JOBS.items():
        path = HERE / f"{job}.json"
        if not path.exists():
            continue
        r = json.loads(path.read_text())
        phases = "; ".join(f"{p['phase']} {p['seconds']:.1f} ({p['cpu_seconds']:.1f}) / {p['peak_rss_mb']:.0f}"
                           for p in r["phases"])
        if job == "panel":
            checked = (f"reopening the project → table counting the accounts (their units remembered); the first "
                       f"opening: {r['first_seconds']:.1f} s (CPU {r['first_cpu']:.1f}): setup bound "
                       f"{r['bind_seconds']:.1f} s (CPU {r['bind_cpu']:.1f}), accounts read and located "
                       f"{r['accounts_task_seconds']:.1f} s (CPU {r['accounts_task_cpu']:.1f}); table sums against "
                       f"the generator's: largest difference {r['worst_sum_difference']:.3g}; paint on accounts → "
                       f"table updated ({r['paints']} clicks): median {r['paint_median_ms']:.1f} ms, 95th percentile "
                       f"{r['paint_p95_ms']:.1f} ms (CPU median {r['paint_cpu_median_ms']:.1f} ms)")
            met = [f"opening ≤ {seconds_target} s: " + ("met" if r["seconds"] <= seconds_target else (
                "NOT met by wall-clock, " + ("met" if r["cpu_seconds"] <= seconds_target else "NOT met")
                + " by CPU time")),
                   f"paint p95 ≤ {PAINT_TARGET_MS} ms: " + ("met" if r["paint_p95_ms"] <= PAINT_TARGET_MS
                                                             else "NOT met")]
            lines.append(f"| {job} | {r['seconds']:.1f} ({r['cpu_seconds']:.1f}) | {r['peak_rss_mb']:.0f} | – | "
                         f"{checked} | {'; '.join(met)} |")
            continue
        if job == "assign":
            checked = (f"{r['rows']:,} rows, {r['wrong_territory']} wrong territories, {r['wrong_unit']} wrong "
                       f"units; sources {r['sources']}")
        else:
            checked = (f"worst {'/'.join(f'{v:.2f}' for v in r['max_deviation_pct'])} % counting overrides, "
                       f"{r['noncontiguous']} non-contiguous, {r['codes_kept']} codes kept, "
                       f"{r['overrides_lost']} overrides to a code gone")
        met = [f"≤ {seconds_target} s: " + ("met" if r["seconds"] <= seconds_target else (
            "NOT met by wall-clock, " + ("met" if r["cpu_seconds"] <= seconds_target else "NOT met") + " by CPU time"))]
        if mb_target:
            met.append(f"< {mb_target} MB: {'met' if r['peak_rss_mb'] < mb_target else 'NOT met'}")
        if job == "build":
            met.append("within 5 %" if r["within_tolerance"] else "NOT within 5 %")
        lines.append(f"| {job} | {r['seconds']:.1f} ({r['cpu_seconds']:.1f}) | {r['peak_rss_mb']:.0f} | {phases} | "
                     f"{checked} | {'; '.join(met)} |")
    lines += ["", "Load average when each job finished: " + ", ".join(
        f"{job} {json.loads((HERE / f'{job}.json').read_text()).get('load', float('nan')):.1f}"
        for job in JOBS if (HERE / f"{job}.json").exists()) + " (2 cores shared with other sessions).", "",
        *NOTES, "", SECTION_END]
    return "\n".join(lines)


def write_section(results: Path) -> None:
    replace_section(results, SECTION_START, SECTION_END, section())


def main(argv: list[str]) -> int:
    if argv and argv[0] == "prepare":
        job_prepare()
        return 0
    if argv and argv[0] == "job":
        (run_panel(argv[2]) if argv[1] == "panel" else run_job(argv[1], argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", default=",".join(JOBS))
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--results", default=str(BENCH / "RESULTS.md"))
    args = parser.parse_args(argv)
    for job in [j for j in args.jobs.split(",") if j]:
        if job not in JOBS:
            parser.error(f"unknown job {job}; choose from {', '.join(JOBS)}")
        print(f"{job}: {ACCOUNTS:,} accounts over {UNITS:,} units", flush=True)
        record = run(job, args.fresh)
        if record:
            print(f"  {record['seconds']:.1f} s ({record['cpu_seconds']:.1f} CPU s), peak "
                  f"{record['peak_rss_mb']:.0f} MB", flush=True)
    write_section(Path(args.results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
