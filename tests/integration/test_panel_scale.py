"""The panel on large GeoPackage layers (issue 14): the plan's columns are read straight from the
GeoPackage and equal what QGIS reads (unsaved edits included); the table follows painting before
the neighbours are read; the neighbours are read in a QGIS task while the panel stays usable; a
layer removed while they are read changes nothing. (Speed itself is measured by bench/bench_dock.py.)"""

from __future__ import annotations

import numpy as np
import pytest
from dock_helpers import click, run_synchronously, select_row, show_layer, table
from qgis.core import (
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransformContext,
    QgsFeature,
    QgsFeatureRequest,
    QgsFields,
    QgsGeometry,
    QgsPointXY,
    QgsProject,
    QgsTask,
    QgsVectorFileWriter,
    QgsVectorLayer,
    QgsWkbTypes,
)
from territory_planner.compat import make_field
from territory_planner.layers import plan_reader
from territory_planner.layers.plan_reader import geopackage_table, read_columns
from territory_planner.ui.dock import TerritoryDock

HOSTILE = ["North", "O'Brien \"East\"", "", None, "  ", "Süd, 3", "1"]


def points_gpkg(path, count: int, territories: int, seed: int = 3, table: str = "accounts") -> QgsVectorLayer:
    """``count`` random points on a 100 km square, territory by 2 km stripe, visits and sales,
    written to a GeoPackage table; opened through OGR as a user opens it."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 100_000, size=(count, 2))
    fields = QgsFields()
    for field in (make_field("territory", "string", 40), make_field("visits", "double"),
                  make_field("sales, €", "double"), make_field("rep", "string", 20)):
        fields.append(field)
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName, options.layerName = "GPKG", table
    writer = QgsVectorFileWriter.create(str(path), fields, QgsWkbTypes.Type.Point,
                                        QgsCoordinateReferenceSystem("EPSG:3857"), QgsCoordinateTransformContext(),
                                        options)
    features = []
    for i in range(count):
        feature = QgsFeature(fields)
        feature.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(*xy[i])))
        stripe = int(xy[i, 0] // (100_000 / territories))
        feature.setAttributes([f"T{stripe + 1:02d}", float(rng.integers(1, 20)), float(rng.uniform(10, 900)),
                               None if i % 7 == 0 else f"rep{i % 3}"])
        features.append(feature)
    writer.addFeatures(features)
    del writer
    layer = QgsVectorLayer(f"{path}|layername={table}", "accounts", "ogr")
    assert layer.isValid()
    return layer


def plain(value):
    """A value as Python sees it, NULL as None (QGIS hands NULL over as a null QVariant)."""
    return None if value is None or (hasattr(value, "isNull") and value.isNull()) else value


def both_ways(layer, indexes):
    direct = read_columns(layer, indexes, QgsFeatureRequest())
    through_qgis = read_columns(layer, indexes, QgsFeatureRequest(), direct=False)
    return ([direct[0], [[plain(v) for v in column] for column in direct[1]]],
            [through_qgis[0], [[plain(v) for v in column] for column in through_qgis[1]]])


def test_geopackage_columns_equal_what_qgis_reads_with_unsaved_edits(tmp_path, monkeypatch):
    layer = points_gpkg(tmp_path / "hostile 'names'.gpkg", 300, 5, table='acc"ounts')
    indexes = [layer.fields().lookupField(name) for name in ("territory", "visits", "sales, €", "rep")]
    territory, visits = indexes[:2]
    # saved: hostile territory names, NULL and blank ones
    assert layer.dataProvider().changeAttributeValues({fid: {territory: name} for fid, name in
                                                       zip(range(1, 1 + len(HOSTILE)), HOSTILE)})
    assert geopackage_table(layer) is not None

    # the shortcut is taken (QGIS is not asked) and gives what QGIS gives
    monkeypatch.setattr(plan_reader, "_read_through_qgis", lambda *a: pytest.fail("read through QGIS"))
    direct = read_columns(layer, indexes, QgsFeatureRequest())
    monkeypatch.undo()
    mine, theirs = both_ways(layer, indexes)
    assert mine == theirs
    assert direct[0] == theirs[0] and len(direct[0]) == 300
    assert [plain(v) for v in direct[1][0][:len(HOSTILE)]] == HOSTILE

    # unsaved edits: changed values and deleted features count, as QGIS shows them
    layer.startEditing()
    layer.changeAttributeValue(9, territory, "Edited")
    layer.changeAttributeValue(10, visits, 123.5)
    layer.deleteFeature(11)
    mine, theirs = both_ways(layer, indexes)
    assert mine == theirs and 11 not in mine[0] and len(mine[0]) == 299
    assert mine[1][0][mine[0].index(9)] == "Edited" and mine[1][1][mine[0].index(10)] == 123.5

    # an added feature, a filter on the layer or a plan's filter expression: read through QGIS
    feature = QgsFeature(layer.fields())
    feature.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(5, 5)))
    feature.setAttribute("territory", "New")
    layer.addFeature(feature)
    mine, theirs = both_ways(layer, indexes)
    assert mine == theirs and "New" in mine[1][0]
    layer.rollBack()
    layer.setSubsetString('"visits" > 10')
    assert geopackage_table(layer) is None
    mine, theirs = both_ways(layer, indexes)
    assert mine == theirs and 0 < len(mine[0]) < 300
    layer.setSubsetString("")
    request = QgsFeatureRequest().setFilterExpression('"visits" < 5')  # the user's own expression
    assert read_columns(layer, indexes, request)[0] == read_columns(layer, indexes, request, direct=False)[0]


class HeldTasks:
    """Stands in for QGIS's task manager: keeps every task until the test runs it."""

    def __init__(self):
        self.tasks = []

    def __call__(self, task):
        self.tasks.append(task)

    def take(self, kind: str):
        [task] = [t for t in self.tasks if type(t).__name__ == kind]
        self.tasks.remove(task)
        return task


