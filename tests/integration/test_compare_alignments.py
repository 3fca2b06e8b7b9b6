"""Compare alignments, on the real Georgia counties.

Both alignments are made in the test from the counties' positions (strips west to east, then
strips south to north), so the expected figures come from the features themselves.
"""

from __future__ import annotations

import math
import re

import pytest
from qgis.core import QgsFeature, QgsProcessingException, QgsProcessingFeedback, QgsVectorLayer
from territory_planner.compat import STRING, make_field

ALG = "territory:comparealignments"
MEASURES = ["population", "elderly"]


def snapshot(layer: QgsVectorLayer) -> list:
    return sorted(
        (f.id(), [None if _null(v) else v for v in f.attributes()], f.geometry().asWkb().data())
        for f in layer.getFeatures()
    )


def _null(value) -> bool:
    return value is None or (hasattr(value, "isNull") and value.isNull())


def name_of(value):
    return None if _null(value) or str(value).strip() == "" else str(value)


def strips(layer: QgsVectorLayer, count: int, axis: int) -> dict[int, str]:
    order = sorted(layer.getFeatures(), key=lambda f: f.geometry().centroid().asPoint()[axis])
    size = math.ceil(len(order) / count)
    return {f.id(): f"T{1 + r // size}" for r, f in enumerate(order)}


def add_field(layer: QgsVectorLayer, field: str, values: dict[int, str | None]) -> None:
    if layer.fields().lookupField(field) < 0:
        assert layer.dataProvider().addAttributes([make_field(field, STRING)])
        layer.updateFields()
    index = layer.fields().lookupField(field)
    assert layer.dataProvider().changeAttributeValues({fid: {index: v} for fid, v in values.items()})
    layer.reload()


@pytest.fixture
def plans(georgia_layer):
    """Before: five west-east strips with two units unassigned; after: five south-north strips
    with one of those two still unassigned and one more unit unassigned."""
    before = strips(georgia_layer, 5, 0)
    after = strips(georgia_layer, 5, 1)
    fids = sorted(before)
    before[fids[0]] = None
    before[fids[1]] = ""
    after[fids[0]] = None
    after[fids[2]] = None
    add_field(georgia_layer, "before", before)
    add_field(georgia_layer, "after", after)
    return georgia_layer


def after_table(layer: QgsVectorLayer, reverse: bool = True) -> QgsVectorLayer:
    """A table without geometry holding only fips and the after alignment, rows in another order."""
    table = QgsVectorLayer("None?field=fips:string&field=proposal:string", "after", "memory")
    rows = [(f["fips"], f["after"]) for f in layer.getFeatures()]
    if reverse:
        rows.reverse()
    features = []
    for fips, territory in rows:
        feature = QgsFeature(table.fields())
        feature.setAttributes([fips, territory])
        features.append(feature)
    assert table.dataProvider().addFeatures(features)[0]
    return table


def run_compare(run_algorithm, layer, tmp_path, **extra):
    parameters = {
        "INPUT": layer,
        "FIELD_BEFORE": "before",
        "FIELD_AFTER": "after",
        "BALANCE_FIELDS": MEASURES,
        "OUTPUT": "memory:",
        "OUTPUT_SUMMARY": "memory:",
        "OUTPUT_HTML": str(tmp_path / "compare.html"),
    }
    parameters.update(extra)
    return run_algorithm(ALG, parameters)


def summary_rows(layer) -> dict:
    return {name_of(f["territory"]): f for f in layer.getFeatures()}


