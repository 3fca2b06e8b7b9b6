"""The panel's Build and Rebalance take the toolbox's TIME_LIMIT and TOLERANCES (issue 8): a time
limit in seconds next to the territory count, and a tolerance of its own per balance field in the
setup. Both are remembered with the plan, reach the engine, and the task reports the current worst
deviation while it searches. Rebalance (issue 26): for the same layer, field, measures and settings the
panel poses the toolbox's problem; a row under the table shows the run, and its Cancel stops it."""

from __future__ import annotations

import time

import numpy as np
import pytest
from dock_helpers import TaskRecorder, grid_layer, run_synchronously, set_up_dock, table
from qgis.core import Qgis, QgsFeatureRequest, QgsProject, QgsVectorLayer
from territory_planner.compat import STRING, make_field
from territory_planner.ui.dock import TerritoryDock
from territory_planner.ui.settings import PlanSettings
from territory_planner.ui.tasks import engine_job
from territory_planner.ui.territory_list_model import OUT_OF_TOLERANCE_ROLE, TERRITORY_ROLE


@pytest.fixture
def dock(qgis_iface, qgis_new_project):
    qgis_iface.messageBar().clear_messages()
    panel = TerritoryDock(qgis_iface)
    panel.controller.run_task = TaskRecorder()
    yield panel
    panel.unload()
    panel.deleteLater()


def rows_by_halves():
    """A 6 × 4 grid split into a lower (rows 0–1) and an upper half (rows 2–3): accounts (1 + column)
    are equal in both (42 each), potential (10 × (row + 1)) is 180 against 420 (±40 % of 300)."""
    return grid_layer(territories={(c, r): ("Lower" if r < 2 else "Upper") for c in range(6) for r in range(4)})


def outside(dock) -> dict:
    """Territory → whether the table marks it out of tolerance (the worst-deviation column)."""
    model = dock.model
    column = [c for c in range(model.columnCount()) if model.column_kind(c)[0] == "worst"][0]
    marks = {}
    for row in range(model.rowCount()):
        index = model.index(row, column)
        name = index.data(TERRITORY_ROLE)
        if name is not None:
            marks[name] = bool(index.data(OUT_OF_TOLERANCE_ROLE))
    return marks


def tolerance_row(dock, measure: str) -> int:
    widget = dock.setup_form.tolerances_table
    return [r for r in range(widget.rowCount()) if widget.item(r, 0).text() == measure][0]


def test_a_loose_tolerance_on_one_measure_reaches_the_table_and_the_engine(dock, qgis_iface):
    layer = rows_by_halves()
    set_up_dock(dock, layer, measures=["accounts", "potential"], tolerance=5.0)
    assert dock.setup_form.tolerances_table.isVisibleTo(dock)
    assert [dock.setup_form.tolerances_table.item(r, 0).text() for r in range(2)] == ["accounts", "potential"]
    assert outside(dock) == {"Lower": True, "Upper": True}, "potential is 40 % off in both halves"

    # typed in the table as a user does: potential may be 50 % off
    dock.setup_form.tolerances_table.item(tolerance_row(dock, "potential"), 1).setText("50")
    assert dock.service.plan.tolerances == {"potential": 50.0}
    assert outside(dock) == {"Lower": False, "Upper": False}

    # the engine judges the plan by the same tolerances: nothing to rebalance
    dock.territory_toolbar.rebalance_action.trigger()
    [task] = dock.controller.run_task.tasks
    assert list(task.job.problem.tolerance_vector()) == pytest.approx([0.05, 0.5])
    run_synchronously(task)
    assert dock.service.preview is None or len(dock.service.preview.moved) == 0
    assert table(dock)["Lower"]["Units"] == 12

    # back to the plan's 5 % on potential: the engine now rebalances, moving units
    dock.controller.run_task.tasks.clear()
    dock.setup_form.tolerances_table.item(tolerance_row(dock, "potential"), 1).setText("")
    assert dock.service.plan.tolerances == {}
    assert outside(dock) == {"Lower": True, "Upper": True}
    dock.territory_toolbar.rebalance_action.trigger()
    [task] = dock.controller.run_task.tasks
    assert task.job.problem.tolerances is None
    run_synchronously(task)
    assert dock.service.preview is not None and len(dock.service.preview.moved) > 0
    assert dock.service.preview.worst_after < dock.service.preview.worst_before


