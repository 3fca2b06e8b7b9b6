"""The territory dock, driven as a user drives it: pick a layer and fields, read the table, paint
on the map with the mouse, undo and redo, create, rename, merge and delete territories."""

from __future__ import annotations

import numpy as np
import pytest
from dock_helpers import (
    cell_fid,
    click,
    drag,
    expected_sums,
    grid_layer,
    provider_territories,
    select_row,
    set_up_dock,
    show_layer,
    table,
    table_numbers,
)
from qgis.core import Qgis, QgsProject
from territory_planner.core.metrics import plan_figures


def west_east(columns=6, rows=4):
    """West = the three western columns, East = the others."""
    return {(c, r): ("West" if c < 3 else "East") for c in range(columns) for r in range(rows)}


def warnings(iface) -> list[str]:
    bar = iface.messageBar()
    return bar.get_messages(Qgis.MessageLevel.Warning) + bar.get_messages(Qgis.MessageLevel.Critical)


def test_dock_shows_each_territory_with_its_figures(dock):
    layer = grid_layer(territories=west_east())
    set_up_dock(dock, layer, measures=["accounts", "potential"], rep="rep", tolerance=5.0)

    rows = table(dock)
    assert list(rows) == ["East", "West", "Unassigned"]  # names found in the layer, sorted
    numbers = table_numbers(dock)
    sums = expected_sums(layer, "accounts")
    assert numbers["West"]["accounts"] == sums["West"] == 4 * (1 + 2 + 3)
    assert numbers["East"]["accounts"] == sums["East"] == 4 * (4 + 5 + 6)
    target = (sums["West"] + sums["East"]) / 2
    assert numbers["West"]["accounts dev. %"] == pytest.approx((sums["West"] - target) / target)
    assert rows["West"]["accounts dev. %"] == f"{100 * (sums['West'] - target) / target:+.1f} %"
    assert numbers["West"]["potential dev. %"] == pytest.approx(0.0)
    assert rows["West"]["Units"] == 12 and rows["Unassigned"]["Units"] == 0
    assert rows["West"]["Rep"] == "rep0" and rows["East"]["Rep"] == "rep1"
    assert rows["West"]["Pieces"] == "1" and rows["East"]["Pieces"] == "1"

    # outside the tolerance the deviation cell is flagged (the bar turns red)
    model = dock.model
    from territory_planner.ui.territory_list_model import OUT_OF_TOLERANCE_ROLE

    west_dev = model.index(model.row_of("West"), model.column_of("deviation", 0))
    potential_dev = model.index(model.row_of("West"), model.column_of("deviation", 1))
    assert west_dev.data(OUT_OF_TOLERANCE_ROLE) is True
    assert potential_dev.data(OUT_OF_TOLERANCE_ROLE) is False
    dock.setup_form.tolerance_spin.setValue(99.0)
    assert west_dev.data(OUT_OF_TOLERANCE_ROLE) is False


def test_layer_is_styled_by_territory_and_sorting_works(dock):
    layer = grid_layer(territories=west_east())
    set_up_dock(dock, layer)
    renderer = layer.renderer()
    assert renderer.type() == "categorizedSymbol"
    assert [c.value() for c in renderer.categories()][:2] == ["East", "West"]

    column = dock.model.column_of("units")
    dock.table.sortByColumn(dock.model.column_of("sum", 0), Qt_descending())
    first = dock.proxy.index(0, 0).data()
    assert first == "East"
    assert column >= 0


def Qt_descending():  # noqa: N802 - reads like the Qt constant it returns
    from qgis.PyQt.QtCore import Qt

    return Qt.SortOrder.DescendingOrder


