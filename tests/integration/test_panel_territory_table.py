"""The panel reads and writes the territory table: names, reps, colours and locks by code; a rename
changes the name in the table, never the code on the units."""

from __future__ import annotations

from dock_helpers import set_up_dock, table
from qgis.core import QgsProject, QgsVectorLayer


def test_the_panel_shows_names_and_renames_in_the_table(dock, run_algorithm, georgia_layer, tmp_path):
    built = run_algorithm("territory:buildterritories", {
        "INPUT": georgia_layer, "TERRITORY_COUNT": 6, "BALANCE_FIELDS": ["population"], "TOLERANCE": 10,
        "RANDOM_SEED": 1, "OUTPUT": str(tmp_path / "plan.gpkg"), "OUTPUT_TERRITORIES": str(tmp_path / "table.gpkg")})
    units = QgsVectorLayer(built["OUTPUT"], "plan", "ogr")
    territories = QgsVectorLayer(built["OUTPUT_TERRITORIES"], "territories", "ogr")
    assert units.isValid() and territories.isValid()
    QgsProject.instance().addMapLayers([units, territories])
    code = sorted({f["territory"] for f in units.getFeatures()})[0]
    row = next(f for f in territories.getFeatures() if f["territory"] == code)
    # a name and a lock given in the table
    assert territories.startEditing()
    territories.changeAttributeValue(row.id(), territories.fields().lookupField("name"), "Atlanta Metro")
    assert territories.commitChanges()

    set_up_dock(dock, units, measures=["population"], tolerance=10.0)
    dock.setup_form.table_combo.setLayer(territories)
    service = dock.service
    assert "Atlanta Metro" in table(dock), "the table shows the territory's name"
    colours = {f["territory"]: f["colour"] for f in territories.getFeatures()}
    assert all(service.colours.of(c) == colours[c] for c in service.territory_names)

    other = sorted(service.territory_names)[1]
    codes_before = {f.id(): f["territory"] for f in units.getFeatures()}
    assert dock.controller.territory_editor.rename(other, "Savannah Coast")
    assert {f.id(): f["territory"] for f in units.getFeatures()} == codes_before, "codes never change"
    assert {f["territory"]: f["name"] for f in territories.getFeatures()}[other] == "Savannah Coast"
    assert "Savannah Coast" in table(dock)
    assert territories.isEditable(), "through the table's edit buffer: nothing is saved behind the user's back"
