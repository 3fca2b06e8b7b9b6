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


def drawn_territories(accounts) -> dict:
    """Account id → the territory its style's expression gives it (what the map draws it as)."""
    from qgis.core import QgsExpression, QgsExpressionContext, QgsExpressionContextUtils

    expression = QgsExpression(accounts.renderer().classAttribute())
    context = QgsExpressionContext(QgsExpressionContextUtils.globalProjectLayerScopes(accounts))
    found = {}
    for feature in accounts.getFeatures():
        context.setFeature(feature)
        found[feature["id"]] = expression.evaluate(context)
    return found


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



def test_an_override_save_whose_log_cannot_be_written_is_held_back_with_the_edit_kept(dock, tmp_path):
    """The units are a shapefile, so the change log is a GeoPackage beside it; something else stands where
    it would go. Saving a painted override then writes nothing to the accounts and keeps the override in
    the edit buffer, and the message names the log; once the place is free one save writes both."""
    from osgeo import gdal
    from qgis.core import Qgis, QgsVectorLayer
    from qgis.PyQt.QtCore import QCoreApplication
    from territory_planner.layers.change_log import TABLE

    gdal.VectorTranslate(str(tmp_path / "units.shp"), str(write_grid(tmp_path / "units.gpkg")))
    units = QgsVectorLayer(str(tmp_path / "units.shp"), "units", "ogr")
    accounts = layer_of(write_accounts(tmp_path / "accounts.gpkg", ACCOUNTS), "accounts")
    assert units.isValid()
    QgsProject.instance().addMapLayers([units, accounts])
    set_up(dock, units, accounts)
    messages = []
    dock.service.message.connect(lambda text, level: messages.append((text, level)))
    show_layer(dock.canvas, units)
    select_row(dock, "T3")
    click(dock.paint_toolbar.account_tool, dock.canvas, *cell_point(1.5, 1.5))  # account A11, in T1
    fid = {f["id"]: f.id() for f in accounts.getFeatures()}["A11"]
    assert accounts.getFeature(fid)["override"] == "T3"
    sidecar = tmp_path / f"units_{TABLE}.gpkg"
    sidecar.mkdir()
    accounts.commitChanges()
    QCoreApplication.processEvents()  # the held-back edit comes back into the buffer
    on_disk = QgsVectorLayer(f"{tmp_path / 'accounts.gpkg'}|layername=accounts", "saved", "ogr")
    assert not on_disk.getFeature(fid)["override"], "nothing reached the accounts"
    assert accounts.isModified() and accounts.getFeature(fid)["override"] == "T3", "the override is kept"
    assert visits(dock)["T3"] == 50.0
    assert any(level == Qgis.MessageLevel.Critical and text.startswith("Nothing was saved") and str(sidecar) in text
               for text, level in messages), messages
    sidecar.rmdir()
    assert accounts.commitChanges(), accounts.commitErrors()
    on_disk = QgsVectorLayer(f"{tmp_path / 'accounts.gpkg'}|layername=accounts", "saved", "ogr")
    assert on_disk.getFeature(fid)["override"] == "T3"
    rows = [(r["unit"], r["action"], r["from_territory"], r["to_territory"]) for r in dock.service.change_log()]
    assert rows == [("A11", "override", "T1", "T3")], "logged once"

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
    found = drawn_territories(accounts)
    assert found["KEY"] == "T2" and found["A00"] == "T1" and found["A33"] == "T4", found


def test_removing_the_units_layer_while_the_map_draws_leaves_the_accounts_coloured_by_their_overrides(
        dock, layers, qgis_canvas):
    """The accounts' colours ask the units layer which unit an account stands in; once the units layer is
    removed (here while the map is drawing) they no longer do: overridden accounts keep their territory's
    colour, the others are drawn as unassigned, and QGIS goes on drawing."""
    from qgis.PyQt.QtWidgets import QApplication

    units, accounts = layers
    set_up(dock, units, accounts)
    colours = {name: dock.service.colours.of(name) for name in ("T1", "T2", "T3", "T4")}
    qgis_canvas.setLayers([accounts, units])
    qgis_canvas.setExtent(units.extent())
    qgis_canvas.refreshAllLayers()
    QApplication.processEvents()  # the drawing threads start
    QgsProject.instance().removeMapLayer(units.id())
    assert not dock.service.is_bound
    renderer = accounts.renderer()
    assert renderer.type() == "categorizedSymbol"
    assert "overlay_within" not in renderer.classAttribute() and '"override"' in renderer.classAttribute()
    assert {c.value(): c.symbol().color().name() for c in renderer.categories() if c.value() is not None} == colours
    found = drawn_territories(accounts)
    assert found["KEY"] == "T2" and found["A00"] is None, found
    qgis_canvas.setLayers([accounts])
    qgis_canvas.refreshAllLayers()
    QApplication.processEvents()
    qgis_canvas.waitWhileRendering()
    assert accounts.isValid()


