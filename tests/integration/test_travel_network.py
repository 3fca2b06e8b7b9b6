"""Travel time and barriers inside real QGIS: synthetic cases with known answers and the bundled
real road network (central Helsinki, OpenStreetMap)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from qgis.core import (
    QgsFeature,
    QgsGeometry,
    QgsPointXY,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProject,
    QgsVectorLayer,
)

DATA = Path(__file__).resolve().parents[2] / "resources" / "data"

BUILD = "territory:buildterritories"
REBALANCE = "territory:rebalanceterritories"
CRS = "EPSG:32633"
X0, Y0 = 500_000.0, 6_000_000.0


class Recorder(QgsProcessingFeedback):
    def __init__(self):
        super().__init__()
        self.messages = []

    def pushWarning(self, warning):  # noqa: N802
        self.messages.append(warning)
        super().pushWarning(warning)

    def pushInfo(self, info):  # noqa: N802
        self.messages.append(info)
        super().pushInfo(info)

    def text(self) -> str:
        return "\n".join(self.messages)


def _layer(kind: str, fields: str, rows: list[tuple[QgsGeometry, list]], name: str = "layer") -> QgsVectorLayer:
    layer = QgsVectorLayer(f"{kind}?crs={CRS}{fields}", name, "memory")
    features = []
    for geometry, attributes in rows:
        feature = QgsFeature(layer.fields())
        feature.setGeometry(geometry)
        feature.setAttributes(attributes)
        features.append(feature)
    assert layer.dataProvider().addFeatures(features)
    return layer


def _line(*points) -> QgsGeometry:
    return QgsGeometry.fromPolylineXY([QgsPointXY(X0 + x, Y0 + y) for x, y in points])


def _point(x, y) -> QgsGeometry:
    return QgsGeometry.fromPointXY(QgsPointXY(X0 + x, Y0 + y))


def _build(run_algorithm, layer, feedback=None, **parameters):
    params = {"INPUT": layer, "TERRITORY_COUNT": 2, "BALANCE_FIELDS": [], "TOLERANCE": 5, "CONTIGUOUS": True,
              "RANDOM_SEED": 0, "TERRITORY_FIELD": "territory", "OUTPUT": "memory:units",
              "OUTPUT_TERRITORIES": "memory:territories"}
    params.update(parameters)
    return run_algorithm(BUILD, params, feedback=feedback)


# --- a river with one bridge ------------------------------------------------------------------

def _river_case():
    """10 x 10 square units of 100 m; a river runs north-south between columns 4 and 5; streets run
    through the unit centres; only the top row's street crosses the river (the bridge)."""
    cells = []
    for i in range(10):
        for j in range(10):
            square = QgsGeometry.fromRect(_rect(i * 100, j * 100, i * 100 + 100, j * 100 + 100))
            cells.append((square, [f"c{i}_{j}", i, j]))
    units = _layer("Polygon", "&field=name:string&field=col:integer&field=row:integer", cells, "units")
    streets = []
    for j in range(10):
        for i in range(9):
            if i == 4 and j != 9:
                continue  # no bridge here
            streets.append((_line((i * 100 + 50, j * 100 + 50), (i * 100 + 150, j * 100 + 50)), []))
    for i in range(10):
        for j in range(9):
            streets.append((_line((i * 100 + 50, j * 100 + 50), (i * 100 + 50, j * 100 + 150)), []))
    roads = _layer("LineString", "", streets, "roads")
    river = _layer("LineString", "", [(_line((500, -50), (500, 1050)), [])], "river")
    return units, roads, river


def _rect(x1, y1, x2, y2):
    from qgis.core import QgsRectangle

    return QgsRectangle(X0 + x1, Y0 + y1, X0 + x2, Y0 + y2)


def test_barrier_cuts_neighbours_except_at_the_bridge(qgis_app):
    from territory_planner.layers.network import NetworkSettings, cut_by_barriers, read_barriers, read_network
    from territory_planner.layers.units import read_units

    units_layer, roads, river = _river_case()
    context = QgsProject.instance().transformContext()
    units = read_units(units_layer, [], context)
    barriers = read_barriers(river, units, context)
    _, without_roads = cut_by_barriers(units, units.adjacency, barriers)
    road_layer = read_network(roads, units, NetworkSettings(), context)
    cut, with_roads = cut_by_barriers(units, units.adjacency, barriers, road_layer)
    assert without_roads == 10   # every pair of cells facing each other across the river
    assert with_roads == 9       # … except the pair the bridge joins
    west, east = units.index_of_fid[[f.id() for f in units_layer.getFeatures() if f["name"] == "c4_9"][0]], \
        units.index_of_fid[[f.id() for f in units_layer.getFeatures() if f["name"] == "c5_9"][0]]
    assert cut[west, east] and cut[east, west]


