"""The change log: every saved change of a unit's territory, from the panel or the attribute table,
lands in a ``territory_changes`` table beside the data; rolled-back and undone edits do not."""

from __future__ import annotations

import pytest
from dock_helpers import cell_fid, grid_layer
from postgis_server import PostgisServer, PostgisUnavailableError
from qgis.core import QgsProject, QgsVectorFileWriter, QgsVectorLayer
from territory_planner.layers.change_log import TABLE, ChangeLogStore
from territory_planner.resources import sample_data
from territory_planner.ui.assignment_service import AssignmentService
from territory_planner.ui.scenarios import add_territory_field
from territory_planner.ui.settings import PlanSettings
from territory_planner.ui.territory_list import TerritoryListEditor


def west_east(columns=6, rows=4):
    return {(c, r): ("West" if c < 3 else "East") for c in range(columns) for r in range(rows)}


def saved_copy(tmp_path, driver: str, extension: str) -> QgsVectorLayer:
    memory = grid_layer(territories=west_east())
    path = str(tmp_path / f"grid.{extension}")
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = driver
    options.layerName = "grid"
    result = QgsVectorFileWriter.writeAsVectorFormatV3(memory, path, QgsProject.instance().transformContext(),
                                                       options)
    assert result[0] == QgsVectorFileWriter.WriterError.NoError, result
    uri = f"{path}|layername=grid" if driver == "GPKG" else path
    layer = QgsVectorLayer(uri, "grid", "ogr")
    assert layer.isValid()
    QgsProject.instance().addMapLayer(layer)
    return layer


@pytest.fixture
def service(qgis_new_project):
    made = AssignmentService(QgsProject.instance())
    yield made
    made.unbind()
    made.deleteLater()


def bind(service, layer, unit_name_field="") -> None:
    plan = PlanSettings(territory_field="territory", measures=["accounts", "potential"],
                        unit_name_field=unit_name_field)
    assert service.bind(layer, plan)


def fresh_rows(store: ChangeLogStore) -> list[dict]:
    """The log read back through a new connection (a new store on the same data)."""
    again = ChangeLogStore(store.provider, store.uri, store.schema, store.sidecar)
    return again.rows()


def test_saved_paint_and_merge_are_logged_once_per_unit_in_the_geopackage(service, tmp_path):
    layer = saved_copy(tmp_path, "GPKG", "gpkg")
    bind(service, layer)
    a, b = cell_fid(layer, 0, 0), cell_fid(layer, 0, 1)
    assert service.assign([a, b], "East") == 2
    assert service.assign([a], "West") == 1  # painted back: no change for a at save time
    assert layer.commitChanges()
    store = service.saving.recorder.store
    rows = fresh_rows(store)
    assert [(r["unit"], r["from_territory"], r["to_territory"], r["action"]) for r in rows] == \
        [(str(b), "West", "East", "paint")]
    assert rows[0]["accounts"] == 1.0 and rows[0]["potential"] == 20.0
    assert rows[0]["scenario"] == "territory"
    assert rows[0]["user_name"]
    assert rows[0]["changed_at"][:4].isdigit()

    west_units = [f.id() for f in layer.getFeatures() if f["territory"] == "West"]
    assert TerritoryListEditor(service).merge("West", "East")
    assert layer.commitChanges()
    rows = fresh_rows(store)
    merged = [r for r in rows if r["action"] == "merge"]
    assert sorted(int(r["unit"]) for r in merged) == sorted(west_units)
    assert all(r["from_territory"] == "West" and r["to_territory"] == "East" for r in merged)
    # the log lives in the layer's own GeoPackage
    assert store.uri == layer.dataProvider().dataSourceUri().split("|")[0]
    assert QgsVectorLayer(f"{store.uri}|layername={TABLE}", "log", "ogr").featureCount() == len(rows)


def test_rollback_and_undo_leave_no_record(service, tmp_path):
    layer = saved_copy(tmp_path, "GPKG", "gpkg")
    bind(service, layer)
    a = cell_fid(layer, 1, 1)
    assert service.assign([a], "East") == 1
    assert layer.rollBack()
    assert layer.startEditing()
    assert service.assign([a], "East") == 1
    layer.undoStack().undo()
    assert layer.commitChanges()
    assert fresh_rows(service.saving.recorder.store) == []