def test_gains_and_losses_add_up_to_the_changed_workload(run_algorithm, plans, tmp_path):
    layer = plans
    before_snapshot = snapshot(layer)

    result = run_compare(run_algorithm, layer, tmp_path)

    features = list(layer.getFeatures())
    changed = [f for f in features if name_of(f["before"]) != name_of(f["after"])]
    assert result["CHANGED_UNITS"] == len(changed) > 0
    total = sum(f["population"] for f in features)
    assert result["CHANGED_WORKLOAD"] == pytest.approx(100 * sum(f["population"] for f in changed) / total, abs=1e-3)

    rows = summary_rows(result["OUTPUT_SUMMARY"])
    assert set(rows) == {f"T{k}" for k in range(1, 6)} | {None}
    assert sum(r["units_gained"] for r in rows.values()) == len(changed)
    assert sum(r["units_lost"] for r in rows.values()) == len(changed)
    for measure in MEASURES:
        moved = sum(f[measure] for f in changed)
        assert sum(r[f"{measure}_gained"] for r in rows.values()) == pytest.approx(moved)
        assert sum(r[f"{measure}_lost"] for r in rows.values()) == pytest.approx(moved)
    for name, row in rows.items():
        units_before = [f for f in features if name_of(f["before"]) == name]
        units_after = [f for f in features if name_of(f["after"]) == name]
        assert row["units_before"] == len(units_before)
        assert row["units_after"] == len(units_after)
        assert row["units_net"] == len(units_after) - len(units_before)
        for measure in MEASURES:
            assert row[f"{measure}_before"] == pytest.approx(sum(f[measure] for f in units_before))
            assert row[f"{measure}_after"] == pytest.approx(sum(f[measure] for f in units_after))
            assert row[f"{measure}_net"] == pytest.approx(row[f"{measure}_after"] - row[f"{measure}_before"])
            gained = sum(f[measure] for f in changed if name_of(f["after"]) == name)
            assert row[f"{measure}_gained"] == pytest.approx(gained)
    assert rows[None]["units_before"] == 2 and rows[None]["units_after"] == 2
    touched = {name_of(f["before"]) for f in changed} | {name_of(f["after"]) for f in changed}
    assert result["TERRITORIES_CHANGED"] == len(touched - {None})

    out = result["OUTPUT"]
    assert out.featureCount() == len(changed)
    by_fips = {f["fips"]: f for f in changed}
    for feature in out.getFeatures():
        source = by_fips[feature["fips"]]
        assert name_of(feature["from_territory"]) == name_of(source["before"])
        assert name_of(feature["to_territory"]) == name_of(source["after"])
        assert feature["population"] == source["population"]
        assert feature.geometry().equals(source.geometry())
    assert snapshot(layer) == before_snapshot


def test_the_report_says_who_gains_what_from_whom(run_algorithm, plans, tmp_path):
    result = run_compare(run_algorithm, plans, tmp_path)

    html = (tmp_path / "compare.html").read_text(encoding="utf-8")
    assert result["OUTPUT_HTML"] == str(tmp_path / "compare.html")
    moved = {}
    for f in plans.getFeatures():
        a, b = name_of(f["before"]), name_of(f["after"])
        if a != b and a is not None and b is not None:
            moved[(a, b)] = moved.get((a, b), 0) + 1
    (origin, destination), count = max(moved.items(), key=lambda item: item[1])
    assert f"gains from {origin}: {count} units" in html
    assert f"loses to {destination}: {count} units" in html
    for k in range(1, 6):
        assert f"T{k}" in html
    sources = re.findall(r'\ssrc\s*=\s*["\']([^"\']*)', html, flags=re.IGNORECASE)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r'\shref\s*=\s*["\']?(https?:|file:|//)', html, flags=re.IGNORECASE)
    assert html.count("<svg") == 1 + len(MEASURES)


