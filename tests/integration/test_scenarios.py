"""Scenarios in the panel: a second alignment as a new field, painted on its own, compared side by
side with the first; rename, delete and the baseline; kept in the project."""

from __future__ import annotations

from dock_helpers import cell_fid, grid_layer, set_up_dock, table
from qgis.core import QgsProject
from territory_planner.ui.settings import PlanSettings


def west_east(columns=6, rows=4):
    return {(c, r): ("West" if c < 3 else "East") for c in range(columns) for r in range(rows)}


def scenario_names(dock) -> list[str]:
    """The scenarios the panel offers, in its order."""
    combo = dock.setup_form.scenario_combo
    return [combo.itemText(i) for i in range(combo.count())]


def values(layer, field):
    return {f.id(): f[field] for f in layer.getFeatures()}


def test_second_scenario_is_painted_on_its_own_and_compared(dock):
    layer = grid_layer(territories=west_east())
    set_up_dock(dock, layer, measures=["accounts"])
    assert dock.setup_form.scenario_combo.count() == 1 and dock.setup_form.scenario_combo.currentText() == "territory"

    assert dock.controller.new_scenario("plan_b")
    assert dock.service.field_name == "plan_b", "the panel switches to the new scenario"
    assert scenario_names(dock) == ["territory", "plan_b"]
    assert values(layer, "plan_b") == values(layer, "territory"), "a copy of the current alignment"

    # balance plan B by hand: column 3 (accounts 4 each) moves West; accounts West 24 → 40, East 60 → 44
    dock.service.set_active("West")
    moved = [cell_fid(layer, 3, r) for r in range(4)]
    assert dock.paint(moved) == 4
    assert {values(layer, "plan_b")[f] for f in moved} == {"West"}
    assert {values(layer, "territory")[f] for f in moved} == {"East"}, "plan A is untouched"
    assert table(dock)["West"]["Units"] == 16

    dialog = dock.compare_scenarios()
    cells = dialog.cells()
    assert list(cells) == ["territory (baseline)", "plan_b"]
    assert cells["territory (baseline)"]["Worst accounts dev. %"] == "42.9"   # 24 vs 42
    assert cells["plan_b"]["Worst accounts dev. %"] == "4.8"                  # 40 vs 42
    assert cells["plan_b"]["Units changed"] == "4"
    assert cells["plan_b"]["accounts changed %"] == f"{100 * 16 / 84:.1f}"
    assert cells["plan_b"]["In pieces"] == "0"
    dialog.close()

    dock.controller.promote_scenario()
    assert dock.controller.scenarios.baseline == "plan_b"
    assert list(dock.compare_scenarios().cells()) == ["plan_b (baseline)", "territory"]

    assert dock.controller.switch_scenario("territory")
    assert table(dock)["West"]["Units"] == 12

    stored = PlanSettings.read(QgsProject.instance())
    assert stored.scenarios == ["territory", "plan_b"] and stored.baseline == "plan_b"


def test_rename_and_delete_go_through_the_edit_buffer(dock):
    layer = grid_layer(territories=west_east())
    set_up_dock(dock, layer, measures=["accounts"])
    assert dock.controller.new_scenario("draft")
    assert dock.controller.rename_scenario("draft_2")
    assert dock.service.field_name == "draft_2"
    assert layer.fields().lookupField("draft") < 0 and layer.fields().lookupField("draft_2") >= 0
    assert dock.controller.scenarios.names() == ["territory", "draft_2"]
    assert dock.controller.delete_scenario("draft_2")
    assert dock.service.field_name == "territory"
    assert layer.fields().lookupField("draft_2") < 0
    assert scenario_names(dock) == ["territory"]
    # the only scenario stays
    assert not dock.controller.delete_scenario("territory")
    # all of it was edits in the buffer: rolling back restores the layer's fields
    assert layer.rollBack()
    assert layer.fields().names() == ["territory", "accounts", "potential", "rep", "locked"]


def test_a_segment_scenario_covers_only_its_units(dock):
    layer = grid_layer(territories=west_east())
    set_up_dock(dock, layer, measures=["accounts"])
    assert dock.controller.new_scenario("healthcare")
    # the segment: the units of rep0 (the three western columns)
    assert dock.controller.set_scenario_filter("\"rep\" = 'rep0'")
    service = dock.service
    assert service.field_name == "healthcare" and len(service.fids) == 12
    rows = table(dock)
    assert rows["West"]["Units"] == 12 and rows["East"]["Units"] == 0
    assert service.adjacency is not None and service.adjacency.shape == (12, 12)
    # painting a unit outside the segment changes nothing
    assert dock.paint([cell_fid(layer, 5, 0)]) == 0
    # build two territories inside the segment only
    dock.territory_toolbar.count_spin.setValue(2)
    dock.build()
    assert dock.apply_preview() > 0
    built = values(layer, "healthcare")
    inside = {cell_fid(layer, c, r) for c in range(3) for r in range(4)}
    assert len({built[f] for f in inside}) == 2, "two territories within the segment"
    assert all(built[f] == "East" for f in set(built) - inside), "units outside the segment are untouched"
    assert not dock.controller.set_scenario_filter("\"rep\" = = 'x'")
    assert PlanSettings.read(QgsProject.instance()).filters == {"healthcare": "\"rep\" = 'rep0'"}
    assert dock.controller.set_scenario_filter("")
    assert len(service.fids) == 24


def test_packets_from_the_panel_show_the_changes_since_the_baseline(dock, run_algorithm, tmp_path):
    layer = grid_layer(territories=west_east())
    set_up_dock(dock, layer, measures=["accounts"])
    assert dock.controller.new_scenario("plan_b")
    dock.service.set_active("West")
    assert dock.paint([cell_fid(layer, 3, r) for r in range(4)]) == 4
    assert layer.commitChanges()
    parameters = dock.controller.packet_parameters()
    assert parameters["TERRITORY_FIELD"] == "plan_b" and parameters["FIELD_BEFORE"] == "territory"
    assert parameters["BALANCE_FIELDS"] == ["accounts"]
    result = run_algorithm("territory:territorypackets", {**parameters, "OUTPUT_FOLDER": str(tmp_path)})
    assert result["PACKETS"] == 2
    written = sorted(p.name for p in tmp_path.glob("*.pdf"))
    assert written == ["overview.pdf", "territory_East.pdf", "territory_West.pdf"]