def test_attribute_table_edits_are_logged_with_unit_names(service, tmp_path):
    layer = saved_copy(tmp_path, "GPKG", "gpkg")
    bind(service, layer, unit_name_field="rep")
    a = cell_fid(layer, 5, 3)
    assert layer.startEditing()
    # what the attribute table and the field calculator do: a plain attribute change
    assert layer.changeAttributeValue(a, layer.fields().lookupField("territory"), "West")
    assert layer.commitChanges()
    rows = fresh_rows(service.saving.recorder.store)
    assert [(r["unit"], r["from_territory"], r["to_territory"], r["action"]) for r in rows] == \
        [("rep1", "East", "West", "table edit")]


def test_shapefile_log_goes_to_a_sidecar_geopackage(service, tmp_path):
    layer = saved_copy(tmp_path, "ESRI Shapefile", "shp")
    bind(service, layer)
    assert service.assign([cell_fid(layer, 2, 2)], "East") == 1
    assert layer.commitChanges()
    sidecar = tmp_path / f"grid_{TABLE}.gpkg"
    assert sidecar.exists()
    rows = fresh_rows(service.saving.recorder.store)
    assert [(r["from_territory"], r["to_territory"]) for r in rows] == [("West", "East")]
    assert service.change_log("East") == service.change_log()
    assert service.change_log("Nowhere") == []


def test_a_save_whose_sidecar_log_cannot_be_made_is_refused_with_the_edits_kept(service, tmp_path):
    """Something else stands where the shapefile's log would go: nothing is saved, the edit stays in the
    buffer and the message names the log; once the place is free, one save writes the units and the log."""
    from qgis.core import Qgis
    from qgis.PyQt.QtCore import QCoreApplication

    layer = saved_copy(tmp_path, "ESRI Shapefile", "shp")
    bind(service, layer)
    messages = []
    service.message.connect(lambda text, level: messages.append((text, level)))
    sidecar = tmp_path / f"grid_{TABLE}.gpkg"
    sidecar.mkdir()
    fid = cell_fid(layer, 2, 2)
    assert service.assign([fid], "East") == 1
    layer.commitChanges()
    QCoreApplication.processEvents()  # the held-back edit comes back into the buffer
    saved = QgsVectorLayer(layer.source(), "saved", "ogr")
    assert saved.getFeature(fid)["territory"] == "West", "nothing reached the file"
    assert layer.isModified() and layer.getFeature(fid)["territory"] == "East", "the edit is kept"
    assert any(level == Qgis.MessageLevel.Critical and text.startswith("Nothing was saved") and str(sidecar) in text
               for text, level in messages), messages
    sidecar.rmdir()
    assert layer.commitChanges(), layer.commitErrors()
    assert QgsVectorLayer(layer.source(), "saved", "ogr").getFeature(fid)["territory"] == "East"
    rows = fresh_rows(service.saving.recorder.store)
    assert [(r["from_territory"], r["to_territory"]) for r in rows] == [("West", "East")], "logged once"


def test_memory_layers_have_no_log_and_nothing_fails(service):
    layer = grid_layer(territories=west_east())
    QgsProject.instance().addMapLayer(layer)
    bind(service, layer)
    assert service.saving.recorder.store is None
    assert service.assign([cell_fid(layer, 0, 0)], "East") == 1
    assert layer.commitChanges()
    assert service.change_log() == []


@pytest.fixture(scope="module")
def postgis():
    server = PostgisServer()
    try:
        server.start()
        server.load(sample_data("georgia_counties.gpkg"), "georgia")
    except PostgisUnavailableError as error:
        server.stop()
        pytest.skip(f"PostgreSQL/PostGIS could not run here: {error}")
    yield server
    server.stop()


def test_postgis_log_is_a_table_in_the_layer_schema(postgis, service):
    layer = QgsVectorLayer(postgis.uri("georgia", 26916), "georgia (PostGIS)", "postgres")
    assert layer.isValid(), layer.error().summary()
    QgsProject.instance().addMapLayer(layer)
    fields = layer.fields().names()
    name_field = "fips"
    territory = "territory"
    if territory not in fields:
        assert layer.startEditing()
        assert add_territory_field(layer, territory) is None
        assert layer.commitChanges()
    plan = PlanSettings(territory_field=territory, measures=[], unit_name_field=name_field)
    assert service.bind(layer, plan)
    assert TerritoryListEditor(service).new("North")
    fids = sorted(f.id() for f in layer.getFeatures())[:3]
    names = {f.id(): f[name_field] for f in layer.getFeatures() if f.id() in fids}
    assert service.assign(fids, "North") == 3
    assert layer.commitChanges(), layer.commitErrors()
    store = service.saving.recorder.store
    assert store.provider == "postgres" and store.schema == "public"
    rows = fresh_rows(store)
    assert sorted(r["unit"] for r in rows) == sorted(names.values())
    assert all(r["to_territory"] == "North" and r["action"] == "paint" for r in rows)
    # read back through a connection of its own, straight from the database
    table = QgsVectorLayer(store.layer().source(), "log", "postgres")
    assert table.featureCount() == 3


