"""The panel's first view: id fields are never offered as measures, workload-like fields are
ticked, and a layer's own style is replaced only when the user agrees."""

from __future__ import annotations

import pytest
from dock_helpers import grid_layer, run_synchronously
from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsProject,
    QgsRendererCategory,
    QgsSymbol,
    QgsVectorLayer,
)
from territory_planner.ui.dock import TerritoryDock


@pytest.fixture
def dock(qgis_iface, qgis_new_project):
    qgis_iface.messageBar().clear_messages()
    panel = TerritoryDock(qgis_iface)
    panel.controller.run_task = run_synchronously
    panel.questions = []
    yield panel
    panel.unload()
    panel.deleteLater()


def answering(dock, answer: bool):
    def confirm(title, text):
        dock.questions.append(text)
        return answer
    dock.confirm = confirm


def test_ids_are_not_offered_and_workloads_are_ticked(dock, georgia_layer):
    QgsProject.instance().addMapLayer(georgia_layer)
    dock.setup_form.layer_combo.setLayer(georgia_layer)
    offered = [dock.setup_form.measures_combo.itemText(i) for i in range(dock.setup_form.measures_combo.count())]
    assert "fid" not in offered and "fips" not in offered
    assert {"population", "elderly", "pct_rural"} <= set(offered)
    assert dock.setup_form.measures_combo.checkedItems() == ["population", "elderly"], \
        "shares (pct_*) are not workloads"


def test_a_layer_with_its_own_style_is_restyled_only_after_asking(dock):
    layer = grid_layer(territories={(c, r): "A" if c < 3 else "B" for c in range(6) for r in range(4)})
    own = QgsCategorizedSymbolRenderer("rep", [QgsRendererCategory("rep0", QgsSymbol.defaultSymbol(
        layer.geometryType()), "rep0")])
    layer.setRenderer(own)
    QgsProject.instance().addMapLayer(layer)
    answering(dock, False)
    dock.setup_form.layer_combo.setLayer(layer)
    dock.setup_form.field_combo.setField("territory")
    assert dock.service.is_bound
    assert len(dock.questions) == 1 and "style of its own" in dock.questions[0]
    assert layer.renderer().classAttribute() == "rep", "the user's style is kept"
    dock.service.set_active("A")
    dock.paint([next(layer.getFeatures()).id()])
    assert layer.renderer().classAttribute() == "rep"

    other = grid_layer(name="other")
    other.setRenderer(QgsCategorizedSymbolRenderer("rep", []))
    QgsProject.instance().addMapLayer(other)
    answering(dock, True)
    dock.setup_form.layer_combo.setLayer(other)
    dock.setup_form.field_combo.setField("territory")
    assert other.renderer().classAttribute() == "territory", "restyled after a yes"


def test_a_plain_layer_is_styled_without_a_question(dock):
    layer = grid_layer(territories={(c, r): "A" for c in range(6) for r in range(4)})
    assert isinstance(layer, QgsVectorLayer)
    QgsProject.instance().addMapLayer(layer)
    answering(dock, False)
    dock.setup_form.layer_combo.setLayer(layer)
    dock.setup_form.field_combo.setField("territory")
    assert dock.questions == []
    assert layer.renderer().type() == "categorizedSymbol"


def test_compact_table_fits_and_every_figure_is_on_hover(dock):
    from dock_helpers import set_up_dock
    from qgis.PyQt.QtCore import Qt

    layer = grid_layer(territories={(c, r): "West" if c < 3 else "East" for c in range(6) for r in range(4)})
    set_up_dock(dock, layer, measures=["accounts", "potential"], rep="rep")
    model, view = dock.model, dock.table
    shown = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())
             if not view.isColumnHidden(c)]
    assert shown == ["Territory", "", "Worst dev. %", "Pieces"]
    row = model.row_of("West")
    worst = model.index(row, model.column_of("worst")).data()
    assert worst == "-42.9 %"  # accounts 24 against a target of 42; potential is balanced
    tip = model.index(row, 0).data(Qt.ItemDataRole.ToolTipRole)
    assert "accounts: 24 (target 42, -42.9 %)" in tip and "potential: 300 (target 300, +0.0 %)" in tip
    assert "Units: 12" in tip and "Rep: rep0" in tip
    dock.territory_toolbar.details_action.trigger()
    assert not any(view.isColumnHidden(c) for c in range(model.columnCount()))


def test_stray_pieces_of_a_territory_are_marked_on_the_map(dock):
    from dock_helpers import cell_fid, set_up_dock

    layer = grid_layer(territories={(c, r): "West" if c < 3 else "East" for c in range(6) for r in range(4)})
    set_up_dock(dock, layer)
    dock.refresh_suggestions()
    assert dock.pieces_highlight.fids == []
    dock.service.set_active("East")
    middle = [cell_fid(layer, c, r) for c in (1, 2) for r in range(4)]
    dock.paint(middle + [cell_fid(layer, 0, 1), cell_fid(layer, 0, 2)])
    dock.refresh_suggestions()
    marked = dock.pieces_highlight.fids
    assert len(marked) == 1 and marked[0] in (cell_fid(layer, 0, 0), cell_fid(layer, 0, 3))
    dock.service.set_active("West")
    dock.paint([cell_fid(layer, 0, 1), cell_fid(layer, 0, 2)])
    dock.refresh_suggestions()
    assert dock.pieces_highlight.fids == []


def test_suggestions_name_units_by_the_unit_name_field(dock, nc_layer):
    from dock_helpers import set_up_dock
    from territory_planner.compat import STRING, make_field

    assert nc_layer.dataProvider().addAttributes([make_field("territory", STRING, 20)])
    nc_layer.updateFields()
    index = nc_layer.fields().lookupField("territory")
    nc_layer.dataProvider().changeAttributeValues(
        {f.id(): {index: "West" if f.geometry().centroid().asPoint().x() < -79.5 else "East"}
         for f in nc_layer.getFeatures()})
    QgsProject.instance().addMapLayer(nc_layer)
    dock.setup_form.layer_combo.setLayer(nc_layer)
    name_field = dock.setup_form.unit_name_combo.currentField()
    assert name_field, "a text field naming the counties is picked by itself"
    assert name_field == "name"
    set_up_dock(dock, nc_layer, measures=["births_1974"])
    dock.service.set_active("West")
    dock.refresh_suggestions()
    names = {str(f[name_field]) for f in nc_layer.getFeatures()}
    texts = [dock.suggestions_panel.list.item(i).text() for i in range(dock.suggestions_panel.list.count())]
    assert texts and all(any(f"Move {n} from" in t for n in names) for t in texts)
