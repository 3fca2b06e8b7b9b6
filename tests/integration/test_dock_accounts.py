"""Accounts in the territory panel, driven as a user drives it: the setup names the accounts layer,
its id and override fields; the table counts every account where it is aligned (an override for its
territory); painting accounts on the map overrides them to the active territory and Reset override
clears it, each one undoable edit of the accounts layer; the change log records both; the overrides
view lists the active territory's overrides both ways; accounts are drawn in their territory's colour."""

from __future__ import annotations

import pytest
from accounts_helpers import Account, cell_point, layer_of, write_accounts, write_grid
from dock_helpers import click, run_synchronously, select_row, show_layer, table_numbers
from qgis.core import QgsProject
from territory_planner.ui.dock import TerritoryDock


@pytest.fixture
def dock(qgis_iface, qgis_new_project):
    qgis_iface.messageBar().clear_messages()
    panel = TerritoryDock(qgis_iface)
    panel.controller.run_task = run_synchronously
    yield panel
    panel.unload()
    panel.deleteLater()


ACCOUNTS = [Account(f"A{row}{col}", (row + 0.5, col + 0.5), 10.0) for row in range(4) for col in range(4)] + [
    Account("KEY", (0.25, 0.25), 40.0, override="T2", name="Key hospital")]


@pytest.fixture
def layers(tmp_path):
    units = layer_of(write_grid(tmp_path / "units.gpkg"), "units")
    accounts = layer_of(write_accounts(tmp_path / "accounts.gpkg", ACCOUNTS), "accounts")
    QgsProject.instance().addMapLayers([units, accounts])
    return units, accounts


def set_up(dock, units, accounts) -> None:
    form = dock.setup_form
    form.layer_combo.setLayer(units)
    form.accounts_combo.setLayer(accounts)
    form.account_id_combo.setField("id")
    form.override_combo.setField("override")
    form.measures_combo.deselectAllOptions()
    form.measures_combo.setCheckedItems(["visits"])
    form.field_combo.setField("territory")


def visits(dock) -> dict:
    return {name: row["visits"] for name, row in table_numbers(dock).items() if name != "Unassigned"}


def test_the_table_counts_accounts_where_they_are_aligned(dock, layers):
    units, accounts = layers
    set_up(dock, units, accounts)
    assert dock.controller.accounts.ready
    assert dock.service.measures == ["visits"] and dock.service.own_measures == []
    assert visits(dock) == {"T1": 40.0, "T2": 80.0, "T3": 40.0, "T4": 40.0}
    for name in ("territoryAccountsCombo", "territoryAccountIdField", "territoryOverrideField"):
        assert dock.findChild(type(dock.setup_form.accounts_combo) if name == "territoryAccountsCombo"
                              else type(dock.setup_form.account_id_combo), name) is not None
    # the plan remembers its accounts in the project
    from territory_planner.ui.settings import PlanSettings

    stored = PlanSettings.read(QgsProject.instance())
    assert (stored.accounts_layer, stored.account_id_field, stored.override_field) == (accounts.id(), "id", "override")
    # a unit moves with its accounts; the overridden key account stays with T2
    dock.service.assign([units.getFeatures().__next__().id()], "T4")  # unit U00 (T1) with A00 and KEY
    assert visits(dock) == {"T1": 30.0, "T2": 80.0, "T3": 40.0, "T4": 50.0}


def test_painting_and_resetting_overrides_are_undoable_edits_logged_as_overrides(dock, layers, qgis_iface):
    units, accounts = layers
    set_up(dock, units, accounts)
    canvas = dock.canvas
    show_layer(canvas, units)
    select_row(dock, "T3")
    tool = dock.paint_toolbar.account_tool
    x, y = cell_point(1.5, 1.5)  # account A11, in T1
    click(tool, canvas, x, y)
    assert visits(dock) == {"T1": 30.0, "T2": 80.0, "T3": 50.0, "T4": 40.0}
    fid_of = {f["id"]: f.id() for f in accounts.getFeatures()}
    assert accounts.getFeature(fid_of["A11"])["override"] == "T3"
    assert accounts.undoStack().count() == 1, "one edit command on the accounts layer"
    dock.undo()
    assert visits(dock) == {"T1": 40.0, "T2": 80.0, "T3": 40.0, "T4": 40.0}
    dock.redo()
    assert visits(dock)["T3"] == 50.0

    accounts.selectByIds([fid_of["KEY"]])
    assert dock.reset_override() == 1
    assert visits(dock) == {"T1": 70.0, "T2": 40.0, "T3": 50.0, "T4": 40.0}
    assert accounts.undoStack().count() == 2
    assert accounts.commitChanges()
    log = dock.service.change_log()
    rows = {(r["unit"], r["action"], r["from_territory"], r["to_territory"], r["visits"]) for r in log}
    # the log names an account by its name, else by its id
    assert rows == {("A11", "override", "T1", "T3", 10.0), ("Key hospital", "override", "T2", "T1", 40.0)}


def test_the_overrides_view_lists_the_active_territorys_overrides_both_ways(dock, layers):
    units, accounts = layers
    set_up(dock, units, accounts)
    panel = dock.findChild(type(dock.overrides_panel), "territoryOverrides")
    select_row(dock, "T2")
    dock.refresh_suggestions()
    groups = [panel.topLevelItem(i) for i in range(panel.topLevelItemCount())]
    assert [g.text(0) for g in groups] == ["Kept from outside its units (1)", "In its units, served by others (0)"]
    key = groups[0].child(0)
    assert [key.text(0), key.text(1), key.text(2)] == ["KEY", "T1", "40.0"]
    panel.itemDoubleClicked.emit(key, 0)
    assert [f["id"] for f in accounts.selectedFeatures()] == ["KEY"]
    select_row(dock, "T1")
    dock.refresh_suggestions()
    assert panel.topLevelItem(1).text(0) == "In its units, served by others (1)"


def test_accounts_are_drawn_in_their_territorys_colour_with_overrides_ringed(dock, layers):
    units, accounts = layers
    set_up(dock, units, accounts)
    renderer = accounts.renderer()
    assert renderer.type() == "categorizedSymbol"
    assert "overlay_within" in renderer.classAttribute() and '"override"' in renderer.classAttribute()
    categories = renderer.categories()
    colours = {c.value(): c.symbol().color().name() for c in categories if c.value() is not None}
    assert colours == {name: dock.service.colours.of(name) for name in ("T1", "T2", "T3", "T4")}
    # the map draws: the expression gives each account its territory
    from qgis.core import QgsExpression, QgsExpressionContext, QgsExpressionContextUtils

    expression = QgsExpression(renderer.classAttribute())
    context = QgsExpressionContext(QgsExpressionContextUtils.globalProjectLayerScopes(accounts))
    found = {}
    for feature in accounts.getFeatures():
        context.setFeature(feature)
        found[feature["id"]] = expression.evaluate(context)
    assert found["KEY"] == "T2" and found["A00"] == "T1" and found["A33"] == "T4", found


def test_reopening_takes_the_accounts_units_found_before(dock, layers, qgis_iface, monkeypatch):
    units, accounts = layers
    set_up(dock, units, accounts)
    before = visits(dock)
    from territory_planner.layers import accounts as account_layers

    monkeypatch.setattr(account_layers, "units_at", lambda *args: pytest.fail("the accounts were located again"))
    again = TerritoryDock(qgis_iface)
    again.controller.run_task = run_synchronously
    try:
        again.controller.restore_from_project()
        assert again.controller.accounts.ready
        assert visits(again) == before
    finally:
        again.unload()
        again.deleteLater()