@pytest.fixture
def dock(qgis_iface, qgis_new_project):
    qgis_iface.messageBar().clear_messages()
    panel = TerritoryDock(qgis_iface)
    panel.controller.run_task = HeldTasks()
    yield panel
    panel.unload()
    panel.deleteLater()


def open_plan(dock, layer):
    QgsProject.instance().addMapLayer(layer)
    dock.setup_form.layer_combo.setLayer(layer)
    dock.setup_form.measures_combo.deselectAllOptions()
    dock.setup_form.measures_combo.setCheckedItems(["visits"])
    dock.setup_form.field_combo.setField("territory")
    assert dock.service.is_bound


def point_of(layer, fid):
    return layer.getFeature(fid).geometry().asPoint()


def stray_units(service) -> list[int]:
    """The units outside their territory's largest piece, territory by territory from scratch."""
    from scipy.sparse.csgraph import connected_components

    stray = []
    for name in service.territory_names:
        members = np.flatnonzero(service.labels == service.registry_index[name])
        if len(members) == 0:
            continue
        count, piece = connected_components(service.adjacency[members][:, members], directed=False)
        if count > 1:
            stray.extend(int(f) for f in service.fids[members[piece != np.bincount(piece).argmax()]])
    return sorted(stray)


def test_painting_updates_the_table_before_the_neighbours_are_read(dock, qgis_iface, tmp_path):
    layer = points_gpkg(tmp_path / "accounts.gpkg", 20_000, 20)
    open_plan(dock, layer)
    units_task = dock.controller.run_task.take("UnitsTask")
    assert dock.service.adjacency is None and "reading neighbours" in dock.status_label.text()
    before = table(dock)
    assert before["T03"]["Units"] + before["T04"]["Units"] > 0

    show_layer(qgis_iface.mapCanvas(), layer)
    select_row(dock, "T03")
    dock.paint_toolbar.paint_action.trigger()
    fid = next(f.id() for f in layer.getFeatures(QgsFeatureRequest().setNoAttributes()) if f.id() > 100
               and dock.service.ledger.territory_of_fid(f.id()) == "T04")
    point = point_of(layer, fid)
    canvas = qgis_iface.mapCanvas()
    from qgis.core import QgsRectangle

    canvas.setExtent(QgsRectangle(point.x() - 300, point.y() - 300, point.x() + 300, point.y() + 300))
    click(dock.paint_toolbar.paint_tool, canvas, point.x(), point.y())
    after = table(dock)
    assert dock.service.ledger.territory_of_fid(fid) == "T03"
    assert after["T03"]["Units"] == before["T03"]["Units"] + 1
    assert after["T04"]["Units"] == before["T04"]["Units"] - 1
    assert after["T03"]["Pieces"] == "…", "contiguity is shown once the neighbours are read"

    # the neighbours read meanwhile still apply: the layer's geometries did not change
    run_synchronously(units_task)
    service = dock.service
    assert service.adjacency is not None
    assert table(dock)["T03"]["Pieces"] not in ("…", "0")
    assert table(dock)["T03"]["Units"] == after["T03"]["Units"]
    # every territory's pieces (counted all at once) equal the toolbox's count
    from territory_planner.core.metrics import plan_figures

    names = service.territory_names
    full = plan_figures(service.ledger.plan_labels(), service.problem_workloads(), adjacency=service.adjacency,
                        territory_count=len(names), join_islands_first=False)
    assert [int(service.parts[service.registry_index[name]]) for name in names] == [int(v) for v in full.parts]
    assert max(full.parts) > 1, "stripes of random points fall apart in places: the check compares something"
    assert sorted(service.ledger.stray_fids()) == stray_units(service) and stray_units(service)

    # painting keeps them counted, territory by territory, undo included
    rng = np.random.default_rng(5)
    for stroke in range(12):
        fids = [int(f) for f in rng.choice(service.fids, size=1 + stroke * 40, replace=False)]
        service.assign(fids, names[stroke % len(names)])
        if stroke % 3 == 2:
            layer.undoStack().undo()
        full = plan_figures(service.ledger.plan_labels(), service.problem_workloads(), adjacency=service.adjacency,
                            territory_count=len(names), join_islands_first=False)
        assert [int(service.parts[service.registry_index[name]]) for name in names] == [int(v) for v in full.parts]
        assert sorted(service.ledger.stray_fids()) == stray_units(service)