def test_a_second_layer_joined_by_unit_id_gives_the_same_answer(run_algorithm, plans, tmp_path):
    table = after_table(plans)
    table_before = snapshot(table)
    one = run_compare(run_algorithm, plans, tmp_path)
    two = run_compare(run_algorithm, plans, tmp_path, INPUT_AFTER=table, UNIT_ID_FIELD="fips", FIELD_AFTER="proposal")

    assert two["CHANGED_UNITS"] == one["CHANGED_UNITS"]
    assert two["CHANGED_WORKLOAD"] == pytest.approx(one["CHANGED_WORKLOAD"])
    rows_one, rows_two = summary_rows(one["OUTPUT_SUMMARY"]), summary_rows(two["OUTPUT_SUMMARY"])
    assert set(rows_one) == set(rows_two)
    for name, row in rows_one.items():
        assert row.attributes() == rows_two[name].attributes()
    changed_one = {f["fips"]: (f["from_territory"], f["to_territory"]) for f in one["OUTPUT"].getFeatures()}
    changed_two = {f["fips"]: (f["from_territory"], f["to_territory"]) for f in two["OUTPUT"].getFeatures()}
    assert changed_one == changed_two
    assert snapshot(table) == table_before


def test_summary_to_csv_and_xlsx_and_changes_to_shapefile(run_algorithm, plans, tmp_path):
    memory = run_compare(run_algorithm, plans, tmp_path)
    expected = {name: row.attributes() for name, row in summary_rows(memory["OUTPUT_SUMMARY"]).items()}
    fields = [f.name() for f in memory["OUTPUT_SUMMARY"].fields()]

    for suffix in ("csv", "xlsx"):
        result = run_compare(run_algorithm, plans, tmp_path, OUTPUT_SUMMARY=str(tmp_path / f"summary.{suffix}"))
        table = QgsVectorLayer(result["OUTPUT_SUMMARY"], suffix, "ogr")
        assert table.isValid(), suffix
        assert table.featureCount() == len(expected)
        names = [f.name() for f in table.fields()]
        for feature in table.getFeatures():
            values = expected[name_of(feature["territory"])]
            for k, name in enumerate(fields):
                got = feature[names.index(name)]
                want = values[k]
                if _null(want):
                    assert _null(got) or str(got) == "", (suffix, name)
                else:
                    assert float(got) == pytest.approx(float(want)) if k else str(got) == want, (suffix, name)

    shp = run_compare(run_algorithm, plans, tmp_path, OUTPUT=str(tmp_path / "changed.shp"))
    layer = QgsVectorLayer(shp["OUTPUT"], "shp", "ogr")
    names = [f.name() for f in layer.fields()]
    assert all(len(n) <= 10 for n in names)
    assert "from_terri" in names and "to_territo" in names
    moves = {f["fips"]: (f["from_territory"], f["to_territory"]) for f in memory["OUTPUT"].getFeatures()}
    assert layer.featureCount() == len(moves)
    for feature in layer.getFeatures():
        a, b = moves[feature["fips"]]
        assert name_of(feature["from_terri"]) == name_of(a)
        assert name_of(feature["to_territo"]) == name_of(b)


def test_without_balance_fields_units_are_counted(run_algorithm, plans, tmp_path):
    result = run_compare(run_algorithm, plans, tmp_path, BALANCE_FIELDS=[])

    changed = sum(name_of(f["before"]) != name_of(f["after"]) for f in plans.getFeatures())
    assert result["CHANGED_UNITS"] == changed
    assert result["CHANGED_WORKLOAD"] == pytest.approx(100 * changed / plans.featureCount(), abs=1e-3)
    names = [f.name() for f in result["OUTPUT_SUMMARY"].fields()]
    assert names == ["territory", "units_before", "units_after", "units_gained", "units_lost", "units_net"]


