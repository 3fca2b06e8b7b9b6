"""Territory identity and cartography: codes, the territory table, colours apart on the map."""

from __future__ import annotations

import itertools
import math

import pytest
from qgis.core import QgsProcessingContext, QgsProject, QgsVectorLayer

BUILD = "territory:buildterritories"


def _rgb(text: str) -> tuple[int, int, int]:
    return int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16)


def _layer(value) -> QgsVectorLayer:
    if isinstance(value, QgsVectorLayer):
        return value
    from qgis.core import QgsProcessingUtils

    return QgsProject.instance().mapLayer(value) or QgsProcessingUtils.mapLayerFromString(value, QgsProcessingContext())


@pytest.fixture
def georgia_20(territory_provider, georgia_layer, qgis_new_project):
    import processing

    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    result = processing.runAndLoadResults(BUILD, {
        "INPUT": georgia_layer, "TERRITORY_COUNT": 20, "BALANCE_FIELDS": ["population"], "TOLERANCE": 15,
        "RANDOM_SEED": 1, "OUTPUT": "memory:", "OUTPUT_TERRITORIES": "memory:"}, context=context)
    return {key: QgsProject.instance().mapLayer(result[key]) for key in ("OUTPUT", "OUTPUT_TERRITORIES")}


def test_twenty_territories_neighbours_are_clearly_apart_and_styles_match_the_table(georgia_20):
    table = georgia_20["OUTPUT_TERRITORIES"]
    rows = {f["territory"]: f for f in table.getFeatures()}
    assert len(rows) == 20
    colours = {code: f["colour"] for code, f in rows.items()}
    assert all(len(c) == 7 and c.startswith("#") for c in colours.values())
    touching = 0
    for a, b in itertools.combinations(rows, 2):
        if rows[a].geometry().intersects(rows[b].geometry()):
            touching += 1
            assert math.dist(_rgb(colours[a]), _rgb(colours[b])) >= 60, (a, b, colours[a], colours[b])
    assert touching >= 30  # a real plan: many neighbouring pairs were checked
    for layer in georgia_20.values():
        styled = {c.value(): c.symbol().color().name() for c in layer.renderer().categories() if c.value()}
        assert styled == colours
    # territories draw above the units, with bold outlines and labels
    order = [layer.id() for layer in QgsProject.instance().layerTreeRoot().layerOrder()]
    assert order.index(table.id()) < order.index(georgia_20["OUTPUT"].id())
    assert table.labelsEnabled()
    assert table.renderer().categories()[0].symbol().symbolLayer(0).strokeWidth() >= 0.5


def test_build_after_a_rename_keeps_codes_names_and_colours_by_overlap(run_algorithm, georgia_layer, tmp_path):
    first = run_algorithm(BUILD, {
        "INPUT": georgia_layer, "TERRITORY_COUNT": 8, "BALANCE_FIELDS": ["population"], "TOLERANCE": 10,
        "RANDOM_SEED": 1, "OUTPUT": str(tmp_path / "plan.gpkg"), "OUTPUT_TERRITORIES": str(tmp_path / "table.gpkg")})
    units = QgsVectorLayer(first["OUTPUT"], "units", "ogr")
    table = QgsVectorLayer(first["OUTPUT_TERRITORIES"], "table", "ogr")
    # the sales manager renames the territory holding Fulton (fips 13121) and gives it a rep
    fulton_code = next(f["territory"] for f in units.getFeatures() if f["fips"] == "13121")
    table.startEditing()
    for f in table.getFeatures():
        if f["territory"] == fulton_code:
            table.changeAttributeValue(f.id(), table.fields().lookupField("name"), "Atlanta Metro")
            table.changeAttributeValue(f.id(), table.fields().lookupField("rep"), "J. Smith")
    assert table.commitChanges()
    old_colour = {f["territory"]: f["colour"] for f in table.getFeatures()}

    # Compare the plan before and after the rename: the codes did not change, so no unit changed
    compare = run_algorithm("territory:comparealignments", {
        "INPUT": str(tmp_path / "plan.gpkg"), "FIELD_BEFORE": "territory", "INPUT_AFTER": units,
        "FIELD_AFTER": "territory", "UNIT_ID_FIELD": "fips", "BALANCE_FIELDS": ["population"],
        "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_SUMMARY": "TEMPORARY_OUTPUT",
        "OUTPUT_HTML": str(tmp_path / "compare.html")})
    assert compare["CHANGED_UNITS"] == 0

    # build again with another seed on the existing plan: the Atlanta territory keeps code, name and colour
    second = run_algorithm(BUILD, {
        "INPUT": units, "TERRITORY_COUNT": 8, "BALANCE_FIELDS": ["population"], "TOLERANCE": 10,
        "RANDOM_SEED": 7, "TERRITORIES": table, "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_TERRITORIES": "TEMPORARY_OUTPUT"})
    new_units = _layer(second["OUTPUT"])
    new_table = _layer(second["OUTPUT_TERRITORIES"])
    fulton_now = next(f["territory"] for f in new_units.getFeatures() if f["fips"] == "13121")
    assert fulton_now == fulton_code
    row = next(f for f in new_table.getFeatures() if f["territory"] == fulton_code)
    assert row["name"] == "Atlanta Metro" and row["rep"] == "J. Smith"
    assert row["colour"] == old_colour[fulton_code]
    assert {f["territory"] for f in new_table.getFeatures()} == set(old_colour)


