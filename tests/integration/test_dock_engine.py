"""Build and Rebalance from the dock: the engine runs as a QgsTask (run synchronously here), its
result arrives as one undoable edit, locks hold, and cancelling or losing the layer changes
nothing."""

from __future__ import annotations

import numpy as np
import pytest
from dock_helpers import TaskRecorder, run_synchronously, select_row, set_up_dock, table, table_numbers
from qgis.core import Qgis, QgsProject
from territory_planner.compat import STRING, make_field
from territory_planner.ui.dock import TerritoryDock


@pytest.fixture
def dock(qgis_iface, qgis_new_project):
    qgis_iface.messageBar().clear_messages()
    panel = TerritoryDock(qgis_iface)
    panel.controller.run_task = TaskRecorder()
    yield panel
    panel.unload()
    panel.deleteLater()


def messages(iface, level) -> list[str]:
    return iface.messageBar().get_messages(level)


def georgia_with_field(georgia_layer):

    assert georgia_layer.dataProvider().addAttributes([make_field("territory", STRING, length=40)])
    georgia_layer.updateFields()
    return georgia_layer


def built_plan(dock, layer, count=5):
    """Build ``count`` territories from the dock and save them: a plan to start from."""
    dock.territory_toolbar.count_spin.setValue(count)
    dock.territory_toolbar.build_action.trigger()
    task = dock.controller.run_task.tasks.pop()
    run_synchronously(task)
    assert dock.apply_preview() > 0
    assert layer.commitChanges()
    return task


def test_build_on_a_layer_without_plan_is_one_undoable_edit(dock, georgia_layer, qgis_iface):
    layer = georgia_with_field(georgia_layer)
    set_up_dock(dock, layer, measures=["population"], tolerance=10.0)
    assert list(table(dock)) == ["Unassigned"]
    assert dock.rebalance() is None, "rebalancing needs a plan; the dock says to build one"

    dock.territory_toolbar.count_spin.setValue(5)
    dock.territory_toolbar.build_action.trigger()
    [task] = dock.controller.run_task.tasks
    assert "Building" in task.description()
    assert table(dock)["Unassigned"]["Units"] == 159, "nothing changes before the task finishes"
    run_synchronously(task)
    assert table(dock)["Unassigned"]["Units"] == 159, "nothing changes before the proposal is applied"
    assert dock.preview_panel.isVisibleTo(dock) and layer.undoStack().count() == 0
    dock.preview_panel.apply_button.click()

    rows = table(dock)
    assert list(rows) == [f"Territory {k}" for k in range(1, 6)] + ["Unassigned"]
    assert rows["Unassigned"]["Units"] == 0
    assert sum(rows[f"Territory {k}"]["Units"] for k in range(1, 6)) == 159
    assert all(rows[f"Territory {k}"]["Pieces"] == "1" for k in range(1, 6))
    assert layer.undoStack().count() == 1
    assert any("changed territory" in m for level in (Qgis.MessageLevel.Success, Qgis.MessageLevel.Warning)
               for m in messages(qgis_iface, level))

    layer.undoStack().undo()
    assert list(table(dock)) == ["Unassigned"] and table(dock)["Unassigned"]["Units"] == 159
    layer.undoStack().redo()
    assert table(dock)["Unassigned"]["Units"] == 0