def test_click_paints_a_unit_and_undo_redo_restore_exact_figures(dock, qgis_iface):
    layer = grid_layer(territories=west_east())
    set_up_dock(dock, layer, measures=["accounts", "potential"])
    canvas = qgis_iface.mapCanvas()
    show_layer(canvas, layer)
    before = table_numbers(dock)

    select_row(dock, "West")
    assert dock.service.active == "West"
    dock.paint_toolbar.paint_action.trigger()
    assert canvas.mapTool() is dock.paint_toolbar.paint_tool
    click(dock.paint_toolbar.paint_tool, canvas, 3500, 1500)  # unit (3, 1), in East

    moved = cell_fid(layer, 3, 1)
    assert layer.isEditable()
    assert layer.getFeature(moved)["territory"] == "West"
    assert provider_territories(layer)[moved] == "East", "nothing reaches the data source before saving"
    after = table_numbers(dock)
    assert after["West"]["Units"] == 13 and after["East"]["Units"] == 11
    assert after["West"]["accounts"] == before["West"]["accounts"] + 4
    assert after["East"]["potential"] == before["East"]["potential"] - 20
    assert after["West"]["accounts"] == expected_sums(layer, "accounts")["West"]

    dock.paint_toolbar.undo_action.trigger()
    assert table_numbers(dock) == before
    assert layer.getFeature(moved)["territory"] == "East"
    dock.paint_toolbar.redo_action.trigger()
    assert table_numbers(dock) == after

    layer.rollBack()
    qgis_process_events()
    assert table_numbers(dock) == before


def qgis_process_events():
    from qgis.core import QgsApplication

    QgsApplication.processEvents()


def test_dragging_a_rectangle_paints_every_unit_under_it(dock, qgis_iface):
    layer = grid_layer()
    set_up_dock(dock, layer)
    canvas = qgis_iface.mapCanvas()
    show_layer(canvas, layer)
    assert dock.new_territory("North")
    assert table(dock)["Unassigned"]["Units"] == 24
    dock.paint_toolbar.paint_action.trigger()
    # from inside unit (1, 2) to inside unit (4, 3): columns 1..4 of rows 2..3
    drag(dock.paint_toolbar.paint_tool, canvas, [(1500, 2500), (2500, 2900), (4500, 3500)])

    painted = {cell_fid(layer, c, r) for c in range(1, 5) for r in range(2, 4)}
    assert set(dock.service.ledger.fids_of("North")) == painted
    rows = table(dock)
    assert rows["North"]["Units"] == 8 and rows["Unassigned"]["Units"] == 16
    assert table_numbers(dock)["North"]["accounts"] == 2 * (2 + 3 + 4 + 5)
    assert layer.undoStack().count() == 2  # the new territory, then one paint stroke

    layer.undoStack().undo()
    assert table(dock)["North"]["Units"] == 0


def test_lasso_paints_the_units_it_encloses(dock, qgis_iface):
    layer = grid_layer()
    set_up_dock(dock, layer)
    canvas = qgis_iface.mapCanvas()
    show_layer(canvas, layer)
    dock.new_territory("South")
    dock.paint_toolbar.lasso_action.trigger()
    assert canvas.mapTool() is dock.paint_toolbar.lasso_tool
    # a loop around the centres of units (0,0), (1,0), (0,1) but not (1,1)
    loop = [(200, 200), (1900, 200), (1900, 900), (900, 1000), (900, 1900), (200, 1900), (200, 300)]
    drag(dock.paint_toolbar.lasso_tool, canvas, loop)
    assert set(dock.service.ledger.fids_of("South")) == {cell_fid(layer, 0, 0), cell_fid(layer, 1, 0),
                                                         cell_fid(layer, 0, 1)}


def test_eyedropper_picks_the_active_territory(dock, qgis_iface):
    layer = grid_layer(territories=west_east())
    set_up_dock(dock, layer)
    canvas = qgis_iface.mapCanvas()
    show_layer(canvas, layer)
    select_row(dock, "West")
    dock.paint_toolbar.eyedropper_action.trigger()
    click(dock.paint_toolbar.eyedropper_tool, canvas, 5500, 500)
    assert dock.service.active == "East"
    selected = dock.table.selectionModel().selectedRows()
    assert [index.data() for index in selected] == ["East"]


def test_assign_selected_features_and_unassign(dock, qgis_iface):
    layer = grid_layer(territories=west_east())
    set_up_dock(dock, layer)
    layer.selectByIds([cell_fid(layer, 0, 0), cell_fid(layer, 1, 0)])
    select_row(dock, "East")
    dock.paint_toolbar.assign_selected_action.trigger()
    assert table(dock)["East"]["Units"] == 14

    dock.paint_toolbar.erase_action.setChecked(True)
    canvas = qgis_iface.mapCanvas()
    show_layer(canvas, layer)
    dock.paint_toolbar.paint_action.trigger()
    click(dock.paint_toolbar.paint_tool, canvas, 5500, 3500)
    rows = table(dock)
    assert rows["East"]["Units"] == 13 and rows["Unassigned"]["Units"] == 1
    value = layer.getFeature(cell_fid(layer, 5, 3))["territory"]
    assert value is None or (hasattr(value, "isNull") and value.isNull())


