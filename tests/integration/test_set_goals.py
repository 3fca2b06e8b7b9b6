"""Set territory goals (territory:setgoals) inside QGIS: goals add up exactly with floor and cap
binding, from a territory table or from units, by a field or by the index; every bad input says
what is wrong and how to fix it."""

from __future__ import annotations

import numpy as np
import pytest
from qgis.core import QgsFeature, QgsProcessingException, QgsVectorLayer

ALG = "territory:setgoals"


def table_layer(rows: list[dict], fields: str = "territory:string&field=potential:double&field=sales:double",
                geometry: str = "None") -> QgsVectorLayer:
    layer = QgsVectorLayer(f"{geometry}?field={fields}", "table", "memory")
    features = []
    for row in rows:
        feature = QgsFeature(layer.fields())
        for name, value in row.items():
            feature[name] = value
        features.append(feature)
    assert layer.dataProvider().addFeatures(features)
    return layer


def goals_of(layer, code_field: str = "territory") -> dict[str, float]:
    return {f[code_field]: f["goal"] for f in layer.getFeatures()}


def test_goals_add_up_exactly_with_floor_and_cap_binding(run_algorithm):
    potential = {"T1": 10.0, "T2": 40.0, "T3": 150.0, "T4": 200.0, "T5": 600.0}
    layer = table_layer([{"territory": t, "potential": v, "sales": 0.0} for t, v in potential.items()])
    result = run_algorithm(ALG, {"INPUT": layer, "TERRITORY_FIELD": "territory", "TOTAL_GOAL": 1_000_000,
                                 "BASIS": "potential", "FLOOR": 80, "CAP": 150, "ROUND_TO": 1000,
                                 "OUTPUT": "memory:"})
    goals = goals_of(result["OUTPUT"])
    assert sum(goals.values()) == 1_000_000
    # average 200,000: floor 160,000, cap 300,000
    assert goals["T1"] == goals["T2"] == 160_000
    assert goals["T5"] == 300_000
    assert all(v % 1000 == 0 for v in goals.values())
    # the free ones share the rest (380,000) in proportion 150 : 200, rounded by largest remainder
    assert goals["T3"] == 163_000 and goals["T4"] == 217_000
    assert result["AT_FLOOR"] == 2 and result["AT_CAP"] == 1 and result["TERRITORY_COUNT"] == 5
    bounds = {f["territory"]: f["bound"] for f in result["OUTPUT"].getFeatures()}
    assert bounds["T1"] == "floor" and bounds["T5"] == "cap" and not bounds["T3"]


def test_goals_from_units_with_history_by_direct_computation(run_algorithm):
    rng = np.random.default_rng(5)
    codes = rng.choice(["North", "South", "East", "West"], size=60)
    potential = rng.uniform(0, 1000, size=60).round(1)
    sales = (potential * rng.uniform(0.1, 0.6, size=60)).round(1)
    units = table_layer([{"territory": str(c), "potential": float(p), "sales": float(s)}
                         for c, p, s in zip(codes, potential, sales)], geometry="Point")
    names = table_layer([{"code": c, "name": f"{c} region", "rep": f"Rep {c}"} for c in ["North", "South", "East",
                                                                                          "West", "Central"]],
                        fields="code:string&field=name:string&field=rep:string")
    result = run_algorithm(ALG, {"INPUT": units, "TERRITORY_FIELD": "territory", "TERRITORIES": names,
                                 "TOTAL_GOAL": 500_000, "BASIS": "potential", "HISTORY_FIELD": "sales",
                                 "HISTORY_WEIGHT": 0.4, "OUTPUT": "memory:"})
    rows = {f["territory"]: f for f in result["OUTPUT"].getFeatures()}
    assert sum(f["goal"] for f in rows.values()) == 500_000
    for code in ["North", "South", "East", "West"]:
        share = 0.6 * potential[codes == code].sum() / potential.sum() + 0.4 * sales[codes == code].sum() / sales.sum()
        assert abs(rows[code]["goal"] - 500_000 * share) <= 1
        assert rows[code]["name"] == f"{code} region" and rows[code]["rep"] == f"Rep {code}"
    # a territory of the table without units gets no share
    assert rows["Central"]["goal"] == 0


