"""territory:assignaccounts inside real QGIS: every account gets the territory of the unit it stands
in, or its override; the account list and the per-territory summary go to any Processing output
(CSV and XLSX too); bad accounts are refused with a message naming them, and nothing is written."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from accounts_helpers import Account, as_layer, digest, layer_of, rows_by, write_accounts, write_grid
from osgeo import ogr
from qgis.core import QgsFeature, QgsProcessingException, QgsProcessingFeedback, QgsVectorLayer
from territory_planner.compat import STRING, make_field


class RecordingFeedback(QgsProcessingFeedback):
    def __init__(self):
        super().__init__()
        self.warnings: list[str] = []

    def pushWarning(self, text):
        self.warnings.append(text)
        super().pushWarning(text)


def territory_table() -> QgsVectorLayer:
    table = QgsVectorLayer("None", "territories", "memory")
    table.dataProvider().addAttributes([make_field("territory", STRING), make_field("name", STRING),
                                        make_field("rep", STRING)])
    table.updateFields()
    rows = [("T1", "South West", "Ann"), ("T2", "South East", "Bob"), ("T3", "North West", "Cy"),
            ("T4", "North East", "Di"), ("T5", "Spare", None)]
    features = []
    for row in rows:
        feature = QgsFeature(table.fields())
        feature.setAttributes(list(row))
        features.append(feature)
    table.dataProvider().addFeatures(features)
    return table


ACCOUNTS = [
    Account("A1", (0.5, 0.5), 2.0, name="Mercy Hospital"),  # unit U00, T1
    Account("A2", (0.5, 3.5), 3.0),  # unit U03, T2
    Account("A3", (3.5, 0.5), 5.0, override="T2"),  # in T3, kept by T2
    Account("A4", (3.5, 3.5), 7.0, override="T4"),  # in T4, pinned to its own territory
    Account("A5", (9.0, 9.0), 11.0),  # far outside every unit
    Account("A6", (1.0, 0.5), 13.0),  # on the border of U00 and U10 (both T1)
]


@pytest.fixture
def grid(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    return write_grid(folder / "units.gpkg")


def run_assign(run_algorithm, units_path, accounts_path, feedback=None, **extra):
    def text(value):
        return str(value) if isinstance(value, Path) else value

    parameters = {"INPUT": text(units_path), "TERRITORY_FIELD": "territory", "ACCOUNTS": text(accounts_path),
                  "ACCOUNT_ID_FIELD": "id", "ACCOUNT_NAME_FIELD": "name", "OVERRIDE_FIELD": "override",
                  "BALANCE_FIELDS": ["visits"], "OUTPUT": "memory:", "OUTPUT_SUMMARY": "memory:"}
    parameters.update(extra)
    return run_algorithm("territory:assignaccounts", parameters, feedback=feedback)


def test_accounts_take_their_units_territory_unless_overridden(run_algorithm, grid, tmp_path):
    accounts_path = write_accounts(tmp_path / "in" / "accounts.gpkg", ACCOUNTS)
    before = digest(tmp_path / "in")
    feedback = RecordingFeedback()
    result = run_assign(run_algorithm, grid, accounts_path, feedback, TERRITORIES=territory_table())
    out = rows_by(as_layer(result["OUTPUT"]), "id")
    assert {k: (f["territory"], f["source"], f["unit"]) for k, f in out.items()} == {
        "A1": ("T1", "unit", "1"), "A2": ("T2", "unit", "4"), "A3": ("T2", "override", "13"),
        "A4": ("T4", "override", "16"), "A5": (None, "none", None), "A6": ("T1", "unit", out["A6"]["unit"])}
    assert out["A6"]["unit"] in ("1", "5"), "a point on a shared border goes to one of its units"
    assert (out["A3"]["territory_name"], out["A3"]["rep"]) == ("South East", "Bob")
    assert out["A1"]["name"] == "Mercy Hospital", "the accounts' own fields are kept"
    assert any("A5" in w and "no unit" in w for w in feedback.warnings), feedback.warnings

    summary = rows_by(as_layer(result["OUTPUT_SUMMARY"]), "territory")
    figures = {k: (f["name"], f["rep"], f["accounts"], f["overrides_in"], f["overrides_out"], f["visits"])
               for k, f in summary.items()}
    assert figures == {"T1": ("South West", "Ann", 2, 0, 0, 15.0), "T2": ("South East", "Bob", 2, 1, 0, 8.0),
                       "T3": ("North West", "Cy", 0, 0, 1, 0.0), "T4": ("North East", "Di", 1, 0, 0, 7.0),
                       "T5": ("Spare", None, 0, 0, 0, 0.0)}
    assert digest(tmp_path / "in") == before, "inputs are never modified"


def test_accounts_in_another_crs_are_transformed(run_algorithm, grid, tmp_path):
    accounts_path = write_accounts(tmp_path / "in" / "accounts.gpkg", ACCOUNTS[:4], epsg=4326)
    out = rows_by(as_layer(run_assign(run_algorithm, grid, accounts_path)["OUTPUT"]), "id")
    assert {k: f["unit"] for k, f in out.items()} == {"A1": "1", "A2": "4", "A3": "13", "A4": "16"}


def test_a_table_of_accounts_finds_units_by_id(run_algorithm, grid, tmp_path):
    accounts = [Account(101, None, 1.0, unit="U00"), Account(102, None, 2.0, unit="U33"),
                Account(103, None, 4.0, unit="U99"), Account(104, None, 8.0, unit="U12", override="T1")]
    accounts_path = write_accounts(tmp_path / "in" / "accounts.gpkg", accounts, epsg=None, id_kind=ogr.OFTInteger)
    feedback = RecordingFeedback()
    result = run_assign(run_algorithm, grid, accounts_path, feedback, UNIT_ID_FIELD="uid", ACCOUNT_UNIT_FIELD="zip",
                        ACCOUNT_NAME_FIELD=None)
    out = rows_by(as_layer(result["OUTPUT"]), "id")
    assert {k: (f["territory"], f["source"], f["unit"]) for k, f in out.items()} == {
        "101": ("T1", "unit", "U00"), "102": ("T4", "unit", "U33"), "103": (None, "none", None),
        "104": ("T1", "override", "U12")}
    assert any("103" in w and "unit id that no unit has" in w for w in feedback.warnings), feedback.warnings
    summary = rows_by(as_layer(result["OUTPUT_SUMMARY"]), "territory")
    assert (summary["T1"]["overrides_in"], summary["T2"]["overrides_out"]) == (1, 1)


@pytest.mark.parametrize("extension", ["csv", "xlsx"])
def test_the_account_list_goes_to_csv_and_xlsx(run_algorithm, grid, tmp_path, extension):
    accounts_path = write_accounts(tmp_path / "in" / "accounts.gpkg", ACCOUNTS)
    out = tmp_path / "out"
    out.mkdir()
    result = run_assign(run_algorithm, grid, accounts_path, TERRITORIES=territory_table(),
                        OUTPUT=str(out / f"accounts.{extension}"), OUTPUT_SUMMARY=str(out / f"summary.{extension}"))
    if extension == "csv":
        with open(out / "accounts.csv", newline="", encoding="utf-8") as handle:
            rows = {row["id"]: row for row in csv.DictReader(handle)}
        assert (rows["A3"]["territory"], rows["A3"]["territory_name"], rows["A3"]["rep"], rows["A3"]["source"]) == (
            "T2", "South East", "Bob", "override")
        with open(out / "summary.csv", newline="", encoding="utf-8") as handle:
            summary = {row["territory"]: row for row in csv.DictReader(handle)}
        assert summary["T2"]["overrides_in"] == "1" and summary["T3"]["overrides_out"] == "1"
    else:
        accounts = rows_by(as_layer(result["OUTPUT"]), "id")
        assert accounts["A3"]["rep"] == "Bob"
        assert rows_by(as_layer(result["OUTPUT_SUMMARY"]), "territory")["T2"]["accounts"] == 2


@pytest.mark.parametrize("accounts, extra, problem, fix", [
    ([Account("A1", (0.5, 0.5)), Account("A1", (1.5, 0.5)), Account("A2", (2.5, 0.5))], {},
     r"1 account ids are used more than once.*“A1” \(2 times\)", "its own id"),
    ([Account("A1", (0.5, 0.5), override="T9"), Account("A2", (1.5, 0.5), override="T1")], {},
     "not a territory of the plan.*“T9”.*A1", "code of one of the plan's territories|clear the override"),
    ([Account("A1", None, unit=None), Account("A2", None, unit="U00")],
     {"UNIT_ID_FIELD": "uid", "ACCOUNT_UNIT_FIELD": "zip", "ACCOUNT_NAME_FIELD": None},
     "neither a location nor a unit id: A1", "unit id in “zip”"),
    ([Account("A1", (0.5, 0.5), visits=None), Account("A2", (1.5, 0.5), visits=-1.0)], {},
     "2 accounts have no workload.*“visits”: A1, A2", "zero or more"),
    ([Account("A1", None, wkt="MULTIPOINT((700100 3500100),(705000 3505000))"), Account("A2", (1.5, 0.5))], {},
     "1 accounts are several points each: A1", "Multipart to singleparts"),
])
def test_bad_accounts_are_named_and_nothing_is_written(run_algorithm, grid, tmp_path, accounts, extra, problem, fix):
    table = extra.get("UNIT_ID_FIELD") is not None
    accounts_path = write_accounts(tmp_path / "in" / "accounts.gpkg", accounts, epsg=None if table else 26916)
    out = tmp_path / "out"
    out.mkdir()
    before = digest(tmp_path / "in")
    with pytest.raises(QgsProcessingException) as raised:
        run_assign(run_algorithm, grid, accounts_path, OUTPUT=str(out / "accounts.gpkg"),
                   OUTPUT_SUMMARY=str(out / "summary.csv"), **extra)
    message = str(raised.value)
    assert re.search(problem, message), message
    assert re.search(fix, message), message
    assert list(out.iterdir()) == [], "nothing is written"
    assert digest(tmp_path / "in") == before


def test_a_table_without_unit_ids_is_refused(run_algorithm, grid, tmp_path):
    accounts_path = write_accounts(tmp_path / "in" / "accounts.gpkg", [Account("A1", None, unit="U00")], epsg=None)
    with pytest.raises(QgsProcessingException, match="no geometry.*units' id field and the accounts' unit field"):
        run_assign(run_algorithm, grid, accounts_path, ACCOUNT_NAME_FIELD=None)


def test_the_account_list_of_a_layer_in_the_project_is_the_same(run_algorithm, grid, tmp_path):
    accounts_path = write_accounts(tmp_path / "in" / "accounts.gpkg", ACCOUNTS)
    layer = layer_of(Path(accounts_path), "accounts")
    out = rows_by(as_layer(run_assign(run_algorithm, layer_of(grid, "units"), layer)["OUTPUT"]), "id")
    assert out["A3"]["territory"] == "T2" and out["A1"]["territory"] == "T1"


def test_the_loaded_account_list_is_drawn_by_territory_with_overrides_ringed(territory_provider, grid, tmp_path,
                                                                            qgis_new_project):
    import processing
    from qgis.core import QgsProcessingContext, QgsProject, QgsSymbolLayer

    accounts_path = write_accounts(tmp_path / "in" / "accounts.gpkg", ACCOUNTS)
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    result = processing.runAndLoadResults("territory:assignaccounts", {
        "INPUT": str(grid), "TERRITORY_FIELD": "territory", "ACCOUNTS": str(accounts_path), "ACCOUNT_ID_FIELD": "id",
        "OVERRIDE_FIELD": "override", "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_SUMMARY": "TEMPORARY_OUTPUT"},
        context=context)
    layer = QgsProject.instance().mapLayer(result["OUTPUT"])
    renderer = layer.renderer()
    assert renderer.type() == "categorizedSymbol" and renderer.classAttribute() == "territory"
    categories = renderer.categories()  # copies: kept while their symbols are read
    assert [c.value() for c in categories][:4] == ["T1", "T2", "T3", "T4"]
    symbols = [c.symbol() for c in categories]
    ring = symbols[0].symbolLayer(1)
    enabled = ring.dataDefinedProperties().property(QgsSymbolLayer.Property.PropertyLayerEnabled)
    assert enabled.expressionString() == "\"source\" = 'override'"
    assert symbols[0].color() != symbols[1].color()


def test_reading_straight_from_the_geopackage_equals_reading_through_qgis(grid, tmp_path):
    from qgis.core import QgsProject
    from territory_planner.layers.accounts import prepare_file_read, read_accounts
    from territory_planner.layers.units import read_units

    accounts_path = write_accounts(tmp_path / "in" / "accounts.gpkg", ACCOUNTS)
    layer = layer_of(Path(accounts_path), "accounts")
    units = read_units(layer_of(grid, "units"), [], QgsProject.instance().transformContext(), with_adjacency=False)
    layer.startEditing()
    fid = next(f.id() for f in layer.getFeatures() if f["id"] == "A1")
    layer.changeAttributeValue(fid, layer.fields().lookupField("override"), "T4")  # unsaved: the buffer counts
    context = QgsProject.instance().transformContext()
    arguments = dict(override_field="override", balance_fields=["visits"], name_field="name")
    from_file = prepare_file_read(layer, "id", "override", ["visits"], "name")
    assert from_file is not None
    direct = read_accounts(layer, units, "id", context, from_file=from_file, **arguments)
    through = read_accounts(layer, units, "id", context, **arguments)
    assert direct.ids == through.ids and direct.names == through.names and direct.overrides == through.overrides
    assert direct.overrides[direct.ids.index("A1")] == "T4"
    assert (direct.home == through.home).all() and (direct.workloads == through.workloads).all()
    layer.rollBack()