def test_new_rename_merge_delete_and_their_undo(dock):
    layer = grid_layer(territories=west_east())
    set_up_dock(dock, layer)
    service = dock.service

    assert dock.new_territory("North")
    assert list(table(dock)) == ["East", "West", "North", "Unassigned"]
    # targets follow the number of territories: three shares now
    total = sum(expected_sums(layer, "accounts").values())
    assert table_numbers(dock)["West"]["accounts dev. %"] == pytest.approx((24 - total / 3) / (total / 3))

    categories = layer.renderer().categories()
    west_colour = categories[1].symbol().color().name()
    select_row(dock, "West")
    assert dock.rename_territory("Coast")
    assert list(table(dock)) == ["East", "Coast", "North", "Unassigned"]
    # a rename is the territory table's (issue 25): the code on every unit stays, the legend shows the name
    assert {layer.getFeature(f)["territory"] for f in service.ledger.fids_of("West")} == {"West"}
    assert [c.value() for c in layer.renderer().categories()][:3] == ["East", "West", "North"]
    assert [c.label() for c in layer.renderer().categories()][:3] == ["East", "Coast", "North"]
    categories = layer.renderer().categories()
    assert categories[1].symbol().color().name() == west_colour, "a renamed territory keeps its colour"

    select_row(dock, "East")
    assert dock.merge_territory("Coast")
    rows = table(dock)
    assert list(rows) == ["Coast", "North", "Unassigned"] and rows["Coast"]["Units"] == 24

    layer.undoStack().undo()  # merge
    assert list(table(dock)) == ["East", "Coast", "North", "Unassigned"]
    assert table(dock)["East"]["Units"] == 12
    layer.undoStack().undo()  # rename
    assert list(table(dock)) == ["East", "West", "North", "Unassigned"]
    assert table(dock)["West"]["Units"] == 12

    select_row(dock, "East")
    assert dock.delete_territory()
    rows = table(dock)
    assert list(rows) == ["West", "North", "Unassigned"] and rows["Unassigned"]["Units"] == 12
    layer.undoStack().undo()
    assert table(dock)["East"]["Units"] == 12

    layer.undoStack().undo()  # new territory North
    assert list(table(dock)) == ["East", "West", "Unassigned"]


def test_incremental_figures_equal_a_full_recount(dock):
    layer = grid_layer(columns=8, rows=6)
    set_up_dock(dock, layer, measures=["accounts", "potential"])
    service = dock.service
    for name in ("A", "B", "C"):
        dock.new_territory(name)
    rng = np.random.default_rng(3)
    fids = service.fids.tolist()
    for step in range(40):
        chosen = rng.choice(fids, size=int(rng.integers(1, 6)), replace=False).tolist()
        service.assign(chosen, [None, "A", "B", "C"][step % 4])
        if step % 7 == 3:
            layer.undoStack().undo()
        if step % 11 == 5:
            layer.undoStack().redo()

    labels = service.ledger.plan_labels()
    full = plan_figures(labels, service.problem_workloads(), adjacency=service.raw_adjacency,
                        positions=service.positions, territory_count=3)
    numbers = table_numbers(dock)
    for k, name in enumerate(("A", "B", "C")):
        assert numbers[name]["Units"] == full.unit_count[k]
        assert numbers[name]["accounts"] == pytest.approx(full.sums[k, 0])
        assert numbers[name]["potential"] == pytest.approx(full.sums[k, 1])
        assert numbers[name]["accounts dev. %"] == pytest.approx(full.deviation[k, 0])
        assert numbers[name]["Pieces"] == full.parts[k]
    # and the layer itself agrees
    for name, value in expected_sums(layer, "accounts").items():
        assert numbers[name if name is not None else "Unassigned"]["Units"] is not None
        if name is not None:
            assert numbers[name]["accounts"] == pytest.approx(value)