def test_territories_cross_the_river_only_at_the_bridge(run_algorithm, qgis_app):
    units, roads, river = _river_case()
    # road-network distance: no unit farther from its centre than in the straight-line plan
    worst = {}
    for distance in (0, 1):
        result = _build(run_algorithm, units, NETWORK=roads, DISTANCE=distance, BARRIERS=river, TERRITORY_COUNT=2)
        assert result["NONCONTIGUOUS"] == 0
        members = defaultdict(set)
        for feature in result["OUTPUT"].getFeatures():
            members[feature["territory"]].add(feature["name"])
        for names in members.values():
            cols = {int(n[1]) for n in names}
            if min(cols) <= 4 < max(cols):
                assert {"c4_9", "c5_9"} <= names
        worst[distance] = max(f["travel_min"] for f in result["OUTPUT"].getFeatures())
    assert worst[1] <= worst[0] + 1e-9
    # straight-line distance with the barrier: any territory on both banks holds both bridge ends
    result = _build(run_algorithm, units, BARRIERS=river, NETWORK=roads, TERRITORY_COUNT=5, TOLERANCE=10)
    members = defaultdict(set)
    for feature in result["OUTPUT"].getFeatures():
        members[feature["territory"]].add(feature["name"])
    assert result["NONCONTIGUOUS"] == 0
    for names in members.values():
        cols = {int(n[1]) for n in names}
        if min(cols) <= 4 < max(cols):
            assert {"c4_9", "c5_9"} <= names


# --- a one-way loop, a spur, a unit off the network ---------------------------------------------

def _loop_case(speed_a_b=None):
    """A 1 km square loop A(0,0) → B(1000,0) → C(1000,1000) → D(0,1000) → A, digitised in that
    order and tagged "F"; a 3 km spur east from 0.5 m beside C to E; accounts at A–E and one far away."""
    sides = [((0, 0), (1000, 0)), ((1000, 0), (1000, 1000)), ((1000, 1000), (0, 1000)), ((0, 1000), (0, 0))]
    rows = [(_line(a, b), ["F", speed_a_b if k == 0 else None]) for k, (a, b) in enumerate(sides)]
    rows.append((_line((1000.5, 1000), (4000, 1000)), ["both", None]))
    roads = _layer("LineString", "&field=oneway:string&field=kmh:double", rows, "roads")
    places = {"A": (0, 0), "B": (1000, 0), "C": (1000, 1000), "D": (0, 1000), "E": (4000, 1000),
              "Far away": (20_000, 20_000)}
    units = _layer("Point", "&field=name:string", [(_point(*xy), [name]) for name, xy in places.items()], "units")
    seeds = _layer("Point", "&field=rep:string", [(_point(0, 0), ["Anna"])], "seeds")
    return units, roads, seeds


def _travel(result) -> dict[str, float | None]:
    out = {}
    for feature in result["OUTPUT"].getFeatures():
        value = feature["travel_min"]
        out[feature["name"]] = None if value is None or (hasattr(value, "isNull") and value.isNull()) else value
    return out


def _loop_run(run_algorithm, feedback=None, **parameters):
    units, roads, seeds = _loop_case(parameters.pop("speed_a_b", None))
    params = dict(NETWORK=roads, SEEDS=seeds, SEED_NAME_FIELD="rep", TERRITORY_COUNT=1, DEFAULT_SPEED=60,
                  NETWORK_TOLERANCE=1.0, CONTIGUOUS=False)
    params.update(parameters)
    return _build(run_algorithm, units, feedback=feedback, **params)