def test_tolerances_and_time_limit_are_remembered_with_the_plan(dock, qgis_iface):
    layer = rows_by_halves()
    set_up_dock(dock, layer, measures=["accounts", "potential"], tolerance=5.0)
    dock.setup_form.tolerances_table.item(tolerance_row(dock, "accounts"), 1).setText("7,5")
    dock.territory_toolbar.time_limit_spin.setValue(12)
    stored = PlanSettings.read(QgsProject.instance())
    assert stored.tolerances == {"accounts": 7.5} and stored.time_limit == 12.0

    # a new panel on the project shows them again
    again = TerritoryDock(qgis_iface)
    again.controller.run_task = TaskRecorder()
    try:
        assert again.service.is_bound
        assert again.setup_form.tolerances_table.item(tolerance_row(again, "accounts"), 1).text() == "7.5"
        assert again.setup_form.tolerances_table.item(tolerance_row(again, "potential"), 1).text() == ""
        assert again.territory_toolbar.time_limit_spin.value() == 12
        # a change of measures keeps the layer's tolerances
        again.setup_form.measures_combo.deselectAllOptions()
        again.setup_form.measures_combo.setCheckedItems(["potential", "accounts"])
        assert again.service.plan.tolerances == {"accounts": 7.5}
    finally:
        again.unload()
        again.deleteLater()


def test_a_tolerance_that_is_not_a_number_is_refused_with_a_message(dock, qgis_iface):
    layer = rows_by_halves()
    set_up_dock(dock, layer, measures=["accounts", "potential"], tolerance=5.0)
    dock.setup_form.tolerances_table.item(tolerance_row(dock, "potential"), 1).setText("lots")
    assert dock.service.plan.tolerances == {}
    assert dock.setup_form.tolerances_table.item(tolerance_row(dock, "potential"), 1).text() == ""
    assert any("tolerance of potential" in m for m in qgis_iface.messageBar().get_messages(Qgis.MessageLevel.Warning))


def georgia_with_field(georgia_layer):
    assert georgia_layer.dataProvider().addAttributes([make_field("territory", STRING, length=40)])
    georgia_layer.updateFields()
    return georgia_layer


def test_time_limit_is_honoured_and_the_task_shows_the_worst_deviation(dock, georgia_layer, qgis_iface):
    # 1 % on two conflicting measures is out of reach for 10 territories: the engine searches until
    # the time is up (60 s by default)
    layer = georgia_with_field(georgia_layer)
    set_up_dock(dock, layer, measures=["population", "elderly"], tolerance=1.0)
    dock.territory_toolbar.count_spin.setValue(10)
    dock.territory_toolbar.time_limit_spin.setValue(3)
    dock.territory_toolbar.build_action.trigger()
    [task] = dock.controller.run_task.tasks
    assert task.job.problem.time_limit == 3.0
    texts = []
    task.progressText.connect(texts.append)
    start = time.monotonic()
    run_synchronously(task)
    elapsed = time.monotonic() - start
    assert elapsed < 40.0, f"the 3 s limit was not honoured ({elapsed:.0f} s; the default would be 60 s)"
    assert any("worst deviation" in text for text in texts), texts
    assert "worst deviation" in task.description()
    assert "worst deviation" in dock.status_label.text()
    assert dock.service.preview is not None, "the best plan found in time is proposed"


def test_cancelling_while_the_engine_searches_changes_nothing(dock, georgia_layer, qgis_iface):
    layer = georgia_with_field(georgia_layer)
    set_up_dock(dock, layer, measures=["population", "elderly"], tolerance=1.0)
    dock.territory_toolbar.count_spin.setValue(10)
    dock.territory_toolbar.time_limit_spin.setValue(600)
    dock.territory_toolbar.build_action.trigger()
    [task] = dock.controller.run_task.tasks
    seen = []

    def cancel_when_searching(text):
        seen.append(text)
        if "worst deviation" in text:
            task.cancel()

    task.progressText.connect(cancel_when_searching)
    start = time.monotonic()
    run_synchronously(task)
    assert time.monotonic() - start < 120.0
    assert any("worst deviation" in text for text in seen)
    assert dock.service.preview is None and layer.undoStack().count() == 0
    assert table(dock)["Unassigned"]["Units"] == 159
    assert any("cancelled" in m for m in qgis_iface.messageBar().get_messages(Qgis.MessageLevel.Info))


