"""Speed of the territory dock on a 50,000-unit layer (`make bench-dock`).

A synthetic grid of square polygons in a memory layer (with a spatial index, as a GeoPackage
has), already split into 20 block territories, balanced on two measures. Measured, in real
QGIS (offscreen):

- opening: choosing layer, territory field and measures in the dock until the table shows every
  territory's figures (attributes only; neighbours are read afterwards in a background task);
- reading neighbours (the background task that enables contiguity marks and suggestions);
- painting: a click on the map assigning one unit, and a rectangle drag assigning about 100,
  each timed from the mouse release until the table model has announced the new figures;
- undo of one paint stroke, and computing the suggestions for the active territory.

A second case (``--points 1000000``): a million account points in a GeoPackage (the clustered
national customer base of ``bench/instances.py``, 2,000 territories around random accounts, two
lognormal measures), written once to build/bench-dock/ and opened through OGR as a user would.

A third case (``--polygons 1000000``): a million Voronoi polygons in a GeoPackage (the uniform
synthetic instance of ``bench/instances.py``), 2,000 territories (each cell joins the nearest of
2,000 random seed cells), two measures; written once to build/bench-dock/, opened through OGR.

Writes its section of bench/RESULTS-dock.md (the other case's section is kept).

    python bench/bench_dock.py [--columns 250 --rows 200] [--clicks 40]
    python bench/bench_dock.py --points 1000000 [--territories 2000]
    python bench/bench_dock.py --polygons 1000000 [--territories 2000]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from plugin_path import make_importable  # noqa: E402

make_importable()


def build_layer(columns: int, rows: int, territories_across: int = 5, territories_down: int = 4):
    import numpy as np
    from qgis.core import QgsFeature, QgsGeometry, QgsRectangle, QgsVectorLayer

    layer = QgsVectorLayer("Polygon?crs=EPSG:3857&field=territory:string(40)&field=accounts:integer"
                           "&field=potential:double", "bench grid", "memory")
    rng = np.random.default_rng(7)
    accounts = rng.integers(4, 21, size=columns * rows)
    potential = rng.uniform(15, 400, size=columns * rows)
    features = []
    size = 1000.0
    for r in range(rows):
        for c in range(columns):
            k = r * columns + c
            territory = (r * territories_down // rows) * territories_across + c * territories_across // columns + 1
            feature = QgsFeature(layer.fields())
            feature.setGeometry(QgsGeometry.fromRect(QgsRectangle(c * size, r * size, (c + 1) * size,
                                                                  (r + 1) * size)))
            feature.setAttributes([f"Territory {territory}", int(accounts[k]), float(potential[k])])
            features.append(feature)
    layer.dataProvider().addFeatures(features)
    layer.dataProvider().createSpatialIndex()
    layer.updateExtents()
    return layer


def nearest_seed_plan(positions, territories: int, seed: int, measures: list):
    """A plan for a bench layer: each unit in the territory of the nearest of ``territories`` random
    units; with the territory names and the layer's fields (territory, then one double per measure)."""
    import numpy as np
    from qgis.core import QgsFields
    from scipy.spatial import cKDTree
    from territory_planner.compat import make_field

    rng = np.random.default_rng(seed)
    _, labels = cKDTree(positions[rng.choice(len(positions), territories, replace=False)]).query(positions)
    fields = QgsFields()
    for field in [make_field("territory", "string", 40)] + [make_field(m, "double") for m in measures]:
        fields.append(field)
    return labels, [f"T{k + 1:04d}" for k in range(territories)], fields