def test_a_territory_in_two_pieces_is_marked(dock, qgis_iface):
    layer = grid_layer(territories=west_east())
    set_up_dock(dock, layer)
    assert table(dock)["West"]["Pieces"] == "1"
    # cut West in two by giving its middle column to East
    dock.service.assign([cell_fid(layer, 1, r) for r in range(4)] + [cell_fid(layer, 2, r) for r in range(4)],
                        "East")
    model = dock.model
    index = model.index(model.row_of("West"), model.column_of("parts"))
    assert index.data() == "1"
    dock.service.assign([cell_fid(layer, 0, 1), cell_fid(layer, 0, 2)], "East")
    assert index.data() == "2"
    from qgis.PyQt.QtCore import Qt

    assert index.data(Qt.ItemDataRole.DecorationRole) is not None
    assert "2" in index.data(Qt.ItemDataRole.ToolTipRole)


def test_locked_territory_and_locked_units_are_not_painted(dock, qgis_iface):
    layer = grid_layer(territories=west_east())
    set_up_dock(dock, layer, lock="locked")
    model = dock.model
    from qgis.PyQt.QtCore import Qt

    lock_cell = model.index(model.row_of("East"), model.column_of("locked"))
    assert model.setData(lock_cell, Qt.CheckState.Checked, Qt.ItemDataRole.CheckStateRole)
    assert dock.service.ledger.is_locked("East")

    canvas = qgis_iface.mapCanvas()
    show_layer(canvas, layer)
    select_row(dock, "West")
    dock.paint_toolbar.paint_action.trigger()
    click(dock.paint_toolbar.paint_tool, canvas, 4500, 500)  # an East unit
    assert table(dock)["East"]["Units"] == 12, "a locked territory does not lose units"
    select_row(dock, "East")
    assert dock.service.assign([cell_fid(layer, 0, 0)], "East") == 0, "nor gain them"
    assert not dock.rename_territory("Coast") and not dock.delete_territory() and not dock.merge_territory("West")
    assert list(table(dock)) == ["East", "West", "Unassigned"] and table(dock)["East"]["Units"] == 12
    assert any("locked" in m for m in warnings(qgis_iface))

    # single units: the lock list (saved with the project) and the lock field
    layer.selectByIds([cell_fid(layer, 0, 0)])
    assert dock.lock_selected_units(True) == 1
    assert dock.service.plan.locked_units == [cell_fid(layer, 0, 0)]
    layer.startEditing()
    layer.changeAttributeValue(cell_fid(layer, 1, 0), layer.fields().lookupField("locked"), 1)
    model.setData(lock_cell, Qt.CheckState.Unchecked, Qt.ItemDataRole.CheckStateRole)
    changed = dock.service.assign([cell_fid(layer, 0, 0), cell_fid(layer, 1, 0), cell_fid(layer, 2, 0)], "East")
    assert changed == 1
    assert dock.service.ledger.territory_of_fid(cell_fid(layer, 2, 0)) == "East"
    assert dock.service.ledger.territory_of_fid(cell_fid(layer, 0, 0)) == "West"
    assert dock.service.ledger.territory_of_fid(cell_fid(layer, 1, 0)) == "West"


def test_suggestions_name_moves_that_improve_balance_and_a_click_applies_one(dock):
    layer = grid_layer(territories=west_east())
    set_up_dock(dock, layer, measures=["accounts"])
    select_row(dock, "West")
    dock.refresh_suggestions()
    assert dock.suggestions_panel.list.count() > 0
    first = dock.suggestions_panel.list.item(0)
    assert "East" in first.text() and "West" in first.text()
    before = abs(table_numbers(dock)["West"]["accounts dev. %"])
    dock.suggestions_panel.list.itemClicked.emit(first)
    assert abs(table_numbers(dock)["West"]["accounts dev. %"]) == pytest.approx(before), "a preview first"
    assert dock.preview_panel.isVisibleTo(dock) and "West" in dock.preview_panel.rows()
    dock.preview_panel.apply_button.click()
    assert not dock.preview_panel.isVisibleTo(dock)
    after = abs(table_numbers(dock)["West"]["accounts dev. %"])
    assert after < before
    assert table(dock)["West"]["Pieces"] == "1" and table(dock)["East"]["Pieces"] == "1"
    dock.paint_toolbar.undo_action.trigger()
    assert abs(table_numbers(dock)["West"]["accounts dev. %"]) == pytest.approx(before)