def test_one_way_loop_travel_times(run_algorithm):
    forward = _travel(_loop_run(run_algorithm, DIRECTION_FIELD="oneway", VALUE_FORWARD="F"))
    assert forward["A"] == pytest.approx(0.0)
    assert forward["B"] == pytest.approx(1.0)
    assert forward["C"] == pytest.approx(2.0)
    assert forward["D"] == pytest.approx(3.0)
    assert forward["E"] == pytest.approx(5.0, abs=2e-3)  # C, then 3 km of spur
    # road-network distance with a seed: the same times, measured from the seed
    assert _travel(_loop_run(run_algorithm, DISTANCE=1, DIRECTION_FIELD="oneway", VALUE_FORWARD="F")) == forward
    backward = _travel(_loop_run(run_algorithm, DIRECTION_FIELD="oneway", VALUE_BACKWARD="F"))
    assert (backward["B"], backward["D"]) == (pytest.approx(3.0), pytest.approx(1.0))
    both = _travel(_loop_run(run_algorithm, DIRECTION_FIELD="oneway", VALUE_BOTH="F", VALUE_FORWARD="x"))
    assert (both["B"], both["C"], both["D"]) == (pytest.approx(1.0), pytest.approx(2.0), pytest.approx(1.0))
    # values that match nothing take the default direction
    default = _travel(_loop_run(run_algorithm, DIRECTION_FIELD="oneway", VALUE_FORWARD="x", DEFAULT_DIRECTION=0))
    assert default["D"] == pytest.approx(3.0)


def test_speed_field_and_default_speed(run_algorithm):
    slow = _travel(_loop_run(run_algorithm, SPEED_FIELD="kmh", speed_a_b=30))
    assert slow["B"] == pytest.approx(2.0)  # 1 km at 30 km/h (the way round by D and C takes 3 min)
    assert slow["D"] == pytest.approx(1.0)
    quick = _travel(_loop_run(run_algorithm, SPEED_FIELD="kmh", speed_a_b=120))
    assert quick["B"] == pytest.approx(0.5)
    half = _travel(_loop_run(run_algorithm, DEFAULT_SPEED=30))
    assert half["C"] == pytest.approx(4.0)


def test_network_tolerance_joins_the_spur_and_off_network_unit_is_named(run_algorithm):
    feedback = Recorder()
    joined = _travel(_loop_run(run_algorithm, feedback, NETWORK_TOLERANCE=1.0))
    assert joined["E"] == pytest.approx(5.0, abs=2e-3)
    assert joined["Far away"] is None
    assert "“Far away”" in feedback.text() and "from the road network" in feedback.text()
    apart = _travel(_loop_run(run_algorithm, NETWORK_TOLERANCE=0.0))
    assert apart["E"] is None  # the spur is not connected: E is 3 km from the loop


def test_travel_needs_a_network(run_algorithm):
    units, _, _ = _loop_case()
    with pytest.raises(QgsProcessingException, match="road network"):
        _build(run_algorithm, units, DISTANCE=1, TERRITORY_COUNT=1)
    with pytest.raises(QgsProcessingException, match="road network"):
        _build(run_algorithm, units, MAX_TRAVEL_TIME=5, TERRITORY_COUNT=1)


# --- the bundled real network -----------------------------------------------------------------

@pytest.fixture
def helsinki(tmp_path):
    import shutil

    layers = {}
    for name in ("roads", "accounts", "railways"):  # one private copy per layer
        path = tmp_path / f"helsinki_{name}.gpkg"
        shutil.copy(DATA / "helsinki_roads.gpkg", path)
        layers[name] = QgsVectorLayer(f"{path}|layername={name}", name, "ogr")
    assert all(layer.isValid() for layer in layers.values())
    yield layers
    layers.clear()  # layers left to the end of the session would outlive QGIS and crash it


REAL_NETWORK = dict(SPEED_FIELD="speed_kmh", DEFAULT_SPEED=30, DIRECTION_FIELD="oneway", VALUE_FORWARD="yes",
                    VALUE_BACKWARD="-1", VALUE_BOTH="no", DEFAULT_DIRECTION=2, NETWORK_TOLERANCE=0.5)


