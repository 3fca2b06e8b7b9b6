"""Issue 24 inside real QGIS: the workload index in Build, Rebalance, Statistics and Hierarchy,
goals in the territory table, performance (penetration, attainment, opportunities) and the maps
the outputs load as; every figure against a direct computation."""

from __future__ import annotations

import re

import numpy as np
import pytest
from qgis.core import QgsFeature, QgsGeometry, QgsPointXY, QgsProcessingException, QgsProject, QgsVectorLayer

STATISTICS = "territory:territorystatistics"


def grid_layer(rows: list[dict], width: int = 3) -> QgsVectorLayer:
    """10 km squares in UTM 16N, ``width`` per row of the grid, one per entry of ``rows``."""
    layer = QgsVectorLayer("Polygon?crs=EPSG:26916&field=name:string&field=territory:string"
                           "&field=accounts:double&field=sales:double&field=potential:double", "units", "memory")
    features = []
    for k, row in enumerate(rows):
        x, y = 700_000.0 + 10_000.0 * (k % width), 3_500_000.0 + 10_000.0 * (k // width)
        feature = QgsFeature(layer.fields())
        feature.setGeometry(QgsGeometry.fromPolygonXY([[QgsPointXY(x, y), QgsPointXY(x + 10_000, y),
                                                         QgsPointXY(x + 10_000, y + 10_000),
                                                         QgsPointXY(x, y + 10_000)]]))
        for name, value in row.items():
            feature[name] = value
        features.append(feature)
    assert layer.dataProvider().addFeatures(features)
    return layer


SMALL = [  # two territories; accounts 1, 1, 2 and potential 0, 30, 10 by hand
    {"name": "Ash", "territory": "T1", "accounts": 1.0, "sales": 10.0, "potential": 0.0},
    {"name": "Birch", "territory": "T1", "accounts": 1.0, "sales": 0.0, "potential": 30.0},
    {"name": "Cedar", "territory": "T2", "accounts": 2.0, "sales": 30.0, "potential": 10.0},
]


def rows_of(layer, code: str = "territory") -> dict:
    return {f[code]: f for f in layer.getFeatures()}


def test_statistics_index_by_hand(run_algorithm, tmp_path):
    result = run_algorithm(STATISTICS, {
        "INPUT": grid_layer(SMALL), "TERRITORY_FIELD": "territory", "INDEX_WEIGHTS": "accounts:0.5,potential:0.5",
        "TOLERANCE": 5, "OUTPUT": "memory:", "OUTPUT_HTML": str(tmp_path / "r.html")})
    rows = rows_of(result["OUTPUT"])
    # T1: 2,000 × (0.5 × 2/4 + 0.5 × 30/40) = 1,250; T2: 2,000 × (0.5 × 2/4 + 0.5 × 10/40) = 750
    assert rows["T1"]["index"] == pytest.approx(1250) and rows["T2"]["index"] == pytest.approx(750)
    assert rows["T1"]["index_tgt"] == pytest.approx(1000) and rows["T2"]["index_tgt"] == pytest.approx(1000)
    assert rows["T1"]["index_dev"] == pytest.approx(25.0) and rows["T2"]["index_dev"] == pytest.approx(-25.0)
    assert result["MAX_DEVIATION"] == pytest.approx(25.0)
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Over and under target: the index (1,000 = the average territory)" in html
    assert "the average territory scores 1,000" in html


def test_build_on_the_index_within_tolerance_on_georgia(run_algorithm, georgia_layer):
    result = run_algorithm("territory:buildterritories", {
        "INPUT": georgia_layer, "TERRITORY_COUNT": 6, "INDEX_WEIGHTS": "population:0.7,elderly:0.3",
        "TOLERANCE": 5, "RANDOM_SEED": 1, "OUTPUT": "memory:", "OUTPUT_TERRITORIES": "memory:"})
    assert result["MAX_DEVIATION"] <= 5.0
    # the index by direct computation from the output units
    units = list(result["OUTPUT"].getFeatures())
    population = np.array([f["population"] for f in units], dtype=float)
    elderly = np.array([f["elderly"] for f in units], dtype=float)
    index = 6000 * (0.7 * population / population.sum() + 0.3 * elderly / elderly.sum())
    codes = [f["territory"] for f in units]
    table = rows_of(result["OUTPUT_TERRITORIES"])
    assert len(table) == 6
    for code, row in table.items():
        mine = index[[c == code for c in codes]].sum()
        assert row["index"] == pytest.approx(mine, rel=1e-9)
        assert row["index_tgt"] == pytest.approx(1000)
        assert abs(row["index_dev"]) <= 5.0 + 1e-6
        assert abs(mine - 1000) <= 50 + 1e-6
    assert result["OUTPUT_TERRITORIES"].fields().lookupField("population") < 0, "the index alone is balanced"


def test_build_balances_the_index_beside_a_field_with_its_own_tolerance(run_algorithm, georgia_layer):
    result = run_algorithm("territory:buildterritories", {
        "INPUT": georgia_layer, "TERRITORY_COUNT": 4, "BALANCE_FIELDS": ["population"],
        "INDEX_WEIGHTS": "population:0.5,elderly:0.5", "TOLERANCE": 5, "TOLERANCES": "6,index:8",
        "RANDOM_SEED": 2, "OUTPUT": "memory:", "OUTPUT_TERRITORIES": "memory:"})
    table = list(result["OUTPUT_TERRITORIES"].getFeatures())
    assert {"population_dev", "index_dev"} <= set(result["OUTPUT_TERRITORIES"].fields().names())
    assert max(abs(f["population_dev"]) for f in table) <= 6.0 + 1e-6
    assert max(abs(f["index_dev"]) for f in table) <= 8.0 + 1e-6


def test_rebalance_and_hierarchy_take_the_index(run_algorithm, georgia_layer):
    built = run_algorithm("territory:buildterritories", {
        "INPUT": georgia_layer, "TERRITORY_COUNT": 6, "BALANCE_FIELDS": ["population"], "TOLERANCE": 5,
        "RANDOM_SEED": 3, "OUTPUT": "memory:", "OUTPUT_TERRITORIES": "memory:"})
    rebalanced = run_algorithm("territory:rebalanceterritories", {
        "INPUT": built["OUTPUT"], "TERRITORY_FIELD": "territory", "INDEX_WEIGHTS": "population:0.6,elderly:0.4",
        "TOLERANCE": 5, "OUTPUT": "memory:", "OUTPUT_TERRITORIES": "memory:"})
    assert rebalanced["MAX_DEVIATION"] <= 5.0
    assert all(abs(f["index_dev"]) <= 5.0 + 1e-6 for f in rebalanced["OUTPUT_TERRITORIES"].getFeatures())
    regions = run_algorithm("territory:buildhierarchy", {
        "INPUT": built["OUTPUT"], "TERRITORY_FIELD": "territory", "REGION_COUNT": 2,
        "INDEX_WEIGHTS": "population:0.6,elderly:0.4", "TOLERANCE": 25, "OUTPUT": "memory:",
        "OUTPUT_REGIONS": "memory:"})
    # the index is scaled so the average region scores 1,000
    values = [f["index"] for f in regions["OUTPUT_REGIONS"].getFeatures()]
    assert sum(values) == pytest.approx(2000)
    assert all(f["index_tgt"] == pytest.approx(1000) for f in regions["OUTPUT_REGIONS"].getFeatures())


PLAN = [  # three territories of three units each
    {"name": f"U{k}", "territory": f"T{1 + k // 3}", "accounts": 1.0 + k % 2,
     "sales": float(s), "potential": float(p)}
    for k, (s, p) in enumerate([(10, 100), (20, 50), (5, 200), (40, 80), (0, 300), (30, 60), (50, 50),
                                (10, 400), (25, 90)])
]


def goals_table(run_algorithm, layer, total=300, **extra):
    return run_algorithm("territory:setgoals", {"INPUT": layer, "TERRITORY_FIELD": "territory",
                                                "TOTAL_GOAL": total, "BASIS": "potential", "OUTPUT": "memory:",
                                                **extra})["OUTPUT"]


def test_penetration_attainment_and_opportunities_against_a_direct_computation(run_algorithm, tmp_path):
    layer = grid_layer(PLAN)
    goals = goals_table(run_algorithm, layer, total=200)
    result = run_algorithm(STATISTICS, {
        "INPUT": layer, "TERRITORY_FIELD": "territory", "TERRITORIES": goals, "SALES_FIELD": "sales",
        "POTENTIAL_FIELD": "potential", "OPPORTUNITY_COUNT": 4, "PERFORMANCE_THRESHOLD": 90,
        "UNIT_NAME_FIELD": "name", "OUTPUT": "memory:", "OUTPUT_HTML": str(tmp_path / "r.html"),
        "OUTPUT_OPPORTUNITIES": "memory:"})
    rows = rows_of(result["OUTPUT"])
    goal_of = {f["territory"]: f["goal"] for f in goals.getFeatures()}
    codes = np.array([u["territory"] for u in PLAN])
    sales = np.array([u["sales"] for u in PLAN])
    potential = np.array([u["potential"] for u in PLAN])
    penetration = {}
    for code in ("T1", "T2", "T3"):
        s, p = sales[codes == code].sum(), potential[codes == code].sum()
        penetration[code] = 100 * s / p
        assert rows[code]["sales"] == pytest.approx(s) and rows[code]["potential"] == pytest.approx(p)
        assert rows[code]["penetration"] == pytest.approx(penetration[code], abs=1e-3)
        assert rows[code]["goal"] == goal_of[code]
        assert rows[code]["attainment"] == pytest.approx(100 * s / goal_of[code], abs=1e-3)
    by_penetration = sorted(penetration, key=lambda c: -penetration[c])
    assert [rows[c]["penetration_rank"] for c in by_penetration] == [1, 2, 3]
    attainment = {c: rows[c]["attainment"] for c in rows}
    assert [rows[c]["attainment_rank"] for c in sorted(attainment, key=lambda c: -attainment[c])] == [1, 2, 3]
    # opportunities: potential × (1 − the territory's penetration), the four largest, by name
    untapped = {u["name"]: u["potential"] * (1 - penetration[u["territory"]] / 100) for u in PLAN}
    expected = sorted(untapped, key=lambda n: -untapped[n])[:4]
    found = sorted(result["OUTPUT_OPPORTUNITIES"].getFeatures(), key=lambda f: f["rank"])
    assert [f["name"] for f in found] == expected
    for feature in found:
        unit = next(u for u in PLAN if u["name"] == feature["name"])
        assert feature["territory"] == unit["territory"]
        assert feature["untapped"] == pytest.approx(untapped[feature["name"]])
        assert feature["expected_sales"] == pytest.approx(unit["potential"] * penetration[unit["territory"]] / 100)
        assert not feature.geometry().isNull()
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    section = html.split("<h2>Performance</h2>")[1].split("<h2>Validation</h2>")[0]
    assert section.count("<svg") == 3 and section.count('<img class="map"') == 2
    below = [c for c in attainment if attainment[c] < 90]
    assert below == ["T1"], attainment
    listed = re.search(r"Territories below the threshold</h3>(.*?)</ul>", section, re.S).group(1)
    assert "T1: 66" in listed and len(re.findall(r"<li", listed)) == 1
    for name in expected:
        assert name in section


def test_goals_travel_with_the_codes_through_build_and_rebalance(run_algorithm, tmp_path):
    layer = grid_layer(PLAN)
    goals = goals_table(run_algorithm, layer, total=900)
    rebalanced = run_algorithm("territory:rebalanceterritories", {
        "INPUT": layer, "TERRITORY_FIELD": "territory", "BALANCE_FIELDS": ["accounts"], "TOLERANCE": 50,
        "TERRITORIES": goals, "OUTPUT": "memory:", "OUTPUT_TERRITORIES": "memory:"})
    kept = {f["territory"]: f["goal"] for f in rebalanced["OUTPUT_TERRITORIES"].getFeatures()}
    assert kept == {f["territory"]: f["goal"] for f in goals.getFeatures()}
    built = run_algorithm("territory:buildterritories", {
        "INPUT": layer, "TERRITORY_COUNT": 3, "BALANCE_FIELDS": ["accounts"], "TOLERANCE": 50, "TERRITORIES": goals,
        "OUTPUT": "memory:", "OUTPUT_TERRITORIES": "memory:"})
    table = built["OUTPUT_TERRITORIES"]
    assert table.fields().lookupField("goal") >= 0
    assert sum(f["goal"] for f in table.getFeatures()) == 900


def test_the_outputs_load_as_maps(territory_provider, qgis_new_project, tmp_path):
    import processing

    layer = grid_layer(PLAN)
    result = processing.runAndLoadResults(STATISTICS, {
        "INPUT": layer, "TERRITORY_FIELD": "territory", "INDEX_WEIGHTS": "accounts:0.5,potential:0.5",
        "TOLERANCE": 10, "SALES_FIELD": "sales", "POTENTIAL_FIELD": "potential", "OUTPUT": "memory:",
        "OUTPUT_HTML": str(tmp_path / "r.html"), "OUTPUT_OPPORTUNITIES": "memory:"})
    territories = QgsProject.instance().mapLayer(result["OUTPUT"])
    renderer = territories.renderer()
    assert renderer.type() == "graduatedSymbol" and renderer.classAttribute() == "index"
    middle = renderer.ranges()[3]
    assert (middle.lowerValue(), middle.upperValue()) == (pytest.approx(900), pytest.approx(1100))
    ranges = renderer.ranges()
    assert 1000 - ranges[1].lowerValue() == pytest.approx(ranges[5].upperValue() - 1000), "centred on 1,000"
    values = [f["index"] for f in territories.getFeatures()]
    assert ranges[0].lowerValue() <= min(values) and ranges[-1].upperValue() >= max(values)
    assert territories.styleManager().currentStyle() == "over/under target"
    assert "territory colours" in territories.styleManager().styles()
    opportunities = QgsProject.instance().mapLayer(result["OUTPUT_OPPORTUNITIES"])
    assert opportunities.renderer().type() == "graduatedSymbol"
    assert opportunities.renderer().classAttribute() == "untapped"


BAD = [
    ({"INDEX_WEIGHTS": "accounts:many"}, r"index weight of “accounts” is “many”, which is not a number"),
    ({"INDEX_WEIGHTS": "accounts:-1,sales:1"}, r"“accounts” is negative.*Weights are zero or more"),
    ({"INDEX_WEIGHTS": "accounts:0,sales:0"}, r"Every index weight is 0.*at least one field"),
    ({"INDEX_WEIGHTS": "visits:1"}, r"name the field “visits”, which is not in the units layer.*Use one of"),
    ({"INDEX_WEIGHTS": "name:1"}, r"“name” is not numeric"),
    ({"SALES_FIELD": "sales", "NULL": ("sales", None)}, r"no value \(NULL\) in the sales field “sales”.*Fill it in"),
    ({"SALES_FIELD": "sales", "NULL": ("sales", -3.0)}, r"negative or invalid value \(-3.0\) in the sales field"),
    ({"SALES_FIELD": "sales", "POTENTIAL_FIELD": "potential", "NULL": ("potential", None)},
     r"no value \(NULL\) in the potential field “potential”"),
    ({"SALES_FIELD": "sales", "POTENTIAL_FIELD": "potential", "NULL": ("potential", -1.0)},
     r"negative or invalid value \(-1.0\) in the potential field"),
    ({"POTENTIAL_FIELD": "potential"}, r"potential field \(“potential”\) was given without a sales field"),
    ({"INDEX_WEIGHTS": "accounts:1", "TOLERANCES": "index:x"}, None),
]


@pytest.mark.parametrize("extra, message", BAD)
def test_bad_analytics_inputs_say_what_to_fix(run_algorithm, tmp_path, extra, message):
    extra = dict(extra)
    rows = [dict(r) for r in PLAN]
    if "NULL" in extra:
        field, value = extra.pop("NULL")
        rows[4][field] = value
    layer = grid_layer(rows)
    if "TOLERANCES" in extra:  # TOLERANCES belong to Build and Rebalance
        with pytest.raises(QgsProcessingException, match=r"tolerances “index:x” are not numbers"):
            run_algorithm("territory:rebalanceterritories", {
                "INPUT": layer, "TERRITORY_FIELD": "territory", **extra, "OUTPUT": "memory:",
                "OUTPUT_TERRITORIES": "memory:"})
        return
    with pytest.raises(QgsProcessingException, match=message):
        run_algorithm(STATISTICS, {"INPUT": layer, "TERRITORY_FIELD": "territory", **extra, "OUTPUT": "memory:",
                                   "OUTPUT_HTML": str(tmp_path / "r.html")})
    if "INDEX_WEIGHTS" in extra:
        for algorithm, parameters in (
                ("territory:buildterritories", {"TERRITORY_COUNT": 3, "OUTPUT_TERRITORIES": "memory:"}),
                ("territory:rebalanceterritories", {"TERRITORY_FIELD": "territory", "OUTPUT_TERRITORIES": "memory:"}),
                ("territory:buildhierarchy", {"TERRITORY_FIELD": "territory", "REGION_COUNT": 2,
                                              "OUTPUT_REGIONS": "memory:"})):
            with pytest.raises(QgsProcessingException, match=message):
                run_algorithm(algorithm, {"INPUT": layer, **extra, "OUTPUT": "memory:", **parameters})
    assert not (tmp_path / "r.html").exists()


def test_a_tolerance_for_a_measure_that_is_not_there_is_named(run_algorithm):
    with pytest.raises(QgsProcessingException, match=r"names “index”, which is not a measure of this run"):
        run_algorithm("territory:rebalanceterritories", {
            "INPUT": grid_layer(PLAN), "TERRITORY_FIELD": "territory", "BALANCE_FIELDS": ["accounts"],
            "TOLERANCES": "index:3", "OUTPUT": "memory:", "OUTPUT_TERRITORIES": "memory:"})


@pytest.mark.skipif(__import__("shutil").which("pdftotext") is None, reason="poppler-utils is not installed")
def test_each_packet_says_your_goal(run_algorithm, tmp_path):
    import subprocess

    layer = grid_layer(PLAN)
    goals = goals_table(run_algorithm, layer, total=9000)
    folder = tmp_path / "packets"
    run_algorithm("territory:territorypackets", {"INPUT": layer, "TERRITORY_FIELD": "territory", "TERRITORIES": goals,
                                                 "BALANCE_FIELDS": ["accounts"], "OUTPUT_FOLDER": str(folder)})
    for feature in goals.getFeatures():
        text = subprocess.run(["pdftotext", "-layout", str(folder / f"territory_{feature['territory']}.pdf"), "-"],
                              check=True, capture_output=True, text=True).stdout
        assert re.search(rf"your goal\s+{feature['goal']:,.0f}", text), text[:1500]


def test_goals_roll_up_the_hierarchy(run_algorithm):
    layer = grid_layer(PLAN)
    goals = goals_table(run_algorithm, layer, total=900)
    goal_of = {f["territory"]: f["goal"] for f in goals.getFeatures()}
    regions = run_algorithm("territory:buildhierarchy", {
        "INPUT": layer, "TERRITORY_FIELD": "territory", "REGION_COUNT": 2, "BALANCE_FIELDS": ["accounts"],
        "TOLERANCE": 50, "TERRITORIES": goals, "OUTPUT": "memory:", "OUTPUT_REGIONS": "memory:"})
    rows = list(regions["OUTPUT_REGIONS"].getFeatures())
    for row in rows:
        assert row["goal"] == pytest.approx(sum(goal_of[code] for code in row["members"].split(", ")))
    assert sum(row["goal"] for row in rows) == 900