def test_new_territory_field_is_created_through_the_edit_buffer(dock, tmp_path):
    from qgis.core import QgsVectorFileWriter, QgsVectorLayer

    source = grid_layer()
    path = str(tmp_path / "units.gpkg")
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    error = QgsVectorFileWriter.writeAsVectorFormatV2(source, path, QgsProject.instance().transformContext(),
                                                      options)
    assert error[0] == QgsVectorFileWriter.WriterError.NoError
    layer = QgsVectorLayer(path, "units", "ogr")
    layer.startEditing()
    assert layer.deleteAttribute(layer.fields().lookupField("territory"))
    assert layer.commitChanges()
    QgsProject.instance().addMapLayer(layer)
    dock.setup_form.layer_combo.setLayer(layer)
    assert dock.create_field("district")
    assert dock.setup_form.field_combo.currentField() == "district"
    assert dock.service.is_bound
    assert "district" not in [f.name() for f in layer.dataProvider().fields()]
    dock.new_territory("T1")
    dock.service.assign(dock.service.fids[:5].tolist(), "T1")
    assert layer.commitChanges()
    reread = QgsVectorLayer(path, "again", "ogr")
    values = [f["district"] for f in reread.getFeatures()]
    assert values.count("T1") == 5


def test_unusable_layers_and_fields_are_refused_with_a_message(dock, qgis_iface):
    from territory_planner.ui.settings import PlanSettings

    layer = grid_layer(territories=west_east())
    QgsProject.instance().addMapLayer(layer)
    # the field picker only offers text and whole-number fields; a plan naming another is refused
    assert not dock.service.bind(layer, PlanSettings(territory_field="potential"))
    assert not dock.service.is_bound
    assert any("potential" in m and "text or whole-number" in m for m in warnings(qgis_iface))

    qgis_iface.messageBar().clear_messages()
    layer.setReadOnly(True)
    set_up_dock(dock, layer, field="territory")
    assert not dock.service.is_bound
    assert any("read-only" in m for m in warnings(qgis_iface))


def test_a_data_source_that_cannot_be_edited_is_refused(dock, qgis_iface, tmp_path):
    from qgis.core import QgsVectorLayer

    csv = tmp_path / "accounts.csv"
    csv.write_text("x,y,territory,accounts\n0,0,North,5\n1,0,North,7\n0,1,South,3\n", encoding="utf-8")
    layer = QgsVectorLayer(f"file://{csv}?type=csv&xField=x&yField=y&crs=EPSG:3857", "accounts", "delimitedtext")
    assert layer.isValid()
    set_up_dock(dock, layer, field="territory", measures=["accounts"])
    assert not dock.service.is_bound
    assert any("does not allow changing attribute values" in m and "GeoPackage" in m for m in warnings(qgis_iface))
    assert not layer.isEditable()


def test_plan_settings_are_restored_when_the_project_is_reopened(dock, qgis_iface, tmp_path):
    from qgis.core import QgsVectorFileWriter, QgsVectorLayer
    from qgis.PyQt.QtCore import Qt

    path = str(tmp_path / "units.gpkg")
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    assert QgsVectorFileWriter.writeAsVectorFormatV2(grid_layer(territories=west_east()), path,
                                                     QgsProject.instance().transformContext(), options)[0] == 0
    layer = QgsVectorLayer(path, "units", "ogr")
    set_up_dock(dock, layer, measures=["potential", "accounts"], tolerance=7.5, rep="rep", lock="locked")
    dock.new_territory("Empty")
    model = dock.model
    model.setData(model.index(model.row_of("East"), model.column_of("locked")), Qt.CheckState.Checked,
                  Qt.ItemDataRole.CheckStateRole)
    layer.selectByIds([cell_fid(layer, 0, 0)])
    dock.lock_selected_units(True)
    assert layer.commitChanges()
    shown = table(dock)
    assert shown["Empty"]["Units"] == 0, "a territory without units yet is part of the plan too"
    layer_id = layer.id()
    project_file = str(tmp_path / "plan.qgz")
    assert QgsProject.instance().write(project_file)

    QgsProject.instance().clear()
    assert not dock.service.is_bound and dock.setup_form.layer_combo.currentLayer() is None
    assert dock.proxy.rowCount() == 0

    assert QgsProject.instance().read(project_file)
    assert not QgsProject.instance().isDirty(), "restoring the panel does not change the project"
    restored = dock.setup_form.layer_combo.currentLayer()
    assert restored is not None and restored.id() == layer_id
    assert dock.setup_form.field_combo.currentField() == "territory"
    assert sorted(dock.setup_form.measures_combo.checkedItems()) == ["accounts", "potential"]
    assert dock.setup_form.tolerance_spin.value() == pytest.approx(7.5)
    form = dock.setup_form
    assert form.rep_combo.currentField() == "rep" and form.lock_field_combo.currentField() == "locked"
    assert table(dock) == shown
    assert list(table(dock)) == ["East", "West", "Empty", "Unassigned"]
    assert dock.service.ledger.is_locked("East")
    assert dock.service.ledger.is_unit_locked(cell_fid(restored, 0, 0))
    assert not dock.service.ledger.is_unit_locked(cell_fid(restored, 1, 0))