def points_layer(size: int, territories: int):
    """A GeoPackage of ``size`` clustered account points (bench/instances.py ``national_accounts``)
    in ``territories`` territories (the nearest of as many random accounts), opened through OGR.
    Written once to build/bench-dock/."""
    from common import write_gpkg
    from instances import national_accounts
    from qgis.core import QgsGeometry, QgsPointXY, QgsVectorLayer, QgsWkbTypes

    path = ROOT / "build" / "bench-dock" / f"accounts-{size}-{territories}.gpkg"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        positions, workloads = national_accounts(size, 0)
        labels, names, fields = nearest_seed_plan(positions, territories, 3, ["visits", "sales"])
        rows = ((QgsGeometry.fromPointXY(QgsPointXY(*positions[i])),
                 [names[labels[i]], float(workloads[i, 0]), float(workloads[i, 1])]) for i in range(size))
        write_gpkg(path, "accounts", fields, QgsWkbTypes.Type.Point, "EPSG:3857", rows, batch=50_000)
    layer = QgsVectorLayer(f"{path}|layername=accounts", "bench accounts", "ogr")
    assert layer.isValid(), path
    return layer


def polygons_layer(size: int, territories: int):
    """A GeoPackage of ``size`` Voronoi polygons (bench/instances.py ``synthetic_instance``, seed 1)
    in ``territories`` territories (each cell joins the nearest of as many random seed cells, by
    centroid), opened through OGR. Written once to build/bench-dock/."""
    import struct

    import numpy as np
    from common import write_gpkg
    from instances import synthetic_instance
    from qgis.core import QgsGeometry, QgsVectorLayer, QgsWkbTypes
    from qgis.PyQt.QtCore import QByteArray

    path = ROOT / "build" / "bench-dock" / f"voronoi-{size}-{territories}.gpkg"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        instance = synthetic_instance(size, territories, 1)
        positions = instance.positions
        labels, names, fields = nearest_seed_plan(positions, territories, 5, ["customers", "demand"])
        workloads = instance.workloads[:, :2].tolist()
        offsets = instance.polygon_offsets

        def polygon(i: int):
            ring = instance.polygon_xy[offsets[i]:offsets[i + 1]]
            ring = np.vstack([ring, ring[:1]])
            # little-endian WKB polygon with one closed ring
            wkb = struct.pack("<BIII", 1, 3, 1, len(ring)) + np.ascontiguousarray(ring, dtype="<f8").tobytes()
            geometry = QgsGeometry()
            geometry.fromWkb(QByteArray(wkb))
            return geometry

        rows = ((polygon(i), [names[labels[i]]] + workloads[i]) for i in range(size))
        write_gpkg(path, "units", fields, QgsWkbTypes.Type.Polygon, instance.crs, rows)
    layer = QgsVectorLayer(f"{path}|layername=units", "bench polygons", "ogr")
    assert layer.isValid(), path
    return layer


class FakeIface:
    """What the dock asks of QGIS's iface: the map canvas and the message bar."""

    def __init__(self, canvas, bar):
        self._canvas, self._bar = canvas, bar

    def mapCanvas(self):
        return self._canvas

    def messageBar(self):
        return self._bar


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return 1000.0 * (time.perf_counter() - start)


def summary(values: list[float]) -> str:
    if not values:
        return "none measured"
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]
    return f"median {statistics.median(values):.1f} ms, 95th percentile {p95:.1f} ms, max {values[-1]:.1f} ms"


