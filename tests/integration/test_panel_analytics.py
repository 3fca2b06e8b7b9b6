"""Issue 24 in the panel: the workload index typed in the setup (territoryIndexWeights) is balanced
and shown like any measure (table, tolerances, preview), goals from the territory table show in the
table, and the map's views (territoryThematic) colour territories over/under target or by penetration."""

from __future__ import annotations

import pytest
from dock_helpers import cell_fid, grid_layer, set_up_dock, table, table_numbers
from qgis.core import Qgis, QgsProject, QgsVectorLayer
from territory_planner.compat import DOUBLE, make_field
from territory_planner.layers.thematic import DIVERGING


def west_east(columns=6, rows=4):
    return {(c, r): ("West" if c < 3 else "East") for c in range(columns) for r in range(rows)}


def type_index(dock, text: str) -> None:
    """Type the index weights and leave the field, as a user does."""
    dock.setup_form.index_edit.setText(text)
    dock.setup_form.index_edit.editingFinished.emit()


def by_hand(layer, weights: dict, count: int) -> dict:
    """Each territory's index: 1,000 × count × Σ weight × the field's share of its total."""
    features = list(layer.getFeatures())
    total = sum(weights.values())
    totals = {f: sum(float(x[f]) for x in features) for f in weights}
    out: dict = {}
    for x in features:
        value = 1000 * count * sum(w / total * float(x[f]) / totals[f] for f, w in weights.items())
        out[x["territory"]] = out.get(x["territory"], 0.0) + value
    return out


def test_the_index_is_balanced_and_shown_like_a_measure(dock):
    layer = grid_layer(territories=west_east())
    set_up_dock(dock, layer, measures=["accounts"], tolerance=5.0)
    type_index(dock, "accounts:0.5,potential:0.5")
    service = dock.service
    assert service.measures == ["accounts", "index"]
    numbers = table_numbers(dock)
    expected = by_hand(layer, {"accounts": 0.5, "potential": 0.5}, 2)
    for name in ("West", "East"):
        assert numbers[name]["index"] == pytest.approx(expected[name])
        assert numbers[name]["index dev. %"] == pytest.approx((expected[name] - 1000) / 1000)
    assert "index" in [dock.setup_form.tolerances_table.item(r, 0).text()
                       for r in range(dock.setup_form.tolerances_table.rowCount())]
    # a new territory: the average territory still scores 1,000
    assert dock.controller.territory_editor.new("North")
    assert sum(table_numbers(dock)[n]["index"] for n in ("West", "East", "North")) == pytest.approx(3000)
    # the index is saved with the plan
    from territory_planner.ui.settings import PlanSettings

    service.plan.write(QgsProject.instance())
    assert PlanSettings.read(QgsProject.instance()).index_weights == "accounts:0.5,potential:0.5"


def test_an_edit_of_an_index_field_reads_the_plan_again(dock):
    layer = grid_layer(territories=west_east())
    set_up_dock(dock, layer, measures=["accounts"])
    type_index(dock, "potential:1")
    assert layer.startEditing()
    fid = cell_fid(layer, 0, 0)
    layer.changeAttributeValue(fid, layer.fields().lookupField("potential"), 1000.0)
    dock.service.reload()  # the panel reads again at once in the event loop; here by hand
    expected = by_hand(layer, {"potential": 1.0}, 2)
    assert table_numbers(dock)["West"]["index"] == pytest.approx(expected["West"])
    layer.rollBack()


def test_a_bad_index_is_named_and_left_out(dock, qgis_iface):
    layer = grid_layer(territories=west_east())
    set_up_dock(dock, layer, measures=["accounts"])
    type_index(dock, "visits:1")
    warnings = qgis_iface.messageBar().get_messages(Qgis.MessageLevel.Warning)
    assert any("“visits”" in w and "index was left out" in w for w in warnings), warnings
    assert dock.service.measures == ["accounts"]
    assert "index" not in table(dock)["West"]