def test_rebalance_improves_balance_as_one_edit_and_leaves_locked_territories_alone(dock, georgia_layer):
    layer = georgia_with_field(georgia_layer)
    set_up_dock(dock, layer, measures=["population"], tolerance=5.0)
    built_plan(dock, layer)
    service = dock.service

    # unbalance the plan by hand: move a block of units from one territory to another
    rng = np.random.default_rng(0)
    donor = max(service.territory_names, key=lambda t: len(service.ledger.fids_of(t)))
    receiver = next(t for t in service.territory_names if t != donor)
    donor_units = service.ledger.fids_of(donor)
    moved = rng.choice(donor_units, size=len(donor_units) // 3, replace=False).tolist()
    service.assign(moved, receiver)
    locked_name = next(t for t in service.territory_names if t not in (donor, receiver))
    single_owner = next(t for t in service.territory_names if t not in (donor, receiver, locked_name))
    free = [t for t in service.territory_names if t != locked_name]

    def worst_free() -> float:
        return max(float(np.abs(service.ledger.figures_of(t)["deviation"]).max()) for t in free)

    worst_before = worst_free()
    model = dock.model
    from qgis.PyQt.QtCore import Qt

    model.setData(model.index(model.row_of(locked_name), model.column_of("locked")), Qt.CheckState.Checked,
                  Qt.ItemDataRole.CheckStateRole)
    locked_units = set(service.ledger.fids_of(locked_name))
    single = service.ledger.fids_of(single_owner)[0]
    layer.selectByIds([single])
    dock.lock_selected_units(True)
    before = dict(zip(service.fids.tolist(), [service.ledger.territory_of_fid(f) for f in service.fids.tolist()]))
    depth = layer.undoStack().index()

    dock.territory_toolbar.rebalance_action.trigger()
    task = dock.controller.run_task.tasks.pop()
    run_synchronously(task)
    assert layer.undoStack().index() == depth, "a proposal first"
    dock.preview_panel.apply_button.click()

    assert layer.undoStack().index() == depth + 1, "the result is ONE edit command"
    assert worst_free() < worst_before, "the territories the engine may change are better balanced"
    assert set(service.ledger.fids_of(locked_name)) == locked_units, "the locked territory neither gained nor lost"
    assert service.ledger.territory_of_fid(single) == single_owner, "the locked unit stayed"
    changed = [f for f, t in before.items() if service.ledger.territory_of_fid(f) != t]
    assert changed, "rebalancing moved some units"
    assert not set(changed) & locked_units

    figures = table_numbers(dock)
    layer.undoStack().undo()
    assert {f: service.ledger.territory_of_fid(f) for f in before} == before
    layer.undoStack().redo()
    assert table_numbers(dock) == figures


def test_cancelled_rebalance_changes_nothing(dock, georgia_layer, qgis_iface):
    layer = georgia_with_field(georgia_layer)
    set_up_dock(dock, layer, measures=["population"])
    built_plan(dock, layer)
    dock.service.assign(dock.service.ledger.fids_of("Territory 1")[:3], "Territory 2")
    before = table_numbers(dock)
    depth = layer.undoStack().index()

    task = dock.rebalance()
    task.cancel()
    run_synchronously(task)
    assert table_numbers(dock) == before
    assert layer.undoStack().index() == depth
    assert any("cancelled" in m for m in messages(qgis_iface, Qgis.MessageLevel.Info))


def test_layer_removed_while_the_engine_runs_is_refused_with_a_message(dock, georgia_layer, qgis_iface):
    layer = georgia_with_field(georgia_layer)
    set_up_dock(dock, layer, measures=["population"])
    built_plan(dock, layer)
    source = layer.source()
    saved = {f.id(): f["territory"] for f in layer.getFeatures()}
    dock.service.assign(dock.service.ledger.fids_of("Territory 1")[:3], "Territory 2")
    task = dock.rebalance()

    QgsProject.instance().removeMapLayer(layer.id())
    assert not dock.service.is_bound
    run_synchronously(task)
    warnings = messages(qgis_iface, Qgis.MessageLevel.Warning)
    assert any("was removed" in m and "nothing was changed" in m for m in warnings)
    from qgis.core import QgsVectorLayer

    reread = QgsVectorLayer(source, "again", "ogr")
    assert {f.id(): f["territory"] for f in reread.getFeatures()} == saved


def test_edits_made_while_the_engine_runs_are_not_overwritten(dock, georgia_layer, qgis_iface):
    layer = georgia_with_field(georgia_layer)
    set_up_dock(dock, layer, measures=["population"])
    built_plan(dock, layer)
    task = dock.rebalance()
    select_row(dock, "Territory 3")
    unit = dock.service.ledger.fids_of("Territory 2")[0]
    dock.service.assign([unit], "Territory 3")
    after_paint = table_numbers(dock)
    run_synchronously(task)
    assert table_numbers(dock) == after_paint
    assert any("edited while" in m for m in messages(qgis_iface, Qgis.MessageLevel.Warning))


def test_territory_field_deleted_while_the_engine_runs_changes_nothing(dock, georgia_layer, qgis_iface):
    layer = georgia_with_field(georgia_layer)
    set_up_dock(dock, layer, measures=["population"])
    built_plan(dock, layer)
    task = dock.rebalance()
    assert layer.dataProvider().deleteAttributes([layer.fields().lookupField("territory")])
    layer.updateFields()
    depth = layer.undoStack().index()
    run_synchronously(task)  # must neither raise nor write into another field
    assert layer.fields().lookupField("territory") < 0
    assert layer.undoStack().index() == depth
    assert not layer.editBuffer() or not layer.editBuffer().changedAttributeValues()
    warnings = messages(qgis_iface, Qgis.MessageLevel.Warning) + messages(qgis_iface, Qgis.MessageLevel.Critical)
    assert any("nothing was changed" in m or "not applied" in m for m in warnings), warnings


def test_edits_rolled_back_while_the_engine_runs_are_not_overwritten(dock, georgia_layer, qgis_iface):
    layer = georgia_with_field(georgia_layer)
    set_up_dock(dock, layer, measures=["population"])
    built_plan(dock, layer)
    saved = {f.id(): f["territory"] for f in layer.getFeatures()}
    dock.service.assign(dock.service.ledger.fids_of("Territory 1")[:3], "Territory 2")
    task = dock.rebalance()
    assert layer.rollBack()
    run_synchronously(task)
    assert {f.id(): f["territory"] for f in layer.getFeatures()} == saved
    assert not layer.isEditable() or not layer.editBuffer().changedAttributeValues()
    warnings = messages(qgis_iface, Qgis.MessageLevel.Warning)
    assert any("edited while" in m or "nothing was changed" in m for m in warnings), warnings


def test_tasks_run_in_qgis_task_manager(qgis_iface, qgis_new_project, georgia_layer, qtbot, monkeypatch):
    """The real path: neighbours and rebalancing run on QGIS's task manager threads."""
    import threading
    import time

    import territory_planner.core.engine as engine
    from qgis.core import QgsApplication

    # A rebalance of 159 units can finish on its thread before the test gets to cancel it (it
    # then rightly applies its result): hold the engine at its start until the cancel arrives,
    # so the test cancels a task that is surely still running.
    real_rebalance = engine.rebalance_territories
    rebalance_started = threading.Event()

    def rebalance_once_cancelled(problem, progress=None, **options):
        rebalance_started.set()
        deadline = time.monotonic() + 60
        while not progress.is_cancelled() and time.monotonic() < deadline:
            time.sleep(0.005)
        return real_rebalance(problem, progress=progress, **options)

    monkeypatch.setattr(engine, "rebalance_territories", rebalance_once_cancelled)

    panel = TerritoryDock(qgis_iface)
    try:
        layer = georgia_with_field(georgia_layer)
        set_up_dock(panel, layer, measures=["population"], tolerance=5.0)
        qtbot.waitUntil(lambda: panel.service.adjacency is not None, timeout=60000)
        assert table(panel)["Unassigned"]["Pieces"] is None

        panel.territory_toolbar.count_spin.setValue(4)
        task = panel.build()
        assert task is not None and task in panel.controller.tasks
        assert QgsApplication.taskManager().tasks(), "the build shows in QGIS's task manager"
        qtbot.waitUntil(lambda: not panel.controller.tasks, timeout=120000)
        assert panel.apply_preview() > 0
        assert table(panel)["Unassigned"]["Units"] == 0
        assert layer.undoStack().count() == 1

        panel.service.assign(panel.service.ledger.fids_of("Territory 1")[:3], "Territory 2")
        before = table_numbers(panel)
        depth = layer.undoStack().index()
        qgis_iface.messageBar().clear_messages()
        task = panel.rebalance()
        assert rebalance_started.wait(60), "the rebalance did not start on the task manager's thread"
        task.cancel()
        qtbot.waitUntil(lambda: not panel.controller.tasks, timeout=60000)
        assert table_numbers(panel) == before and layer.undoStack().index() == depth
        assert any("cancelled" in m for m in messages(qgis_iface, Qgis.MessageLevel.Info))
    finally:
        panel.unload()
        panel.deleteLater()


def test_build_on_a_plan_keeps_names_by_overlap_not_by_position(dock, georgia_layer):
    layer = georgia_with_field(georgia_layer)
    set_up_dock(dock, layer, measures=["population"], tolerance=10.0)
    built_plan(dock, layer, count=5)
    service = dock.service
    # rename every territory, then list them in reverse order: positions no longer mean anything
    renamed = {name: f"Region {chr(65 + k)}" for k, name in enumerate(service.territory_names)}
    for old, new in renamed.items():
        assert dock.controller.territory_editor.rename(old, new)
    members = {name: set(service.ledger.fids_of(name)) for name in service.territory_names}
    plan = service.plan
    plan.territories = list(reversed(plan.territories))
    assert service.bind(layer, plan)
    assert service.territory_names == list(reversed(list(members)))
    dock.territory_toolbar.count_spin.setValue(5)
    dock.territory_toolbar.build_action.trigger()
    run_synchronously(dock.controller.run_task.tasks.pop())
    dock.apply_preview()
    assert sorted(service.territory_names) == sorted(members)
    for name, before in members.items():
        after = set(service.ledger.fids_of(name))
        assert len(after & before) >= 0.5 * len(before), f"{name} kept most of its counties"


def test_a_proposal_on_a_short_screen_scrolls_apply_and_discard_into_view(dock, georgia_layer):
    """On a laptop-height panel with twelve territories the table fills the view and the proposal
    opens below it: it gets its room, the panel scrolls so that Apply and Discard are in view (not off
    the bottom, nor squeezed to nothing), and once it is applied the panel scrolls back."""
    from qgis.PyQt.QtCore import QPoint
    from qgis.PyQt.QtWidgets import QApplication, QScrollArea

    layer = georgia_with_field(georgia_layer)
    set_up_dock(dock, layer, measures=["population"], tolerance=5.0)
    dock.resize(480, 560)
    dock.show()
    QApplication.processEvents()
    dock.territory_toolbar.count_spin.setValue(12)
    dock.territory_toolbar.build_action.trigger()
    run_synchronously(dock.controller.run_task.tasks.pop())
    for _ in range(5):
        QApplication.processEvents()
    scroll, button = dock.findChild(QScrollArea, "territoryPanelScroll"), dock.preview_panel.apply_button
    assert dock.preview_panel.isVisible()
    assert scroll.verticalScrollBar().maximum() > 0, "the panel is taller than its view: it scrolls"
    top = button.mapTo(scroll.viewport(), QPoint(0, 0)).y()
    assert 0 <= top and top + button.height() <= scroll.viewport().height(), (top, scroll.viewport().height())
    assert dock.preview_panel.discard_button.mapTo(scroll.viewport(), QPoint(0, 0)).y() == top
    assert dock.preview_panel.height() >= dock.preview_panel.minimumSizeHint().height()
    dock.preview_panel.apply_button.click()
    for _ in range(5):
        QApplication.processEvents()
    assert table(dock)["Unassigned"]["Units"] == 0
    assert scroll.verticalScrollBar().value() == 0, "back where the panel was before the proposal"