def cpu_s() -> float:
    return time.process_time()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--columns", type=int, default=250)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--points", type=int, default=0, help="account points in a GeoPackage instead of the grid")
    parser.add_argument("--polygons", type=int, default=0,
                        help="Voronoi polygons in a GeoPackage instead of the grid")
    parser.add_argument("--territories", type=int, default=2000, help="territories of the points and polygons cases")
    parser.add_argument("--clicks", type=int, default=40)
    parser.add_argument("--output", default=str(ROOT / "bench" / "RESULTS-dock.md"))
    args = parser.parse_args()

    from qgis.core import Qgis, QgsApplication, QgsProject
    from qgis.gui import QgsMapCanvas, QgsMessageBar

    app = QgsApplication([], True)
    app.initQgis()
    import numpy as np
    from dock_helpers import click, drag, select_row, show_layer
    from territory_planner.ui.dock import TerritoryDock
    from territory_planner.ui.suggestions_panel import suggestions_for

    load_before = os.getloadavg()[0]
    canvas = QgsMapCanvas()
    canvas.resize(1000, 800)
    bar = QgsMessageBar()

    started = time.perf_counter()
    if args.points:
        layer = points_layer(args.points, args.territories)
        measures, territory_count = ["visits", "sales"], args.territories
    elif args.polygons:
        layer = polygons_layer(args.polygons, args.territories)
        measures, territory_count = ["customers", "demand"], args.territories
    else:
        layer = build_layer(args.columns, args.rows)
        measures, territory_count = ["accounts", "potential"], 20
    n = layer.featureCount()
    QgsProject.instance().addMapLayer(layer)
    make_layer_s = time.perf_counter() - started

    tasks = []
    dock_ms = []
    dock = None

    def make_dock():
        nonlocal dock
        dock = TerritoryDock(FakeIface(canvas, bar))
        dock.controller.run_task = tasks.append

    dock_ms.append(timed(make_dock))
    dock.resize(500, 900)
    dock.show()

    def open_plan():
        dock.setup_form.layer_combo.setLayer(layer)
        dock.setup_form.measures_combo.setCheckedItems(measures)
        dock.setup_form.field_combo.setField("territory")
        app.processEvents()

    cpu = cpu_s()
    open_ms = timed(open_plan)
    open_cpu = cpu_s() - cpu
    assert dock.service.is_bound and dock.proxy.rowCount() == territory_count + 1, dock.proxy.rowCount()
    [units_task] = [t for t in tasks if type(t).__name__ == "UnitsTask"]
    tasks.clear()

    # reopening: a new dock on a project that holds the plan (what a user sees after reopening
    # the project, or after closing and opening the panel)
    reopened = []

    def reopen():
        panel = TerritoryDock(FakeIface(canvas, bar))
        panel.controller.run_task = tasks.append
        panel.resize(500, 900)
        panel.show()
        app.processEvents()
        reopened.append(panel)

    cpu = cpu_s()
    reopen_ms = timed(reopen)
    reopen_cpu = cpu_s() - cpu
    assert reopened[0].service.is_bound and reopened[0].proxy.rowCount() == territory_count + 1
    reopened[0].unload()
    reopened[0].hide()
    tasks.clear()

    show_layer(canvas, layer)
    canvas.setExtent(layer.extent())
    announced = []
    dock.model.dataChanged.connect(lambda *_: announced.append(time.perf_counter()))

    rng = np.random.default_rng(1)
    extent = layer.extent()
    if args.points:
        # click on accounts (a click finds the nearest account within a few pixels): zoom to a
        # metro-sized view, as a user does to pick single accounts, around each target
        from qgis.core import QgsFeatureRequest, QgsRectangle

        sample = sorted(int(f) for f in rng.choice(dock.service.fids, size=3 * args.clicks, replace=False))
        spots = [(f.geometry().asPoint().x(), f.geometry().asPoint().y())
                 for f in layer.getFeatures(QgsFeatureRequest().setFilterFids(sample).setNoAttributes())]
        rectangle_size = 8000.0

        def view_at(x, y):
            canvas.setExtent(QgsRectangle(x - 20000, y - 16000, x + 20000, y + 16000))
    elif args.polygons:
        # click inside cells (a cell's centroid lies in it: Voronoi cells are convex), in a view of
        # about 4 km (cells about 100 m across at a million, 25 pixels), as a user zooms in to paint
        from qgis.core import QgsFeatureRequest, QgsRectangle

        sample = sorted(int(f) for f in rng.choice(dock.service.fids, size=3 * args.clicks, replace=False))
        spots = []
        for f in layer.getFeatures(QgsFeatureRequest().setFilterFids(sample).setNoAttributes()):
            centre = f.geometry().centroid().asPoint()
            spots.append((centre.x(), centre.y()))
        rng.shuffle(spots)
        rectangle_size = 1000.0

        def view_at(x, y):
            canvas.setExtent(QgsRectangle(x - 2000, y - 1600, x + 2000, y + 1600))
    else:
        width, height = args.columns * 1000.0, args.rows * 1000.0
        spots = [(rng.uniform(0, width), rng.uniform(0, height)) for _ in range(3 * args.clicks)]
        rectangle_size = 10000.0

        def view_at(_x, _y):
            pass
    first_name = dock.service.territory_names[min(6, territory_count - 1)]
    select_row(dock, first_name)
    dock.paint_toolbar.paint_action.trigger()

    click_cpu_ms: list[float] = []

    def paint_strokes(count: int, offset: int):
        click_ms, rect_ms, undo_ms, drawn_ms, changed = [], [], [], [], []
        click_cpu_ms.clear()
        for k in range(count):
            x, y = spots[offset + k]
            view_at(x, y)
            before = dock.service.revision
            announced.clear()
            cpu = cpu_s()
            start = time.perf_counter()
            click(dock.paint_toolbar.paint_tool, canvas, x, y)
            if dock.service.revision != before and announced:
                click_ms.append(1000.0 * (announced[-1] - start))
                click_cpu_ms.append(1000.0 * (cpu_s() - cpu))
                dock.table.viewport().repaint()  # the table drawn with its new figures
                drawn_ms.append(1000.0 * (time.perf_counter() - start))
            if k % 2 == 0:
                x0 = min(max(extent.xMinimum(), x - rectangle_size / 2), extent.xMaximum() - rectangle_size)
                y0 = min(max(extent.yMinimum(), y - rectangle_size / 2), extent.yMaximum() - rectangle_size)
                before = dock.service.revision
                announced.clear()
                start = time.perf_counter()
                drag(dock.paint_toolbar.paint_tool, canvas,
                     [(x0 + 10, y0 + 10), (x0 + rectangle_size / 2, y0 + rectangle_size / 3),
                      (x0 + rectangle_size - 10, y0 + rectangle_size - 10)])
                if dock.service.revision != before and announced:
                    rect_ms.append(1000.0 * (announced[-1] - start))
                    changed.append(dock.service.revision - before)
            if k % 4 == 0:
                undo_ms.append(timed(lambda: layer.undoStack().undo()))
        return click_ms, rect_ms, undo_ms, drawn_ms, changed

    # The neighbours are read by the task in QGIS's task manager (a worker thread), as in QGIS;
    # meanwhile the panel is used: clicks paint units, and a 10 ms timer measures how long the
    # event loop ever waits (the panel cannot answer during such a pause).
    from qgis.core import QgsTask
    from qgis.PyQt.QtCore import QTimer

    cpu = cpu_s()
    peak_before = _peak_rss_mb()
    pauses: list[float] = []
    last = [time.perf_counter()]

    long_pauses: list[tuple[float, str]] = []

    def tick():
        now = time.perf_counter()
        gap = 1000.0 * (now - last[0])
        pauses.append(gap)
        if gap > 100.0:
            # where the pause fell: the task's progress (read_units: features up to 60 %, then the
            # neighbours), or after the task, when the main thread adopts them
            running = units_task.status() == QgsTask.TaskStatus.Running
            long_pauses.append((gap, f"task at {units_task.progress():.0f} %" if running else "adopting"))
        last[0] = now

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    started = time.perf_counter()
    QgsApplication.taskManager().addTask(units_task)
    timer.start()
    early_ms: list[float] = []
    wanted = max(4, args.clicks // 4)
    k = 0
    while dock.service.adjacency is None:
        app.processEvents()
        if units_task.status() == QgsTask.TaskStatus.Running and len(early_ms) < wanted and k < len(spots):
            x, y = spots[k]
            k += 1
            view_at(x, y)
            before = dock.service.revision
            announced.clear()
            start = time.perf_counter()
            click(dock.paint_toolbar.paint_tool, canvas, x, y)
            if dock.service.revision != before and announced:
                early_ms.append(1000.0 * (announced[-1] - start))
            last[0] = time.perf_counter()  # a click is not a pause of the event loop
        if units_task.status() in (QgsTask.TaskStatus.Complete, QgsTask.TaskStatus.Terminated) and \
                dock.service.adjacency is None:
            app.processEvents()
            break
        time.sleep(0.002)
    timer.stop()
    neighbours_ms = 1000.0 * (time.perf_counter() - started)
    neighbours_cpu = cpu_s() - cpu  # the process's CPU time: the worker thread's included
    pauses = pauses[1:] or [0.0]
    early = (early_ms,)
    assert dock.service.adjacency is not None

    cpu = cpu_s()
    click_ms, rect_ms, undo_ms, drawn_ms, changed_counts = paint_strokes(args.clicks, args.clicks)
    paint_cpu = cpu_s() - cpu
    suggestions_ms = [timed(lambda: suggestions_for(dock.service, 5)) for _ in range(5)]
    app.processEvents()
    load_after = os.getloadavg()[0]

    # the incremental figures still equal a full recount
    from territory_planner.core.metrics import plan_figures

    service = dock.service
    full = plan_figures(service.ledger.plan_labels(), service.problem_workloads(),
                        territory_count=len(service.territory_names))
    listed = [service.registry_index[name] for name in service.territory_names]
    assert np.allclose(service.sums[listed], full.sums)
    pieces = plan_figures(service.ledger.plan_labels(), service.problem_workloads(), adjacency=service.adjacency,
                          territory_count=len(service.territory_names), join_islands_first=False).parts
    assert np.array_equal(service.parts[listed], pieces)

    what = (f"{n:,} account points in a GeoPackage (bench/instances.py `national_accounts`: metro clusters and a "
            f"rural background, lognormal visits and sales), {territory_count:,} territories around random accounts"
            if args.points else
            f"{n:,} Voronoi polygons in a GeoPackage (bench/instances.py `synthetic_instance`, uniform, seed 1; "
            f"cells about {(extent.width() * extent.height() / n) ** 0.5:.0f} m across), {territory_count:,} "
            "territories (each cell joins the nearest of as many random seed cells)"
            if args.polygons else
            f"Synthetic grid of {n:,} square polygons ({args.columns} × {args.rows}) in a memory layer with a "
            "spatial index, already split into 20 block territories")
    run = ("`make bench-dock-1m`" if args.points else "`make bench-dock-1m-polygons`" if args.polygons
           else "`make bench-dock`")
    from_file = bool(args.points or args.polygons)
    kind = "account points" if args.points else "Voronoi polygons" if args.polygons else "polygons"
    lines = [
        f"## {n:,} {kind}",
        "",
        f"{what}; two balance measures. QGIS {Qgis.QGIS_VERSION}, Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPU(s), load average {load_before:.1f} when it started and "
        f"{load_after:.1f} at the end (other sessions share the 2 cores: wall times are inflated, CPU times "
        f"are this process's own). Peak memory of the process {_peak_rss_mb():,.0f} MB. Run: {run}.",
        "",
        "| what | time |",
        "|---|---|",
        f"| {'writing the GeoPackage (once) or opening it' if from_file else 'building the test layer'} "
        f"(not the dock) | {make_layer_s:.1f} s |",
        f"| creating the dock panel | {dock_ms[0]:.0f} ms |",
        f"| **opening the dock on a project with a plan** → table with every territory's figures "
        f"| **{_duration(reopen_ms)}** (CPU {reopen_cpu:.2f} s) |",
        f"| choosing layer, then measures, in a new dock → table | {_duration(open_ms)} (CPU {open_cpu:.2f} s) |",
        f"| paint one unit by clicking while the neighbours are read in the task → table updated "
        f"({len(early[0])} clicks) | {summary(early[0])} |",
        f"| reading neighbours in the background task (contiguity marks, suggestions; the table does not wait) "
        f"| {_duration(neighbours_ms)} (CPU {neighbours_cpu:.1f} s, peak memory {peak_before:,.0f} → "
        f"{_peak_rss_mb():,.0f} MB) |",
        f"| longest pause of the panel's event loop while the neighbours are read (10 ms timer; painting "
        f"meanwhile) | {max(pauses):.0f} ms (median gap {statistics.median(pauses):.0f} ms; "
        f"{len(long_pauses)} pauses over 100 ms"
        + (": " + ", ".join(f"{gap:.0f} ms ({where})" for gap, where in sorted(long_pauses, reverse=True)[:4])
           if long_pauses else "") + ") |",
        f"| **paint one unit by clicking** → table updated ({len(click_ms)} clicks) | **{summary(click_ms)}** "
        f"(CPU median {statistics.median(click_cpu_ms):.1f} ms) |",
        f"| paint one unit by clicking → table redrawn on screen | {summary(drawn_ms)} |",
        f"| paint a rectangle (mean {statistics.mean(changed_counts) if changed_counts else 0:.0f} units changed) "
        f"→ table updated ({len(rect_ms)} drags) | {summary(rect_ms)} |",
        f"| undo one paint stroke | {summary(undo_ms)} |",
        f"| suggestions for the active territory (runs 150 ms after a change, off the paint path) "
        f"| {summary(suggestions_ms)} |",
        f"| CPU time of all painting after the neighbours were read ({len(click_ms) + len(rect_ms) + len(undo_ms)} "
        f"actions, with the map tool's searches) | {paint_cpu:.2f} s |",
        "",
        "Painting times include finding the units under the mouse, the edit command on the layer's edit "
        "buffer, the incremental update of the two territories' sums and pieces, and the table model's "
        "change signal. The figures (sums and pieces) after all strokes were checked against "
        "`core.metrics.plan_figures`.",
        "",
    ]
    if from_file:
        lines[-1:-1] = [
            "",
            "Opening reads the plan's columns (fid, territory, two measures) straight from the GeoPackage's table "
            "(`layers/plan_reader.py`; through QGIS when the layer is filtered or has added features); the "
            "neighbours are read, put in the panel's order and their islands joined on the task's worker thread; "
            "the main thread only adopts them and counts every territory's pieces in one pass. A click looks at "
            "the two territories it changes (their members are kept in step with each move), never at all units.",
        ]
    write_section(Path(args.output), lines)
    print("\n".join(lines))
    dock.unload()
    QgsProject.instance().clear()


def _duration(ms: float) -> str:
    return f"{ms / 1000:.1f} s" if ms >= 1000 else f"{ms:.0f} ms"


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def write_section(path: Path, lines: list[str]) -> None:
    """Replace this case's section of the results file (from its "## " heading to the next one)."""
    heading = lines[0]
    title = "# Territory dock speed"
    old = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    sections: list[list[str]] = []
    for line in old:
        if line.startswith("## "):
            sections.append([line])
        elif sections:
            sections[-1].append(line)
    sections = [s for s in sections if s[0] != heading] + [lines]
    def size(section: list[str]) -> float:  # "## 50,000 polygons" by its size; notes last
        digits = "".join(ch for ch in section[0].split()[1] if ch.isdigit()) if len(section[0].split()) > 1 else ""
        return int(digits) if digits else float("inf")

    sections.sort(key=size)
    text = [title, ""] + [line for section in sections for line in section]
    path.write_text("\n".join(text).rstrip() + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
    # The figures are written. Leave without Python's final clean-up, in which QGIS 3.22 crashes while
    # tearing down its widgets in whatever order the garbage collector picks (it did so before this
    # panel had any of its current features too).
    sys.stdout.flush()
    os._exit(0)
