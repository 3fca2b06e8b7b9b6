"""The panel's Rebalance against the toolbox's on county-like layers (part of `make bench-dock`).

Issue 26: on a national county layer the panel's preview came 76–86 s after the click, the toolbox
finished the same rebalance in 3–4 s. Measured here, in real QGIS (offscreen), with the tasks in
QGIS's task manager as in the desktop:

- the toolbox: ``processing.run("territory:rebalanceterritories")`` end to end (reading, search,
  writing both outputs), balance on places, tolerance 5 %, TIME_LIMIT as the panel's;
- the panel, same layer, field, measure, tolerance and time limit: the click on *Rebalance* until
  the preview is shown (its units outlined on the map), split into the snapshot on the main thread,
  the engine on the task's thread and the preview built on the main thread; meanwhile a 10 ms timer
  measures the longest pause of the panel's event loop, and a click on the territory table every
  250 ms measures how long the panel takes to answer it; the progress lines the panel showed;
- the panel with population ticked as well (the form ticks it by itself: its name says workload), the
  case that runs into the time limit: click → preview against the limit;
- *Cancel* while that search runs: the click on Cancel until the task has ended.

Layers: ``bench/county_layers.py`` (3,000 and 50,000 county-like units, 20 territories built on
population), and with ``--counties build/nat/nat_counties.gpkg`` the 3,085 US counties of
libpysal's NAT (``population`` and ``accounts``, one per county, as the places).

    python bench/bench_dock_rebalance.py [--sizes 3000,50000] [--limit 20] [--counties PATH]
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
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from plugin_path import make_importable  # noqa: E402

make_importable()

#: how long the bench waits for a preview before it calls the run failed (seconds)
PATIENCE = 900.0


class PathClock:
    """Seconds spent in the steps of the panel's path (the snapshot, the engine on the task's thread,
    the preview, the outline on the map), timed by wrapping the functions that do them."""

    def __init__(self):
        self.spent: dict[str, float] = {}
        self._undo = []

    def wrap(self, owner, name: str, label: str) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.spent[label] = self.spent.get(label, 0.0) + time.perf_counter() - start

        setattr(owner, name, timed)
        self._undo.append((owner, name, original))

    def restore(self) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)
        self._undo.clear()


def wait_until(app, condition, seconds: float) -> bool:
    end = time.perf_counter() + seconds
    while not condition():
        if time.perf_counter() > end:
            return False
        app.processEvents()
        time.sleep(0.002)
    return True


def toolbox_run(path: str, measures: list[str], limit: float) -> dict:
    import processing

    cpu, start = time.process_time(), time.perf_counter()
    result = processing.run("territory:rebalanceterritories", {
        "INPUT": path, "TERRITORY_FIELD": "territory", "BALANCE_FIELDS": measures, "TOLERANCE": 5.0,
        "TIME_LIMIT": limit, "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_TERRITORIES": "TEMPORARY_OUTPUT"})
    return {"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu,
            "worst": result["MAX_DEVIATION"], "moved": result["CHANGED_UNITS"]}


def open_panel(app, canvas, bar, path: str, measures: list[str], limit: float):
    from bench_dock import FakeIface
    from qgis.core import QgsProject, QgsVectorLayer
    from territory_planner.ui.dock import TerritoryDock

    layer = QgsVectorLayer(path, Path(path).stem, "ogr")
    assert layer.isValid(), path
    QgsProject.instance().addMapLayer(layer)
    canvas.setDestinationCrs(layer.crs())
    canvas.setLayers([layer])
    canvas.setExtent(layer.extent())
    dock = TerritoryDock(FakeIface(canvas, bar))
    dock.resize(500, 900)
    dock.show()
    form = dock.setup_form
    form.layer_combo.setLayer(layer)
    form.tolerance_spin.setValue(5.0)
    form.measures_combo.deselectAllOptions()
    form.measures_combo.setCheckedItems(measures)
    form.field_combo.setField("territory")
    dock.territory_toolbar.time_limit_spin.setValue(limit)
    app.processEvents()
    assert dock.service.is_bound and list(dock.service.measures) == measures, dock.service.measures
    assert wait_until(app, lambda: dock.service.adjacency is not None, PATIENCE), "the neighbours were not read"
    return layer, dock


def close_panel(app, dock, layer) -> None:
    from qgis.core import QgsProject

    dock.discard_preview()
    dock.unload()
    dock.hide()
    dock.deleteLater()
    layer.rollBack()
    QgsProject.instance().removeMapLayer(layer.id())
    app.processEvents()


def panel_run(app, canvas, bar, path: str, measures: list[str], limit: float,
              cancel_after: float | None = None) -> dict:
    """Click Rebalance in the panel (tasks in QGIS's task manager) and wait for the preview, or click
    Cancel after ``cancel_after`` seconds and wait for the task to end."""
    from qgis.core import QgsApplication, QgsTask
    from qgis.PyQt.QtCore import QPoint, Qt, QTimer
    from qgis.PyQt.QtTest import QTest
    from territory_planner.ui import plan_controller
    from territory_planner.ui import tasks as task_module
    from territory_planner.ui.assignment_service import AssignmentService
    from territory_planner.ui.map_view import UnitsOutline

    layer, dock = open_panel(app, canvas, bar, path, measures, limit)
    service = dock.service
    clock = PathClock()
    clock.wrap(plan_controller, "engine_job", "snapshot")  # the controller's own name for it
    clock.wrap(task_module.EngineTask, "run", "engine")
    clock.wrap(AssignmentService, "propose", "preview")
    clock.wrap(UnitsOutline, "show", "outline")
    lines: list[tuple[float, str]] = []
    dock.controller.progress.connect(lambda text: lines.append((time.perf_counter(), text)))
    shown: list[float] = []
    service.previewChanged.connect(lambda preview: shown.append(time.perf_counter()) if preview is not None else None)

    # the event loop's pauses (10 ms timer) and clicks on the territory table answered (every 250 ms)
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    answers: list[float] = []
    row = [0]

    def click_table():
        rows = dock.proxy.rowCount()
        if not rows:
            return
        row[0] = (row[0] + 1) % rows
        wanted = dock.proxy.index(row[0], 0).data()
        rect = dock.table.visualRect(dock.proxy.index(row[0], 0))
        start = time.perf_counter()
        QTest.mouseClick(dock.table.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                         rect.center() if rect.isValid() else QPoint(5, 5))
        if service.active == wanted:
            answers.append(time.perf_counter() - start)

    ticker, clicker = QTimer(), QTimer()
    ticker.setInterval(10)
    ticker.timeout.connect(tick)
    clicker.setInterval(250)
    clicker.timeout.connect(click_table)
    cpu = time.process_time()
    started = time.perf_counter()
    last[0] = started
    ticker.start()
    clicker.start()
    dock.territory_toolbar.rebalance_action.trigger()
    [task] = [t for t in dock.controller.tasks if isinstance(t, task_module.EngineTask)]
    result: dict = {}
    if cancel_after is None:
        ok = wait_until(app, lambda: bool(shown), PATIENCE)
        result["seconds"] = (shown[0] - started) if ok else None
    else:
        wait_until(app, lambda: time.perf_counter() - started > cancel_after or bool(shown), PATIENCE)
        pressed = time.perf_counter()
        row = getattr(dock, "engine_progress", None)
        if row is not None:
            row.cancel_button.click()  # the panel's Cancel
        else:
            dock.controller.cancel_tasks()  # before issue 26 the panel had none: the task manager's
        ended = wait_until(app, lambda: task.status() in (QgsTask.TaskStatus.Complete, QgsTask.TaskStatus.Terminated)
                           and not dock.controller.tasks, PATIENCE)
        result["cancel_seconds"] = time.perf_counter() - pressed if ended else None
        result["changed_nothing"] = service.preview is None and not layer.isModified()
    app.processEvents()  # the timer's tick after the preview: a pause while it was built is measured too
    ticker.stop()
    clicker.stop()
    wait_until(app, lambda: not QgsApplication.taskManager().countActiveTasks(), 60)
    result["cpu"] = time.process_time() - cpu
    result["longest_pause"] = max(gaps[1:], default=0.0)
    result["answers"] = answers
    result["spent"] = dict(clock.spent)
    result["lines"] = [(at - started, text) for at, text in lines]
    preview = service.preview
    if preview is not None:
        result["worst"] = 100.0 * preview.worst_after
        result["moved"] = len(preview.moved)
    clock.restore()
    close_panel(app, dock, layer)
    return result


def progress_summary(lines: list[tuple[float, str]]) -> str:
    if not lines:
        return "none"
    with_worst = [at for at, text in lines if "worst deviation" in text]
    first = f"the worst deviation first at {with_worst[0]:.1f} s" if with_worst else "never the worst deviation"
    return f"{len(lines)} lines, {first}; last: “{lines[-1][1].split(': ', 1)[-1]}”"


def answered(values: list[float]) -> str:
    if not values:
        return "no click answered"
    values = sorted(values)
    return (f"{len(values)} clicks, median {1000 * statistics.median(values):.0f} ms, "
            f"max {1000 * values[-1]:.0f} ms")


def case_lines(name: str, units: int, limit: float, toolbox: dict, places: dict, both: dict | None,
               cancel: dict | None, measures: tuple[str, str]) -> list[str]:
    population, place = measures

    def seconds(value) -> str:
        return "no preview" if value is None else f"{value:.1f} s"

    spent = places["spent"]
    lines = [
        f"### {name}",
        "",
        "| what | time |",
        "|---|---|",
        f"| toolbox, `processing.run` Rebalance on {place} (TIME_LIMIT {limit:g}) end to end | "
        f"{toolbox['seconds']:.1f} s "
        f"(CPU {toolbox['cpu']:.1f} s; worst deviation {toolbox['worst']:.2f} %, {toolbox['moved']:,} units moved) |",
        f"| **panel, Rebalance on {place} (time limit {limit:g} s): click → preview shown** | "
        f"**{seconds(places['seconds'])}** (CPU {places['cpu']:.1f} s; worst deviation "
        f"{places.get('worst', float('nan')):.2f} %, {places.get('moved', 0):,} units) |",
        f"| … snapshot at the click / engine on the task's thread / preview built / units outlined | "
        f"{1000 * spent.get('snapshot', 0):.0f} ms / {spent.get('engine', 0):.1f} s / "
        f"{1000 * spent.get('preview', 0):.0f} ms / {1000 * spent.get('outline', 0):.0f} ms |",
        f"| … longest pause of the panel's event loop while it ran (10 ms timer) | "
        f"{1000 * places['longest_pause']:.0f} ms |",
        f"| … clicks on the territory table answered while it ran (every 250 ms) | {answered(places['answers'])} |",
        f"| … progress lines in the panel | {progress_summary(places['lines'])} |",
    ]
    if both is not None:
        lines += [
            f"| panel, Rebalance on {population} and {place} (both ticked; time limit {limit:g} s): click → preview "
            f"shown | {seconds(both['seconds'])} (CPU {both['cpu']:.1f} s; worst deviation "
            f"{both.get('worst', float('nan')):.2f} %; engine {both['spent'].get('engine', 0):.1f} s) |",
            f"| … longest pause of the event loop / clicks answered | "
            f"{1000 * both['longest_pause']:.0f} ms / "
            f"{answered(both['answers'])} |",
            f"| … progress lines in the panel | {progress_summary(both['lines'])} |",
        ]
    if cancel is not None:
        ended = "did not end" if cancel["cancel_seconds"] is None else f"{cancel['cancel_seconds']:.2f} s"
        kept = "" if cancel["changed_nothing"] else " (something changed!)"
        lines.append(f"| panel, Cancel 3 s into the rebalance on both: click → task ended | {ended}{kept} |")
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3000,50000")
    parser.add_argument("--limit", type=float, default=20.0, help="TIME_LIMIT and the panel's time limit (s)")
    parser.add_argument("--counties", default="", help="the NAT counties GeoPackage (bench/nat.py), measured too")
    parser.add_argument("--skip-both", action="store_true", help="leave out the two-measure and Cancel runs")
    parser.add_argument("--label", default="", help="a note for the section heading (e.g. before/after)")
    parser.add_argument("--output", default=str(ROOT / "bench" / "RESULTS-dock.md"))
    args = parser.parse_args()

    from qgis.core import Qgis, QgsApplication
    from qgis.gui import QgsMapCanvas, QgsMessageBar

    app = QgsApplication([], True)
    app.initQgis()
    sys.path.append("/usr/share/qgis/python/plugins")
    from processing.core.Processing import Processing

    Processing.initialize()
    from territory_planner.algorithms.provider import TerritoryProvider

    provider = TerritoryProvider()
    assert QgsApplication.processingRegistry().addProvider(provider)
    from county_layers import counties_with_plan, county_like

    canvas = QgsMapCanvas()
    canvas.resize(1000, 700)
    canvas.show()
    bar = QgsMessageBar()
    load_before = os.getloadavg()[0]
    cases = []
    if args.counties:
        cases.append(("3,085 US counties (libpysal's NAT, bench/nat.py; accounts: one per county)",
                      str(counties_with_plan(args.counties)), ("population", "accounts")))
    for size in [int(s) for s in args.sizes.split(",") if s]:
        path = county_like(size)
        cases.append((f"{size:,} county-like units (bench/county_layers.py)", f"{path}|layername=counties",
                      ("population", "places")))
    sections = []
    for name, path, measures in cases:
        print(f"{name}: toolbox…", flush=True)
        toolbox = toolbox_run(path, [measures[1]], args.limit)
        print(f"  {toolbox['seconds']:.1f} s; panel…", flush=True)
        places = panel_run(app, canvas, bar, path, [measures[1]], args.limit)
        print(f"  {places['seconds']} s", flush=True)
        both = cancel = None
        if not args.skip_both:
            both = panel_run(app, canvas, bar, path, list(measures), args.limit)
            print(f"  both: {both['seconds']} s", flush=True)
            cancel = panel_run(app, canvas, bar, path, list(measures), args.limit, cancel_after=3.0)
            print(f"  cancel: {cancel['cancel_seconds']} s", flush=True)
        sections.append(case_lines(name, 0, args.limit, toolbox, places, both, cancel, measures))
    load_after = os.getloadavg()[0]
    heading = "## Rebalance in the panel against the toolbox" + (f" ({args.label})" if args.label else "")
    lines = [
        heading,
        "",
        f"Issue 26. QGIS {Qgis.QGIS_VERSION}, Python {platform.python_version()}, {os.cpu_count()} CPU(s), load "
        f"average {load_before:.1f} when it started and {load_after:.1f} at the end (other sessions share the "
        f"cores: wall times are inflated, CPU times are this process's, all threads). Tolerance 5 %, 20 "
        f"territories balanced on population; Rebalance on the places. Run: `make bench-dock` "
        f"(`bench/bench_dock_rebalance.py`).",
        "",
    ]
    for section in sections:
        lines += section
    replace_section(Path(args.output), lines)
    print("\n".join(lines))


def replace_section(path: Path, lines: list[str]) -> None:
    """Put ``lines`` (a "## " section) in place of the section with the same heading, where it stands
    (the figures before issue 26 and the notes stay below it), or at the end of the file."""
    old = path.read_text(encoding="utf-8").splitlines() if path.exists() else ["# Territory dock speed", ""]
    heading = lines[0]
    if heading in old:
        start = old.index(heading)
        end = next((i for i in range(start + 1, len(old)) if old[i].startswith("## ")), len(old))
        new = old[:start] + lines + old[end:]
    else:
        new = old + [""] + lines
    path.write_text("\n".join(new).rstrip() + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)  # QGIS 3.22 may crash in Python's final clean-up of its widgets (see bench_dock.py)