def test_the_panel_lists_the_log_of_the_active_territory(qgis_iface, qgis_new_project, tmp_path):
    from dock_helpers import run_synchronously, set_up_dock
    from territory_planner.ui.dock import TerritoryDock

    dock = TerritoryDock(qgis_iface)
    dock.controller.run_task = run_synchronously
    try:
        layer = saved_copy(tmp_path, "GPKG", "gpkg")
        set_up_dock(dock, layer, measures=["accounts"])
        dock.service.set_active("East")
        assert dock.paint([cell_fid(layer, 0, 0), cell_fid(layer, 0, 1)]) == 2
        empty = dock.show_change_log()
        assert empty.table.rowCount() == 0, "nothing is logged before saving"
        assert layer.commitChanges()
        dialog = dock.show_change_log("East")
        assert dialog.table.rowCount() == 2
        cells = [[dialog.table.item(r, c).text() for c in range(dialog.table.columnCount())]
                 for r in range(dialog.table.rowCount())]
        assert all(row[3] == "paint" and row[5] == "West" and row[6] == "East" for row in cells)
        assert dock.show_change_log("Nowhere").table.rowCount() == 0
    finally:
        dock.unload()
        dock.deleteLater()


def test_a_geopackage_opened_by_its_path_logs_every_move_with_its_from_at_the_save(qgis_iface, qgis_new_project,
                                                                                  tmp_path):
    """As Processing loads its outputs (no ``|layername=``): the log is written at the save itself; a
    county built and then painted before one save has two rows, each with its *from*; a new scenario
    is one row, not a row per unit; units are named by the layer's id field (fips) in every row."""
    import shutil

    from dock_helpers import run_synchronously
    from territory_planner.layers.change_log import NEW_SCENARIO
    from territory_planner.resources import sample_data
    from territory_planner.ui.dock import TerritoryDock

    path = tmp_path / "georgia.gpkg"
    shutil.copy(sample_data("georgia_counties.gpkg"), path)
    layer = QgsVectorLayer(str(path), "georgia", "ogr")
    assert layer.isValid()
    QgsProject.instance().addMapLayer(layer)
    dock = TerritoryDock(qgis_iface)
    dock.controller.run_task = run_synchronously
    try:
        dock.setup_form.layer_combo.setLayer(layer)
        dock.setup_form.measures_combo.deselectAllOptions()
        dock.setup_form.measures_combo.setCheckedItems(["population"])
        dock.setup_form.unit_name_combo.setField("")
        assert dock.create_field("territory")
        dock.territory_toolbar.count_spin.setValue(4)
        dock.build()
        assert dock.apply_preview() == 159
        service = dock.service
        first, second = service.territory_names[:2]
        fid = service.ledger.fids_of(first)[0]
        service.set_active(second)
        assert dock.paint([fid]) == 1
        assert layer.commitChanges()
        assert service.saving.recorder.backlog == [] and service.saving.recorder.error is None, \
            "written at the save, nothing kept for later"
        fips = layer.getFeature(fid)["fips"]
        rows = [(r["action"], r["from_territory"], r["to_territory"]) for r in service.change_log()
                if r["unit"] == fips]
        assert rows == [("build", None, first), ("paint", first, second)]
        assert all(r["unit"].startswith("13") for r in service.change_log()), "named by fips in every row"

        assert dock.controller.new_scenario("plan_b")
        other = service.ledger.fids_of(second)[0]
        service.set_active(first)
        assert dock.paint([other]) == 1
        assert layer.commitChanges()
        plan_b = [(r["action"], r["from_territory"], r["to_territory"]) for r in service.change_log()
                  if r["scenario"] == "plan_b"]
        assert sorted(plan_b, key=str) == sorted([(NEW_SCENARIO, None, None), ("paint", second, first)], key=str)

        dialog = dock.show_change_log(first)
        assert dialog.table.rowCount() >= 1 and "UTC" in dialog.table.item(0, 0).text()
        dialog.scenario_combo.setCurrentIndex(dialog.scenario_combo.findData("plan_b"))
        assert dialog.table.rowCount() == 1
        written = dialog.export(str(tmp_path / "log.csv"))
        assert written and "paint" in (tmp_path / "log.csv").read_text(encoding="utf-8")
        assert dialog.export(str(tmp_path / "log.xlsx")) and (tmp_path / "log.xlsx").stat().st_size > 1000
    finally:
        dock.unload()
        dock.deleteLater()