def test_goals_by_the_index(run_algorithm):
    layer = table_layer([{"territory": "A", "potential": 30.0, "sales": 10.0},
                         {"territory": "B", "potential": 70.0, "sales": 30.0}])
    result = run_algorithm(ALG, {"INPUT": layer, "TOTAL_GOAL": 1000, "BASIS": "index",
                                 "INDEX_WEIGHTS": "potential:0.5,sales:0.5", "OUTPUT": "memory:"})
    # index shares: A = 0.5 × 0.3 + 0.5 × 0.25 = 0.275
    assert goals_of(result["OUTPUT"]) == {"A": 275, "B": 725}
    basis = {f["territory"]: f["basis"] for f in result["OUTPUT"].getFeatures()}
    assert basis["A"] == pytest.approx(2 * 1000 * 0.275)


def test_the_goal_table_round_trips_as_a_territory_table(run_algorithm):
    from territory_planner.layers.territory_table import read_territory_table

    layer = table_layer([{"territory": "A", "potential": 1.0, "sales": 0.0},
                         {"territory": "B", "potential": 3.0, "sales": 0.0}])
    result = run_algorithm(ALG, {"INPUT": layer, "TOTAL_GOAL": 100, "BASIS": "potential", "OUTPUT": "memory:"})
    rows = read_territory_table(result["OUTPUT"], "territory")
    assert {code: row.goal for code, row in rows.items()} == {"A": 25.0, "B": 75.0}


BAD = [
    ({"BASIS": "potential", "TOTAL_GOAL": 1000, "ROWS": [("A", 0.0), ("B", 0.0)]},
     r"“potential” is 0 for every territory.*Choose a basis"),
    ({"BASIS": "potential", "TOTAL_GOAL": 1000, "ROWS": [("A", None), ("B", 1.0)]},
     r"no value \(NULL\) in “potential”.*Fill it in"),
    ({"BASIS": "potential", "TOTAL_GOAL": 1000, "ROWS": [("A", -5.0), ("B", 1.0)]},
     r"negative value.*“potential”.*correct it"),
    ({"BASIS": "", "TOTAL_GOAL": 1000}, r"Goals need a basis.*index weights"),
    ({"BASIS": "index", "INDEX_WEIGHTS": "potential:x", "TOTAL_GOAL": 1000}, r"“potential”.*not a number"),
    ({"BASIS": "index", "INDEX_WEIGHTS": "potential:-1", "TOTAL_GOAL": 1000}, r"“potential”.*negative"),
    ({"BASIS": "index", "INDEX_WEIGHTS": "potential:0,sales:0", "TOTAL_GOAL": 1000}, r"Every index weight is 0"),
    ({"BASIS": "index", "INDEX_WEIGHTS": "visits:1", "TOTAL_GOAL": 1000}, r"“visits”, which is not in.*Use one of"),
    ({"BASIS": "potential", "TOTAL_GOAL": 1050, "ROUND_TO": 100}, r"not a multiple.*Make the total"),
    ({"BASIS": "potential", "TOTAL_GOAL": 1000, "HISTORY_FIELD": "sales", "HISTORY_WEIGHT": 0.5,
      "ROWS": [("A", 1.0, 0.0), ("B", 1.0, 0.0)]}, r"“sales” is 0 for every territory.*history weight to 0"),
]


@pytest.mark.parametrize("case, message", BAD)
def test_bad_goal_inputs_say_what_to_fix(run_algorithm, case, message):
    case = dict(case)
    rows = case.pop("ROWS", [("A", 1.0, 2.0), ("B", 3.0, 4.0)])
    layer = table_layer([{"territory": r[0], "potential": r[1], "sales": r[2] if len(r) > 2 else 1.0} for r in rows])
    parameters = {"INPUT": layer, "OUTPUT": "memory:"}
    parameters.update(case)
    with pytest.raises(QgsProcessingException, match=message):
        run_algorithm(ALG, parameters)


def test_a_layer_without_a_code_column_is_named(run_algorithm):
    layer = table_layer([{"region": "A", "potential": 1.0}], fields="region:string&field=potential:double")
    with pytest.raises(QgsProcessingException, match=r"no territory code column.*Territory field"):
        run_algorithm(ALG, {"INPUT": layer, "TOTAL_GOAL": 10, "BASIS": "potential", "OUTPUT": "memory:"})
    empty = table_layer([{"territory": None, "potential": 1.0}], fields="territory:string&field=potential:double")
    with pytest.raises(QgsProcessingException, match=r"No row has a territory code in “territory”"):
        run_algorithm(ALG, {"INPUT": empty, "TOTAL_GOAL": 10, "BASIS": "potential", "OUTPUT": "memory:"})
