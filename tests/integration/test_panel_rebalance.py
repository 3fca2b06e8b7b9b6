"""Rebalance in the panel (issue 26): for the same layer, field, measures and settings the panel poses
the toolbox's problem; while the engine searches, a row under the table shows the phase and the worst
deviation of the best plan so far, and its Cancel stops the search, changing nothing."""

from __future__ import annotations

import numpy as np
import pytest
from dock_helpers import TaskRecorder, run_synchronously, set_up_dock
from qgis.core import Qgis, QgsFeatureRequest, QgsProject, QgsVectorLayer
from territory_planner.ui.dock import TerritoryDock
from territory_planner.ui.tasks import engine_job


@pytest.fixture
def dock(qgis_iface, qgis_new_project):
    qgis_iface.messageBar().clear_messages()
    panel = TerritoryDock(qgis_iface)
    panel.controller.run_task = TaskRecorder()
    yield panel
    panel.unload()
    panel.deleteLater()


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
    assert lines and lines[-1].endswith("Done")
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