@pytest.fixture
def planned(run_algorithm, georgia_layer) -> QgsVectorLayer:
    """Georgia in 6 territories built on population by the toolbox (a memory layer with "territory")."""
    built = run_algorithm("territory:buildterritories", {
        "INPUT": georgia_layer, "TERRITORY_COUNT": 6, "BALANCE_FIELDS": ["population"], "TOLERANCE": 5.0,
        "TIME_LIMIT": 5, "TERRITORY_FIELD": "territory", "OUTPUT": "TEMPORARY_OUTPUT",
        "OUTPUT_TERRITORIES": "TEMPORARY_OUTPUT"})
    layer = built["OUTPUT"]
    layer = layer if isinstance(layer, QgsVectorLayer) else QgsProject.instance().mapLayer(layer)
    return layer.materialize(QgsFeatureRequest())


def test_the_panel_poses_the_toolboxs_problem(dock, planned, run_algorithm, monkeypatch):
    from territory_planner.algorithms import rebalance_territories as algorithm

    set_up_dock(dock, planned, measures=["elderly"], tolerance=5.0)
    dock.territory_toolbar.time_limit_spin.setValue(7)
    job = engine_job(dock.service, "rebalance")
    posed = []
    engine = algorithm.rebalance_territories
    monkeypatch.setattr(algorithm, "rebalance_territories", lambda problem, **kw: posed.append(problem)
                        or engine(problem, **kw))
    run_algorithm("territory:rebalanceterritories", {
        "INPUT": planned, "TERRITORY_FIELD": "territory", "BALANCE_FIELDS": ["elderly"], "TOLERANCE": 5.0,
        "TIME_LIMIT": 7, "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_TERRITORIES": "TEMPORARY_OUTPUT"})
    [toolbox] = posed
    panel = job.problem
    # the toolbox reads the features in the layer's order; the panel in the order of its units
    read = [f.id() for f in planned.getFeatures()]
    place = {int(fid): i for i, fid in enumerate(dock.service.fids[job.units])}
    order = np.array([place[fid] for fid in read])
    assert np.allclose(panel.positions[order], toolbox.positions)
    assert np.array_equal(panel.workloads[order], toolbox.workloads)
    assert (abs(panel.adjacency[order][:, order] - toolbox.adjacency)).sum() == 0
    names = {planned.getFeature(fid)["territory"] for fid in read}
    assert len(names) == 6 and len(job.names) == 6
    panel_names = [job.names[k] for k in panel.initial[order]]
    toolbox_names = [planned.getFeature(fid)["territory"] for fid in read]
    assert panel_names == toolbox_names
    for what in ("territory_count", "measure_names", "tolerance", "tolerances", "time_limit", "contiguous"):
        assert getattr(panel, what) == getattr(toolbox, what), what
    assert panel.locked is None or not np.any(panel.locked >= 0)


def test_the_progress_row_shows_the_run_and_hides_when_the_preview_comes(dock, planned):
    set_up_dock(dock, planned, measures=["elderly"], tolerance=5.0)
    row = dock.engine_progress
    assert not row.isVisibleTo(dock)
    dock.territory_toolbar.rebalance_action.trigger()
    [task] = dock.controller.run_task.tasks
    assert row.isVisibleTo(dock) and task.title in row.line.text()
    lines = []
    dock.controller.progress.connect(lines.append)
    run_synchronously(task)
    assert lines and "Done: worst deviation" in lines[-1], lines
    assert dock.service.preview is not None and dock.preview_panel.isVisibleTo(dock)
    assert not row.isVisibleTo(dock)


def test_cancel_in_the_panel_stops_the_search_and_changes_nothing(dock, planned, qgis_iface):
    # 1 % on two measures that pull apart is out of reach: the search would use its 600 s
    set_up_dock(dock, planned, measures=["population", "elderly"], tolerance=1.0)
    dock.territory_toolbar.time_limit_spin.setValue(600)
    depth = planned.undoStack().count()
    dock.territory_toolbar.rebalance_action.trigger()
    [task] = dock.controller.run_task.tasks
    row = dock.engine_progress
    seen = []

    def cancel_when_searching(text):
        seen.append((text, row.line.text(), row.bar.value()))
        if "worst deviation" in text and row.cancel_button.isEnabled():
            row.cancel_button.click()

    task.progressText.connect(cancel_when_searching)
    run_synchronously(task)
    assert any("worst deviation" in text for text, _, _ in seen)
    text, shown, _ = next(item for item in seen if "worst deviation" in item[0])
    assert text in shown, "the row shows the phase and the worst deviation"
    assert not row.isVisibleTo(dock) and row.cancel_button.isEnabled()
    assert dock.service.preview is None and planned.undoStack().count() == depth
    assert any("cancelled" in m for m in qgis_iface.messageBar().get_messages(Qgis.MessageLevel.Info))
