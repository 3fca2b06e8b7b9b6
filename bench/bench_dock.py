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

Writes bench/RESULTS-dock.md.

    python bench/bench_dock.py [--columns 250 --rows 200] [--clicks 40]
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
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]
    return f"median {statistics.median(values):.1f} ms, 95th percentile {p95:.1f} ms, max {values[-1]:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--columns", type=int, default=250)
    parser.add_argument("--rows", type=int, default=200)
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

    load_before = os.getloadavg()[0]
    canvas = QgsMapCanvas()
    canvas.resize(1000, 800)
    bar = QgsMessageBar()
    n = args.columns * args.rows

    started = time.perf_counter()
    layer = build_layer(args.columns, args.rows)
    QgsProject.instance().addMapLayer(layer)
    make_layer_s = time.perf_counter() - started

    tasks = []
    dock_ms = []
    dock = None

    def make_dock():
        nonlocal dock
        dock = TerritoryDock(FakeIface(canvas, bar))
        dock.run_task = tasks.append

    dock_ms.append(timed(make_dock))
    dock.resize(500, 900)
    dock.show()

    def open_plan():
        dock.layer_combo.setLayer(layer)
        dock.measures_combo.setCheckedItems(["accounts", "potential"])
        dock.field_combo.setField("territory")
        app.processEvents()

    open_ms = timed(open_plan)
    assert dock.service.is_bound and dock.proxy.rowCount() == 21, dock.proxy.rowCount()
    [units_task] = [t for t in tasks if type(t).__name__ == "UnitsTask"]
    tasks.clear()

    # reopening: a new dock on a project that holds the plan (what a user sees after reopening
    # the project, or after closing and opening the panel)
    reopened = []

    def reopen():
        panel = TerritoryDock(FakeIface(canvas, bar))
        panel.run_task = tasks.append
        panel.resize(500, 900)
        panel.show()
        app.processEvents()
        reopened.append(panel)

    reopen_ms = timed(reopen)
    assert reopened[0].service.is_bound and reopened[0].proxy.rowCount() == 21
    reopened[0].unload()
    reopened[0].hide()
    tasks.clear()

    def read_neighbours():
        result = units_task.run()
        units_task.finished(result)

    neighbours_ms = timed(read_neighbours)
    assert dock.service.adjacency is not None

    show_layer(canvas, layer)
    canvas.setExtent(layer.extent())
    select_row(dock, "Territory 7")
    dock.paint_action.trigger()
    announced = []
    dock.model.dataChanged.connect(lambda *_: announced.append(time.perf_counter()))

    rng = np.random.default_rng(1)
    width, height = args.columns * 1000.0, args.rows * 1000.0
    click_ms, rect_ms, undo_ms, drawn_ms = [], [], [], []
    changed_counts = []
    for k in range(args.clicks):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        before = dock.service.revision
        announced.clear()
        start = time.perf_counter()
        click(dock.paint_tool, canvas, x, y)
        if dock.service.revision != before:
            click_ms.append(1000.0 * (announced[-1] - start))
            dock.table.viewport().repaint()  # the table drawn with its new figures
            drawn_ms.append(1000.0 * (time.perf_counter() - start))
        if k % 2 == 0:
            x, y = rng.uniform(0, width - 12000), rng.uniform(0, height - 9000)
            before = dock.service.revision
            announced.clear()
            start = time.perf_counter()
            drag(dock.paint_tool, canvas, [(x + 10, y + 10), (x + 5000, y + 4000), (x + 9990, y + 9990)])
            if dock.service.revision != before:
                rect_ms.append(1000.0 * (announced[-1] - start))
                changed_counts.append(dock.service.revision - before)
        if k % 4 == 0:
            undo_ms.append(timed(lambda: layer.undoStack().undo()))
    suggestions_ms = [timed(lambda: dock.service.suggestions(5)) for _ in range(5)]
    app.processEvents()

    # the incremental figures still equal a full recount
    from territory_planner.core.metrics import plan_figures

    service = dock.service
    full = plan_figures(service.plan_labels(), service.problem_workloads(), territory_count=20)
    listed = [service.registry_index[name] for name in service.territory_names]
    assert np.allclose(service.sums[listed], full.sums)

    lines = [
        "# Territory dock speed",
        "",
        f"Synthetic grid of {n:,} square polygons ({args.columns} × {args.rows}) in a memory layer with a "
        "spatial index, already split into 20 block territories; two balance measures. "
        f"QGIS {Qgis.QGIS_VERSION}, Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPU(s), load average {load_before:.1f} when it started (other work on the machine "
        "slows every figure). Run: `make bench-dock`.",
        "",
        "| what | time |",
        "|---|---|",
        f"| building the test layer (not the dock) | {make_layer_s:.1f} s |",
        f"| creating the dock panel | {dock_ms[0]:.0f} ms |",
        f"| **opening the dock on a project with a plan** → table with every territory's figures "
        f"| **{reopen_ms:.0f} ms** |",
        f"| choosing layer, then measures, in a new dock (the plan is read twice) → table "
        f"| {open_ms:.0f} ms |",
        f"| reading neighbours in the background task (contiguity marks, suggestions) | {neighbours_ms / 1000:.1f} s |",
        f"| **paint one unit by clicking** → table updated ({len(click_ms)} clicks) | **{summary(click_ms)}** |",
        f"| paint one unit by clicking → table redrawn on screen | {summary(drawn_ms)} |",
        f"| paint a rectangle (mean {statistics.mean(changed_counts):.0f} units changed) → table updated "
        f"({len(rect_ms)} drags) | {summary(rect_ms)} |",
        f"| undo one paint stroke | {summary(undo_ms)} |",
        f"| suggestions for the active territory (runs 150 ms after a change, off the paint path) "
        f"| {summary(suggestions_ms)} |",
        "",
        "Painting times include finding the units under the mouse, the edit command on the layer's edit "
        "buffer, the incremental update of the two territories' sums and pieces, and the table model's "
        "change signal. The figures after all strokes were checked against `core.metrics.plan_figures`.",
        "",
    ]
    Path(args.output).write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    dock.unload()
    QgsProject.instance().clear()


if __name__ == "__main__":
    main()
    # The figures are written. Leave without Python's final clean-up, in which QGIS 3.22 crashes while
    # tearing down its widgets in whatever order the garbage collector picks (it did so before this
    # panel had any of its current features too).
    sys.stdout.flush()
    os._exit(0)