def test_the_build_of_the_panel_balances_the_index(dock):
    layer = grid_layer(territories=west_east())
    set_up_dock(dock, layer, measures=[], tolerance=10.0)
    type_index(dock, "accounts:0.5,potential:0.5")
    from territory_planner.ui.tasks import engine_job

    job = engine_job(dock.service, "build", 2)
    assert list(job.problem.measure_names) == ["index"]
    assert job.problem.workloads.shape[1] == 1
    dock.territory_toolbar.count_spin.setValue(2)
    dock.territory_toolbar.build_action.trigger()
    preview = dock.service.preview
    assert preview is not None and preview.measures == ["index"]
    assert dock.apply_preview() >= 0
    assert max(abs(v["index dev. %"]) for n, v in table_numbers(dock).items() if n != "Unassigned") <= 0.10 + 1e-9
    # the over/under view: the index against 1,000
    combo = dock.territory_toolbar.thematic_combo
    combo.setCurrentIndex(combo.findData("over_under"))
    labels = [c.label() for c in layer.renderer().categories() if c.value() is not None]
    assert len(labels) == 2 and all(": " in label for label in labels)
    values = [float(label.split(": ")[1].replace(",", "")) for label in labels]
    assert sum(values) == pytest.approx(2000)


def goals_table(run_algorithm, layer) -> QgsVectorLayer:
    result = run_algorithm("territory:setgoals", {"INPUT": layer, "TERRITORY_FIELD": "territory", "TOTAL_GOAL": 1000,
                                                  "BASIS": "potential", "OUTPUT": "memory:"})
    table_layer = result["OUTPUT"]
    QgsProject.instance().addMapLayer(table_layer)
    return table_layer


def test_goals_of_the_territory_table_show_in_the_table(dock, run_algorithm):
    layer = grid_layer(territories=west_east())
    goals = goals_table(run_algorithm, layer)
    set_up_dock(dock, layer)
    assert "Goal" not in table(dock)["West"], "no goals, no column"
    dock.setup_form.table_combo.setLayer(goals)
    rows = table(dock)
    assert rows["West"]["Goal"] == "500" and rows["East"]["Goal"] == "500"
    assert "Goal: 500" in dock.model.index(dock.model.row_of("West"), 0).data(3)  # the tooltip
    assert not dock.table.isColumnHidden(dock.model.column_of("goal")), "the compact table shows goals too"


def category_colours(layer) -> dict:
    return {c.value(): c.symbol().color().name() for c in layer.renderer().categories() if c.value() is not None}


def test_the_map_shows_over_under_target_and_penetration(dock, qgis_iface):
    layer = grid_layer(territories=west_east())
    # sales: the west sells half its potential, the east a tenth
    assert layer.dataProvider().addAttributes([make_field("sales", DOUBLE)])
    layer.updateFields()
    index = layer.fields().lookupField("sales")
    layer.dataProvider().changeAttributeValues(
        {f.id(): {index: f["potential"] * (0.5 if f["territory"] == "West" else 0.1)} for f in layer.getFeatures()})
    set_up_dock(dock, layer, measures=["accounts"], tolerance=5.0)
    territorial = category_colours(layer)
    combo = dock.territory_toolbar.thematic_combo
    assert combo.objectName() == "territoryThematic"

    combo.setCurrentIndex(combo.findData("over_under"))
    colours = category_colours(layer)
    # accounts: West 24 (−33 %), East 60 (+… %): under is blue, over red
    assert colours["West"] in DIVERGING[:3] and colours["East"] in DIVERGING[4:]

    dock.setup_form.sales_combo.setField("sales")
    dock.setup_form.potential_combo.setField("potential")
    combo.setCurrentIndex(combo.findData("penetration"))
    colours = category_colours(layer)
    assert colours["West"] in DIVERGING[4:] and colours["East"] in DIVERGING[:3]
    labels = {c.value(): c.label() for c in layer.renderer().categories()}
    assert labels["West"] == "West: 50.0 %" and labels["East"] == "East: 10.0 %"

    combo.setCurrentIndex(combo.findData("off"))
    assert category_colours(layer) == territorial, "back to the territory colours"