def test_travel_min_agrees_with_qgis_shortest_path(run_algorithm, helsinki):
    """travel_min equals native:shortestpathpointtopoint (fastest) from the territory's centre node to
    the unit's node, on sampled accounts, within 1 %."""
    import processing
    from territory_planner.core import travel
    from territory_planner.layers.network import NetworkSettings, read_network
    from territory_planner.layers.units import read_units

    feedback = Recorder()
    result = _build(run_algorithm, helsinki["accounts"], feedback, NETWORK=helsinki["roads"], DISTANCE=1,
                    TERRITORY_COUNT=5, **REAL_NETWORK)
    out = result["OUTPUT"]
    context = QgsProject.instance().transformContext()
    units = read_units(out, [], context, with_adjacency=False)
    settings = NetworkSettings(speed_field="speed_kmh", default_speed=30, direction_field="oneway",
                               value_forward="yes", value_backward="-1", value_both="no", tolerance=0.5)
    network = read_network(helsinki["roads"], units, settings, context).network
    snapped = travel.snap(network, units.positions)
    by_territory = defaultdict(list)
    for feature in out.getFeatures():
        i = units.index_of_fid[feature.id()]
        by_territory[feature["territory"]].append((i, feature["travel_min"]))
    rng = np.random.default_rng(7)
    checked = 0
    for members in by_territory.values():
        centre = [i for i, t in members if t == 0.0][0]  # travel is measured from the centre unit's node
        reachable = [(i, t) for i, t in members if t is not None and not hasattr(t, "isNull") and t > 0.5]
        for k in rng.choice(len(reachable), size=min(3, len(reachable)), replace=False):
            i, minutes = reachable[int(k)]
            start = network.nodes[snapped.node[centre]]
            end = network.nodes[snapped.node[i]]
            path = processing.run("native:shortestpathpointtopoint", {
                "INPUT": helsinki["roads"], "STRATEGY": 1, "DIRECTION_FIELD": "oneway", "VALUE_FORWARD": "yes",
                "VALUE_BACKWARD": "-1", "VALUE_BOTH": "no", "DEFAULT_DIRECTION": 2, "SPEED_FIELD": "speed_kmh",
                "DEFAULT_SPEED": 30, "TOLERANCE": 0.5,
                "START_POINT": f"{start[0]},{start[1]} [EPSG:3067]", "END_POINT": f"{end[0]},{end[1]} [EPSG:3067]",
                "OUTPUT": "memory:"})["OUTPUT"]
            hours = next(path.getFeatures())["cost"]
            assert minutes == pytest.approx(hours * 60.0, rel=0.01)
            checked += 1
    assert checked >= 10


def test_max_travel_time_names_the_units_beyond_it(run_algorithm, helsinki):
    base = _build(run_algorithm, helsinki["accounts"], NETWORK=helsinki["roads"], DISTANCE=1, TERRITORY_COUNT=4,
                  TOLERANCE=10, **REAL_NETWORK)
    before = [f["travel_min"] for f in base["OUTPUT"].getFeatures() if f["travel_min"] is not None]
    limit = round(float(np.percentile(before, 97)), 2)
    over_before = sum(t > limit for t in before)
    feedback = Recorder()
    limited = _build(run_algorithm, helsinki["accounts"], feedback, NETWORK=helsinki["roads"], DISTANCE=1,
                     TERRITORY_COUNT=4, TOLERANCE=10, MAX_TRAVEL_TIME=limit, **REAL_NETWORK)
    over = [f for f in limited["OUTPUT"].getFeatures() if f["travel_min"] is not None and f["travel_min"] > limit]
    assert len(over) <= over_before
    assert "moved to a neighbouring territory" in feedback.text() or len(over) == over_before
    if over:  # the units still beyond the limit are counted and named (the first 20)
        warning = [m for m in feedback.messages if "minutes from their territory's centre" in m][0]
        assert warning.startswith(f"{len(over)} units are more than {limit:g} minutes")
        for feature in over[:20]:
            if f"(feature {feature.id()})" not in warning:
                assert warning.count("(feature ") == 20
    assert limited["MAX_DEVIATION"] <= 10 + 1e-6 or limited["MAX_DEVIATION"] <= base["MAX_DEVIATION"] + 1e-6


def test_railway_barrier_on_the_real_network(run_algorithm, helsinki):
    feedback = Recorder()
    result = _build(run_algorithm, helsinki["accounts"], feedback, NETWORK=helsinki["roads"], DISTANCE=1,
                    BARRIERS=helsinki["railways"], TERRITORY_COUNT=4, TOLERANCE=10, **REAL_NETWORK)
    cut = [m for m in feedback.messages if m.startswith("Barriers:")]
    assert cut and int(cut[0].split()[1]) > 0
    assert result["NONCONTIGUOUS"] == 0
    assert "travel_min" in result["OUTPUT"].fields().names()