def test_messages_name_units_by_the_unit_name_field(run_algorithm, georgia_layer):
    from qgis.core import QgsProcessingFeedback

    class Recorder(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.text = []

        def pushWarning(self, text):  # noqa: N802 - QGIS API name
            self.text.append(text)
            super().pushWarning(text)

        def pushInfo(self, text):  # noqa: N802 - QGIS API name
            self.text.append(text)
            super().pushInfo(text)

    feedback = Recorder()
    # 12 territories on population+elderly: Fulton alone outweighs a target, so the engine names it
    run_algorithm(BUILD, {
        "INPUT": georgia_layer, "TERRITORY_COUNT": 12, "BALANCE_FIELDS": ["population", "elderly"],
        "TOLERANCE": 5, "UNIT_NAME_FIELD": "fips", "RANDOM_SEED": 1, "OUTPUT": "TEMPORARY_OUTPUT",
        "OUTPUT_TERRITORIES": "TEMPORARY_OUTPUT"}, feedback=feedback)
    named = [t for t in feedback.text if "13121" in t]
    assert named, feedback.text
    assert not any("Feature ids" in t for t in feedback.text)



def test_reports_use_the_table_colours_and_compare_lists_units_gained_and_lost(run_algorithm, georgia_layer,
                                                                                tmp_path):
    built = run_algorithm(BUILD, {
        "INPUT": georgia_layer, "TERRITORY_COUNT": 20, "BALANCE_FIELDS": ["population"], "TOLERANCE": 15,
        "RANDOM_SEED": 2, "OUTPUT": str(tmp_path / "plan.gpkg"), "OUTPUT_TERRITORIES": str(tmp_path / "table.gpkg")})
    units = QgsVectorLayer(built["OUTPUT"], "units", "ogr")
    table = QgsVectorLayer(built["OUTPUT_TERRITORIES"], "table", "ogr")
    colour = {f["territory"]: f["colour"] for f in table.getFeatures()}

    stats = run_algorithm("territory:territorystatistics", {
        "INPUT": units, "TERRITORY_FIELD": "territory", "BALANCE_FIELDS": ["population"], "TERRITORIES": table,
        "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_HTML": str(tmp_path / "stats.html")})
    html = (tmp_path / "stats.html").read_text(encoding="utf-8")
    for code, hex_colour in colour.items():
        assert f'background:{hex_colour}"></span>{code}' in html
    assert {f["territory"]: f["colour"] for f in _layer(stats["OUTPUT"]).getFeatures()} == colour

    # a second alignment: two counties move to a neighbouring territory
    from territory_planner.compat import STRING, make_field

    units.dataProvider().addAttributes([make_field("after", STRING)])
    units.updateFields()
    after_index = units.fields().lookupField("after")
    by_fips = {f["fips"]: f for f in units.getFeatures()}
    moved = {"13121": None, "13135": None}  # Fulton and Gwinnett
    new_values = {f.id(): {after_index: f["territory"]} for f in units.getFeatures()}
    for fips in moved:
        unit = by_fips[fips]
        other = next(f for f in units.getFeatures()
                     if f["territory"] != unit["territory"] and f.geometry().touches(unit.geometry()))
        moved[fips] = (unit["territory"], other["territory"])
        new_values[unit.id()] = {after_index: other["territory"]}
    assert units.dataProvider().changeAttributeValues(new_values)
    compare = run_algorithm("territory:comparealignments", {
        "INPUT": units, "FIELD_BEFORE": "territory", "FIELD_AFTER": "after", "BALANCE_FIELDS": ["population"],
        "TERRITORIES": table, "UNIT_NAME_FIELD": "fips", "OUTPUT": "TEMPORARY_OUTPUT",
        "OUTPUT_SUMMARY": "TEMPORARY_OUTPUT", "OUTPUT_HTML": str(tmp_path / "compare.html")})
    assert compare["CHANGED_UNITS"] == 2
    html = (tmp_path / "compare.html").read_text(encoding="utf-8")
    for fips, (old, new) in moved.items():
        section_new = html[html.index(f'background:{colour[new]}"></span>{new}</h3>'):]
        section_old = html[html.index(f'background:{colour[old]}"></span>{old}</h3>'):]
        assert f"<td>{fips}</td><td>{old}</td>" in section_new.split("<h3>")[0]
        assert f"<td>{fips}</td><td>{new}</td>" in section_old.split("<h3>")[0]


def test_shapefile_territory_tables_keep_readable_names(run_algorithm, georgia_layer, tmp_path):
    result = run_algorithm(BUILD, {
        "INPUT": georgia_layer, "TERRITORY_COUNT": 5, "BALANCE_FIELDS": ["population", "elderly"], "TOLERANCE": 10,
        "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_TERRITORIES": str(tmp_path / "territories.shp")})
    table = QgsVectorLayer(result["OUTPUT_TERRITORIES"], "t", "ogr")
    names = table.fields().names()
    assert all(len(n) <= 10 for n in names)
    assert {"territory", "name", "rep", "colour", "locked", "population", "popula_tgt", "popula_dev",
            "elderl_tgt", "elderl_dev"} <= set(names), names
    assert not any(n.endswith(("_1", "_2")) for n in names)
    assert len({f["colour"] for f in table.getFeatures()}) == 5


def test_rebalance_keeps_the_table_names_reps_and_colours(run_algorithm, georgia_layer):
    built = run_algorithm(BUILD, {
        "INPUT": georgia_layer, "TERRITORY_COUNT": 6, "BALANCE_FIELDS": ["population"], "TOLERANCE": 20,
        "RANDOM_SEED": 1, "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_TERRITORIES": "TEMPORARY_OUTPUT"})
    table = _layer(built["OUTPUT_TERRITORIES"])
    name, rep = table.fields().lookupField("name"), table.fields().lookupField("rep")
    table.dataProvider().changeAttributeValues(
        {f.id(): {name: f"North {f.id()}", rep: f"Rep {f.id()}"} for f in table.getFeatures()})
    wanted = {f["territory"]: (f["name"], f["rep"], f["colour"]) for f in table.getFeatures()}
    result = run_algorithm("territory:rebalanceterritories", {
        "INPUT": _layer(built["OUTPUT"]), "TERRITORY_FIELD": "territory", "BALANCE_FIELDS": ["population"],
        "TOLERANCE": 3, "TERRITORIES": table, "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_TERRITORIES": "TEMPORARY_OUTPUT"})
    rebalanced = _layer(result["OUTPUT_TERRITORIES"])
    got = {f["territory"]: (f["name"], f["rep"], f["colour"]) for f in rebalanced.getFeatures()}
    assert got == wanted


def test_the_panel_shows_the_colours_the_build_output_was_styled_with(georgia_20, qgis_iface):
    from dock_helpers import run_synchronously, set_up_dock
    from qgis.PyQt.QtCore import Qt
    from territory_planner.ui.dock import TerritoryDock

    units, table = georgia_20["OUTPUT"], georgia_20["OUTPUT_TERRITORIES"]
    colours = {f["territory"]: f["colour"] for f in table.getFeatures()}
    dock = TerritoryDock(qgis_iface)
    dock.controller.run_task = run_synchronously
    try:
        set_up_dock(dock, units, measures=["population"])
        assert dock.service.is_bound
        categories = units.renderer().categories()
        assert {c.value(): c.symbol().color().name() for c in categories if c.value()} == colours
        model = dock.table.model()
        for code, colour in colours.items():
            assert dock.service.colours.of(code) == colour
        shown = 0
        for row in range(model.rowCount()):
            name = model.index(row, 0).data(Qt.ItemDataRole.DisplayRole)
            if name in colours:
                assert model.index(row, 0).data(Qt.ItemDataRole.DecorationRole).name() == colours[name]
                shown += 1
        assert shown == len(colours)
    finally:
        dock.unload()
        dock.deleteLater()


def test_the_tables_locked_column_means_what_a_lock_field_means(qgis_app):
    """One meaning of a lock value: 'off' and '0.0' leave a territory free in the table as on a unit."""
    from territory_planner.layers.territory_table import read_territory_table

    table = QgsVectorLayer("None?field=code:string&field=locked:string", "table", "memory")
    values = {"A": "yes", "B": "off", "C": "0.0", "D": "1", "E": None, "F": "no"}
    provider = table.dataProvider()
    from qgis.core import QgsFeature

    for code, locked in values.items():
        feature = QgsFeature(table.fields())
        feature.setAttributes([code, locked])
        provider.addFeature(feature)
    rows = read_territory_table(table, "code")
    assert {code: row.locked for code, row in rows.items()} == {
        "A": True, "B": False, "C": False, "D": True, "E": False, "F": False}