def test_painting_a_shapefile_and_saving_it(dock, qgis_iface, tmp_path):
    from qgis.core import QgsVectorFileWriter, QgsVectorLayer

    path = str(tmp_path / "units.shp")
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "ESRI Shapefile"
    assert QgsVectorFileWriter.writeAsVectorFormatV2(grid_layer(territories=west_east()), path,
                                                     QgsProject.instance().transformContext(), options)[0] == 0
    layer = QgsVectorLayer(path, "units", "ogr")
    assert layer.isValid()
    set_up_dock(dock, layer, measures=["accounts"])
    canvas = qgis_iface.mapCanvas()
    show_layer(canvas, layer)
    select_row(dock, "East")
    dock.paint_toolbar.paint_action.trigger()
    drag(dock.paint_toolbar.paint_tool, canvas, [(500, 500), (2500, 1500)])  # six western units
    rows = table(dock)
    assert rows["East"]["Units"] == 18 and rows["West"]["Units"] == 6
    assert layer.commitChanges()
    reread = QgsVectorLayer(path, "again", "ogr")
    values = [f["territory"] for f in reread.getFeatures()]
    assert values.count("East") == 18 and values.count("West") == 6


def test_double_click_zooms_to_the_territory(dock, qgis_iface):
    layer = grid_layer(territories=west_east())
    set_up_dock(dock, layer)
    canvas = qgis_iface.mapCanvas()
    show_layer(canvas, layer)
    row = next(r for r in range(dock.proxy.rowCount()) if dock.proxy.index(r, 0).data() == "East")
    dock.table.doubleClicked.emit(dock.proxy.index(row, 1))
    extent = canvas.extent()
    assert extent.contains(3000 + 10, 10) and extent.contains(6000 - 10, 4000 - 10)
    # centred on East (x 3000–6000), not on the whole layer (x 0–6000)
    assert extent.center().x() == pytest.approx(4500) and extent.center().y() == pytest.approx(2000)