def test_rebalance_in_travel_time(run_algorithm, helsinki):
    built = _build(run_algorithm, helsinki["accounts"], TERRITORY_COUNT=4, TOLERANCE=10)
    feedback = Recorder()
    result = run_algorithm(REBALANCE, {
        "INPUT": built["OUTPUT"], "TERRITORY_FIELD": "territory", "BALANCE_FIELDS": [], "TOLERANCE": 3,
        "CONTIGUOUS": True, "NETWORK": helsinki["roads"], "DISTANCE": 1, "BARRIERS": helsinki["railways"],
        "OUTPUT": "memory:", "OUTPUT_TERRITORIES": "memory:", **REAL_NETWORK}, feedback=feedback)
    values = [f["travel_min"] for f in result["OUTPUT"].getFeatures()]
    known = [v for v in values if v is not None and not (hasattr(v, "isNull") and v.isNull())]
    assert len(known) >= 0.9 * len(values) and min(known) == 0.0
    assert result["MAX_DEVIATION"] <= 3 + 1e-6



def test_assign_reps_by_travel_time_on_a_one_way_loop(run_algorithm):
    """Ann lives 100 m from A towards D, Bob 100 m from C towards B. In straight lines Ann is
    nearer D and Bob nearer B; on the one-way loop A → B → C → D → A, Ann reaches B in 1 minute
    and D in 3, Bob reaches D in 1 and B in 3: the matching flips."""
    units, roads, _ = _loop_case()
    territory = {"B": "T1", "D": "T2"}
    layer = _layer("Point", "&field=name:string&field=territory:string",
                   [(f.geometry(), [f["name"], territory.get(f["name"])]) for f in units.getFeatures()], "units")
    reps = _layer("Point", "&field=rep:string", [(_point(0, 100), ["Ann"]), (_point(1000, 900), ["Bob"])], "reps")
    params = {"INPUT": layer, "TERRITORY_FIELD": "territory", "REPS": reps, "REP_NAME_FIELD": "rep",
              "OUTPUT": "memory:", "OUTPUT_TERRITORIES": "memory:"}
    straight = run_algorithm("territory:assignreps", params)
    rep_of = {f["territory"]: f["rep"] for f in straight["OUTPUT_TERRITORIES"].getFeatures()}
    assert rep_of == {"T1": "Bob", "T2": "Ann"}
    road = run_algorithm("territory:assignreps", dict(params, NETWORK=roads, DIRECTION_FIELD="oneway",
                                                      VALUE_FORWARD="F", DEFAULT_SPEED=60))
    figures = {f["territory"]: (f["rep"], f["rep_avg_min"], f["rep_max_min"])
               for f in road["OUTPUT_TERRITORIES"].getFeatures()}
    assert figures["T1"] == ("Ann", pytest.approx(1.0), pytest.approx(1.0))
    assert figures["T2"] == ("Bob", pytest.approx(1.0), pytest.approx(1.0))


def test_statistics_report_travel_time_from_the_rep(run_algorithm, tmp_path):
    """Ann lives at A on the one-way loop; her territory is B, C, D (1, 2, 3 minutes away)."""
    units, roads, _ = _loop_case()
    territory = {"B": ("T1", 1.0), "C": ("T1", 1.0), "D": ("T1", 2.0)}
    layer = _layer("Point", "&field=name:string&field=territory:string&field=visits:double",
                   [(f.geometry(), [f["name"], *territory.get(f["name"], (None, 0.0))]) for f in units.getFeatures()],
                   "units")
    reps = _layer("Point", "&field=rep:string&field=territory:string", [(_point(0, 0), ["Ann", "T1"])], "reps")
    html = tmp_path / "report.html"
    result = run_algorithm("territory:territorystatistics", {
        "INPUT": layer, "TERRITORY_FIELD": "territory", "BALANCE_FIELDS": ["visits"], "TOLERANCE": 5, "REPS": reps,
        "REP_NAME_FIELD": "rep", "REP_TERRITORY_FIELD": "territory", "NETWORK": roads, "DIRECTION_FIELD": "oneway",
        "VALUE_FORWARD": "F", "DEFAULT_SPEED": 60, "OUTPUT": "memory:", "OUTPUT_HTML": str(html)})
    feature = next(result["OUTPUT"].getFeatures())
    assert feature["rep_avg_min"] == pytest.approx(2.0)
    assert feature["rep_wavg_min"] == pytest.approx((1 * 1 + 2 * 1 + 3 * 2) / 4)
    assert feature["rep_max_min"] == pytest.approx(3.0)
    assert "Rep max min" in html.read_text(encoding="utf-8")