def test_bad_input_is_refused_with_a_message(run_algorithm, plans, tmp_path):
    layer = plans
    before_snapshot = snapshot(layer)
    good = after_table(layer)
    with pytest.raises(QgsProcessingException, match="same field"):
        run_compare(run_algorithm, layer, tmp_path, FIELD_AFTER="before")
    with pytest.raises(QgsProcessingException, match="not in the units layer"):
        run_compare(run_algorithm, layer, tmp_path, FIELD_BEFORE="nowhere")
    with pytest.raises(QgsProcessingException, match="not in the units layer"):
        run_compare(run_algorithm, layer, tmp_path, FIELD_AFTER="nowhere")
    with pytest.raises(QgsProcessingException, match="without a unit id field"):
        run_compare(run_algorithm, layer, tmp_path, INPUT_AFTER=good, FIELD_AFTER="proposal")
    with pytest.raises(QgsProcessingException, match="not in the layer after"):
        run_compare(run_algorithm, layer, tmp_path, INPUT_AFTER=good, UNIT_ID_FIELD="fips", FIELD_AFTER="after")
    with pytest.raises(QgsProcessingException, match="unit id field “population” is not in the layer after"):
        run_compare(
            run_algorithm, layer, tmp_path, INPUT_AFTER=good, UNIT_ID_FIELD="population", FIELD_AFTER="proposal"
        )

    def broken(edit) -> QgsVectorLayer:
        table = after_table(layer)
        fid = next(table.getFeatures()).id()
        edit(table, fid)
        return table

    def duplicate(table, fid):
        other = [f for f in table.getFeatures() if f.id() != fid][0]
        table.dataProvider().changeAttributeValues({fid: {0: other["fips"]}})

    def missing(table, fid):
        table.dataProvider().deleteFeatures([fid])

    def extra(table, fid):
        feature = QgsFeature(table.fields())
        feature.setAttributes(["99999", "T1"])
        table.dataProvider().addFeatures([feature])

    def no_id(table, fid):
        table.dataProvider().changeAttributeValues({fid: {0: None}})

    for edit, message in (
        (duplicate, "repeated in the layer after"),
        (missing, "missing from the layer after"),
        (extra, "not in the units layer .ids in “fips”: 99999"),
        (no_id, "have no unit id"),
    ):
        with pytest.raises(QgsProcessingException, match=message):
            run_compare(
                run_algorithm,
                layer,
                tmp_path,
                INPUT_AFTER=broken(edit),
                UNIT_ID_FIELD="fips",
                FIELD_AFTER="proposal",
            )
    assert snapshot(layer) == before_snapshot


def test_repeated_unit_ids_in_the_units_layer_are_refused(run_algorithm, plans, tmp_path):
    table = after_table(plans)
    first, second = list(plans.getFeatures())[:2]
    plans.dataProvider().changeAttributeValues({second.id(): {plans.fields().lookupField("fips"): first["fips"]}})
    with pytest.raises(QgsProcessingException, match="repeated in the units layer"):
        run_compare(run_algorithm, plans, tmp_path, INPUT_AFTER=table, UNIT_ID_FIELD="fips", FIELD_AFTER="proposal")


def test_a_cancelled_comparison_stops_with_an_error(run_algorithm, plans, tmp_path):
    feedback = QgsProcessingFeedback()
    feedback.cancel()
    with pytest.raises(QgsProcessingException):
        run_algorithm(
            ALG,
            {
                "INPUT": plans,
                "FIELD_BEFORE": "before",
                "FIELD_AFTER": "after",
                "OUTPUT": "memory:",
                "OUTPUT_SUMMARY": "memory:",
                "OUTPUT_HTML": str(tmp_path / "c.html"),
            },
            feedback=feedback,
        )
    assert not (tmp_path / "c.html").exists()


def test_changed_units_are_loaded_coloured_by_new_territory(territory_provider, qgis_new_project, plans, tmp_path):
    import processing
    from qgis.core import QgsProject

    result = processing.runAndLoadResults(
        ALG,
        {
            "INPUT": plans,
            "FIELD_BEFORE": "before",
            "FIELD_AFTER": "after",
            "OUTPUT": "memory:",
            "OUTPUT_SUMMARY": "memory:",
            "OUTPUT_HTML": str(tmp_path / "c.html"),
        },
    )

    layer = QgsProject.instance().mapLayer(result["OUTPUT"])
    assert layer.renderer().type() == "categorizedSymbol"
    assert layer.renderer().classAttribute() == "to_territory"
    assert {f"T{k}" for k in range(1, 6)} <= {c.value() for c in layer.renderer().categories()}