def test_reopening_takes_the_accounts_units_found_before(dock, layers, qgis_iface, monkeypatch):
    units, accounts = layers
    set_up(dock, units, accounts)
    before = visits(dock)
    from territory_planner.layers import accounts as account_layers
    from territory_planner.ui.plan_controller import PlanController

    monkeypatch.setattr(account_layers, "units_at", lambda *args: pytest.fail("the accounts were located again"))
    # the new panel restores the plan as it is made: its reading runs at once here
    monkeypatch.setattr(PlanController, "_run_in_task_manager", lambda self, task: run_synchronously(task))
    again = TerritoryDock(qgis_iface)
    try:
        assert again.controller.accounts.ready
        assert visits(again) == before
    finally:
        again.unload()
        again.deleteLater()


def test_reopening_reads_no_point_when_every_home_is_remembered(qgis_iface, qgis_new_project, tmp_path,
                                                                 monkeypatch):
    """An account outside every unit is remembered as such; reopening reads neither the accounts' points
    nor the units' shapes."""
    from territory_planner.layers import accounts as account_layers
    from territory_planner.layers.plan_reader import GeoPackageColumns

    units = layer_of(write_grid(tmp_path / "units.gpkg"), "units")
    path = write_accounts(tmp_path / "accounts.gpkg", ACCOUNTS + [Account("FAR", (9.0, 9.0), 5.0)])
    accounts = layer_of(path, "accounts")
    QgsProject.instance().addMapLayers([units, accounts])

    from territory_planner.ui.plan_controller import PlanController

    # a new panel restores the plan from the project as it is made: its tasks run at once here
    monkeypatch.setattr(PlanController, "_run_in_task_manager", lambda self, task: run_synchronously(task))

    def panel():
        return TerritoryDock(qgis_iface)

    first = TerritoryDock(qgis_iface)
    first.controller.run_task = run_synchronously
    set_up(first, units, accounts)
    expected = visits(first)
    first.unload()
    first.deleteLater()
    real_read = GeoPackageColumns.read
    asked: list = []
    # the reads of points (the units' attributes come through here too, never with points)
    monkeypatch.setattr(GeoPackageColumns, "read", lambda self, points=True: asked.append(
        points and bool(self.geometry_column)) or real_read(self, points))
    monkeypatch.setattr(account_layers, "units_at", lambda *args: pytest.fail("the accounts were located again"))
    again = panel()
    try:
        assert again.controller.accounts.ready and visits(again) == expected
        assert True not in asked, "the points are not read"
        assert again.controller.accounts.home[-1] == -1, "FAR stands in no unit, as remembered"
    finally:
        again.unload()
        again.deleteLater()


def test_build_preview_and_table_count_overrides_as_the_toolbox_does(dock, layers, run_algorithm, tmp_path):
    """The key account (40 visits, standing in T1's U00, kept by T2) counts for T2 in the panel's
    Build, in its preview before and after, and in the table, as Statistics counts it."""
    units, accounts = layers
    set_up(dock, units, accounts)
    dock.setup_form.tolerance_spin.setValue(5.0)
    dock.territory_toolbar.count_spin.setValue(4)
    dock.territory_toolbar.build_action.trigger()
    preview = dock.service.preview
    assert preview is not None and preview.territories == ["T1", "T2", "T3", "T4"]
    assert preview.before[:, 0] == pytest.approx([-0.2, 0.6, -0.2, -0.2]), "before: T2 carries the key account"
    after = {name: 40.0 if name == "T2" else 0.0 for name in preview.territories}  # the key account stays
    territory_of = dict(zip(preview.units.tolist(), preview.names))
    for i in range(len(dock.service.fids)):
        after[territory_of[i]] += 10.0
    assert preview.after[:, 0] == pytest.approx([(after[n] - 50.0) / 50.0 for n in preview.territories])
    assert preview.worst_after <= 0.05 + 1e-9, "the build counted the key account for T2"
    assert preview.total_workload[0] == pytest.approx(200.0)
    dock.apply_preview()
    assert visits(dock) == pytest.approx(after)
    assert units.commitChanges()

    shown = {name: row for name, row in table_numbers(dock).items() if name != "Unassigned"}
    statistics = run_algorithm("territory:territorystatistics", {
        "INPUT": units, "TERRITORY_FIELD": "territory", "BALANCE_FIELDS": ["visits"], "TOLERANCE": 5.0,
        "ACCOUNTS": accounts, "ACCOUNT_ID_FIELD": "id", "OVERRIDE_FIELD": "override", "OUTPUT": "memory:",
        "OUTPUT_HTML": str(tmp_path / "report.html")})
    figures = {f["territory"]: f for f in statistics["OUTPUT"].getFeatures()}
    assert set(figures) == set(shown)
    for name, row in shown.items():
        assert row["visits"] == pytest.approx(figures[name]["visits"]), name
        assert 100.0 * dock.service.ledger.figures_of(name)["deviation"][0] == pytest.approx(
            figures[name]["visits_dev"], abs=1e-3), name
        assert dock.service.ledger.figures_of(name)["targets"][0] == pytest.approx(figures[name]["visits_tgt"])