def test_painting_point_units(dock, qgis_iface):
    from qgis.core import QgsFeature, QgsGeometry, QgsPointXY, QgsVectorLayer

    layer = QgsVectorLayer("Point?crs=EPSG:3857&field=territory:string(20)&field=accounts:integer", "accounts",
                           "memory")
    features = []
    for k in range(12):
        feature = QgsFeature(layer.fields())
        feature.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(1000.0 * (k % 4), 1000.0 * (k // 4))))
        feature.setAttributes([None, 1 + k])
        features.append(feature)
    layer.dataProvider().addFeatures(features)
    layer.updateExtents()
    set_up_dock(dock, layer)
    dock.new_territory("Points")
    canvas = qgis_iface.mapCanvas()
    show_layer(canvas, layer)
    dock.paint_toolbar.paint_action.trigger()
    click(dock.paint_toolbar.paint_tool, canvas, 1010, 990)  # next to the point at (1000, 1000)
    [fid] = dock.service.ledger.fids_of("Points")
    assert layer.getFeature(fid).geometry().asPoint() == QgsPointXY(1000, 1000)
    dock.paint_toolbar.lasso_action.trigger()
    drag(dock.paint_toolbar.lasso_tool, canvas, [(-500, -500), (2500, -500), (2500, 500), (-500, 500)])
    assert len(dock.service.ledger.fids_of("Points")) == 1 + 3
    assert table(dock)["Points"]["Pieces"] == "1"


def test_integer_territory_field_takes_numbers_only(dock, qgis_iface):
    from qgis.core import QgsFeature, QgsGeometry, QgsRectangle, QgsVectorLayer

    layer = QgsVectorLayer("Polygon?crs=EPSG:3857&field=district:integer&field=accounts:integer", "districts",
                           "memory")
    features = []
    for k in range(4):
        feature = QgsFeature(layer.fields())
        feature.setGeometry(QgsGeometry.fromRect(QgsRectangle(k, 0, k + 1, 1)))
        feature.setAttributes([1 if k < 2 else 2, 10])
        features.append(feature)
    layer.dataProvider().addFeatures(features)
    set_up_dock(dock, layer, field="district")
    assert list(table(dock)) == ["1", "2", "Unassigned"]
    assert not dock.new_territory("North")
    assert any("whole numbers" in m for m in warnings(qgis_iface))
    assert dock.new_territory("3")
    dock.service.assign([1], "3")
    assert layer.getFeature(1)["district"] == 3
    assert table(dock)["3"]["Units"] == 1


def test_edits_made_outside_the_dock_show_in_the_table(dock, qgis_iface):
    from qgis.core import QgsApplication, QgsFeature, QgsGeometry, QgsRectangle

    layer = grid_layer(territories=west_east())
    set_up_dock(dock, layer)
    layer.startEditing()
    # as in the attribute table: a new territory name typed into one unit
    layer.changeAttributeValue(cell_fid(layer, 0, 0), layer.fields().lookupField("territory"), "Island")
    rows = table(dock)
    assert list(rows) == ["East", "West", "Island", "Unassigned"]
    assert rows["Island"]["Units"] == 1 and rows["West"]["Units"] == 11
    # a unit drawn with QGIS's own tools
    feature = QgsFeature(layer.fields())
    feature.setGeometry(QgsGeometry.fromRect(QgsRectangle(6000, 0, 7000, 1000)))
    feature.setAttributes([None, 7, 10.0, "rep2", 0])
    assert layer.addFeature(feature)
    QgsApplication.processEvents()
    assert table(dock)["Unassigned"]["Units"] == 1
    assert table_numbers(dock)["Unassigned"]["accounts"] == 7


def test_reshaping_a_unit_updates_contiguity(dock):
    from qgis.core import QgsApplication, QgsGeometry, QgsRectangle

    territories = {(c, r): "U" for c in range(6) for r in range(4)}
    territories[(0, 0)] = territories[(2, 0)] = "T"
    layer = grid_layer(territories=territories)
    set_up_dock(dock, layer)
    assert table(dock)["T"]["Pieces"] == "2"
    layer.startEditing()
    # stretch unit (0, 0) along the bottom until it touches unit (2, 0)
    assert layer.changeGeometry(cell_fid(layer, 0, 0), QgsGeometry.fromRect(QgsRectangle(0, 0, 2000, 400)))
    QgsApplication.processEvents()
    assert table(dock)["T"]["Pieces"] == "1"
    layer.undoStack().undo()
    QgsApplication.processEvents()
    assert table(dock)["T"]["Pieces"] == "2"


def test_an_empty_workload_typed_while_editing_is_reported_and_not_counted_as_zero(dock, qgis_iface):
    layer = grid_layer(territories=west_east())
    set_up_dock(dock, layer, measures=["accounts"])
    dock.setup_form.unit_name_combo.setField("rep")  # messages name units by their unit-name field
    before = table_numbers(dock)
    unit = cell_fid(layer, 1, 0)  # accounts 2, in West, named rep0
    accounts = layer.fields().lookupField("accounts")
    layer.startEditing()
    layer.changeAttributeValue(unit, accounts, None)  # as typed in the attribute table: the value cleared
    told = [m for m in warnings(qgis_iface) if "accounts" in m]
    assert told, "the message bar says which unit has no workload"
    assert f"Feature {unit} (rep0)" in told[-1] and "no value (NULL)" in told[-1] and "Fill it in" in told[-1]
    assert "last valid workload (2)" in told[-1] and "not 0" in told[-1]
    assert table_numbers(dock) == before, "the unit is not counted as 0"

    layer.changeAttributeValue(unit, accounts, 7)  # filled in: counted again
    assert table_numbers(dock)["West"]["accounts"] == before["West"]["accounts"] + 5