def test_a_layer_removed_while_its_neighbours_are_read_changes_nothing(dock, qgis_iface, tmp_path):
    layer = points_gpkg(tmp_path / "accounts.gpkg", 5_000, 10)
    other = points_gpkg(tmp_path / "other.gpkg", 500, 4)
    open_plan(dock, layer)
    units_task = dock.controller.run_task.take("UnitsTask")
    assert units_task.run()
    QgsProject.instance().removeMapLayer(layer.id())
    assert not dock.service.is_bound
    open_plan(dock, other)  # the panel moved on to another layer meanwhile
    units_task.finished(True)
    assert dock.service.layer is other and dock.service.adjacency is None
    assert sum(row["Units"] for row in table(dock).values()) == 500


def test_the_panel_stays_usable_while_the_neighbours_are_read_in_a_task(qgis_iface, qgis_new_project, tmp_path,
                                                                        qtbot):
    layer = points_gpkg(tmp_path / "accounts.gpkg", 100_000, 20)
    QgsProject.instance().addMapLayer(layer)
    panel = TerritoryDock(qgis_iface)  # tasks go to QGIS's task manager
    try:
        started = []
        manager = QgsApplication.taskManager()

        def added(task_id):
            started.append(task_id)

        manager.taskAdded.connect(added)  # QGIS's task manager outlives the test: disconnected below
        try:
            open_plan(panel, layer)
        finally:
            manager.taskAdded.disconnect(added)
        [task] = [manager.task(i) for i in started if type(manager.task(i)).__name__ == "UnitsTask"]
        qtbot.waitUntil(lambda: task.status() == QgsTask.TaskStatus.Running, timeout=30_000)

        # while the task runs: choose territories and move units; the table follows each change
        painted = 0
        service = panel.service
        first = next(iter(service.territory_names))
        members = [int(f) for f in service.fids[:2000]]
        while task.status() == QgsTask.TaskStatus.Running and painted < 40:
            fid = members[painted * 37 % len(members)]
            target = service.territory_names[(painted + 3) % len(service.territory_names)]
            units_before = table(panel)[target]["Units"]
            if service.ledger.territory_of_fid(fid) == target:
                target = first
                units_before = table(panel)[target]["Units"]
            service.set_active(target)
            assert panel.paint([fid]) == 1
            assert table(panel)[target]["Units"] == units_before + 1
            painted += 1
            qtbot.wait(5)  # the event loop turns: the task reports progress meanwhile
        assert painted >= 1, "the neighbours were read before the panel could be used (layer too small?)"
        qtbot.waitUntil(lambda: service.adjacency is not None, timeout=300_000)
        # what was painted while the task ran is still there, now with contiguity
        assert service.layer.undoStack().count() == painted
        assert all(row["Pieces"] != "…" for name, row in table(panel).items() if name != "Unassigned")
    finally:
        panel.unload()
        panel.deleteLater()


def test_the_units_geometries_are_freed_a_block_at_a_time():
    """The neighbour-reading task drops its million geometries a block at a time (so the panel's
    thread runs in between): the list ends empty and every object in it is gone."""
    import weakref

    from territory_planner.ui.tasks import release_in_blocks

    class Thing:
        pass

    items = [Thing() for _ in range(5_003)]
    alive = [weakref.ref(item) for item in items[::7]]
    release_in_blocks(items, block=1_000)
    assert items == []
    assert all(ref() is None for ref in alive)