def test_an_override_to_a_territory_a_build_dropped_counts_at_its_unit(dock, layers):
    units, accounts = layers
    set_up(dock, units, accounts)
    dock.territory_toolbar.count_spin.setValue(1)  # the plan keeps T1 alone: the key account's T2 is gone
    dock.territory_toolbar.build_action.trigger()
    dock.apply_preview()
    assert dock.service.territory_names == ["T1"]
    assert visits(dock) == {"T1": 200.0}, "the key account counts at its unit, as the toolbox counts it"
    units.undoStack().undo()
    assert visits(dock) == {"T1": 40.0, "T2": 80.0, "T3": 40.0, "T4": 40.0}, "and for T2 again once it is back"


def test_the_panels_packets_take_its_accounts(dock, layers):
    units, accounts = layers
    set_up(dock, units, accounts)
    parameters = dock.controller.packet_parameters()
    assert (parameters["ACCOUNTS"], parameters["ACCOUNT_ID_FIELD"], parameters["OVERRIDE_FIELD"]) == (
        accounts, "id", "override")
    assert parameters["BALANCE_FIELDS"] == ["visits"]


def test_the_feedback_view_judges_and_applies_account_requests_through_the_accounts_layer(dock, layers,
                                                                                         run_algorithm, tmp_path):
    import json
    import re

    from feedback_helpers import PAGES, write_feedback

    units, accounts = layers
    set_up(dock, units, accounts)
    made = run_algorithm(PAGES, {"INPUT": units, "TERRITORY_FIELD": "territory", "BALANCE_FIELDS": ["visits"],
                                 "UNIT_ID_FIELD": "uid", "ACCOUNTS": accounts, "ACCOUNT_ID_FIELD": "id",
                                 "OVERRIDE_FIELD": "override", "OUTPUT_FOLDER": str(tmp_path / "pages")})
    page = open(made["PAGES"][0], encoding="utf-8").read()
    plan_id = json.loads(re.search(r'id="page-data">(.*?)</script>', page).group(1))["plan_id"]
    folder = tmp_path / "feedback"
    folder.mkdir()
    write_feedback(folder / "feedback_T2.csv", [
        {"territory": "T2", "unit": "A02", "unit_name": "A02", "kind": "account", "action": "drop",
         "reason": "Not on my route", "submitted_by": "Rep Two", "submitted_at": "2026-12-01T09:00:00Z",
         "plan_id": plan_id}])
    write_feedback(folder / "feedback_T4.csv", [
        {"territory": "T4", "unit": "U13", "kind": "unit", "action": "add", "reason": "Next door",
         "submitted_by": "Rep Four", "submitted_at": "2026-12-01T10:00:00Z", "plan_id": plan_id}])
    panel = dock.feedback_panel
    assert panel.load(str(folder)) == 2
    rows = panel.rows()
    assert [(r[2], r[3]) for r in rows] == [("A02", "needs review"), ("U13", "needs review")]
    assert "T1" in rows[0][6] and "the rule would accept it" in rows[0][5], rows[0]

    panel.select(0)
    assert [f["id"] for f in accounts.selectedFeatures()] == ["A02"] and dock.service.preview is None
    panel.accept_button.click()
    panel.select(1)
    panel.accept_button.click()
    units_depth, accounts_depth = units.undoStack().index(), accounts.undoStack().index()
    assert panel.apply() == 2
    assert (units.undoStack().index(), accounts.undoStack().index()) == (units_depth + 1, accounts_depth + 1)
    assert next(f for f in accounts.getFeatures() if f["id"] == "A02")["override"] == "T1"
    assert visits(dock) == {"T1": 50.0, "T2": 60.0, "T3": 40.0, "T4": 50.0}
    assert [r[3] for r in panel.rows()] == ["accepted (applied)", "accepted (applied)"]
    accounts.undoStack().undo()
    assert visits(dock) == {"T1": 40.0, "T2": 70.0, "T3": 40.0, "T4": 50.0}
    assert panel.review.applied(panel.review.verdicts[0]) is False
    accounts.undoStack().redo()
    assert accounts.commitChanges()
    logged = [row for row in dock.service.change_log() if row["action"] == "feedback" and row["unit"] == "A02"]
    assert len(logged) == 1 and (logged[0]["from_territory"], logged[0]["to_territory"]) == ("T2", "T1")
    assert "Rep Two" in logged[0]["note"] and "Not on my route" in logged[0]["note"]
