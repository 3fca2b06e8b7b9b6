"""territory:buildterritories inside real QGIS, on real county layers.

Figures are checked independently of the algorithm: sums are recomputed from the output
features, contiguity from the published NC county contiguity (tests/data/nc_counties.gal).
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest
from qgis.core import (
    QgsFeature,
    QgsFeatureRequest,
    QgsGeometry,
    QgsPointXY,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProject,
    QgsVectorLayer,
)
from territory_planner.compat import STRING, make_field

ALG = "territory:buildterritories"
GAL = Path(__file__).resolve().parents[1] / "data" / "nc_counties.gal"


def _nc_neighbours() -> dict[str, set[str]]:
    lines = GAL.read_text().splitlines()[1:]
    neighbours = {}
    for head, tail in zip(lines[0::2], lines[1::2]):
        neighbours[head.split()[0]] = set(tail.split())
    return neighbours


def _assignment(layer, key="fips", field="territory") -> dict[str, str]:
    return {str(f[key]): f[field] for f in layer.getFeatures()}


def _sums(layer, measure, field="territory") -> dict[str, float]:
    sums = defaultdict(float)
    for feature in layer.getFeatures():
        sums[feature[field]] += float(feature[measure])
    return dict(sums)


def _connected(members: set[str], neighbours: dict[str, set[str]]) -> bool:
    start = next(iter(members))
    seen, stack = {start}, [start]
    while stack:
        for other in neighbours[stack.pop()] & members:
            if other not in seen:
                seen.add(other)
                stack.append(other)
    return seen == members


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


def _build(run_algorithm, layer, feedback=None, **parameters):
    params = {"INPUT": layer, "TERRITORY_COUNT": 8, "BALANCE_FIELDS": [], "TOLERANCE": 5, "CONTIGUOUS": True,
              "RANDOM_SEED": 0, "TIME_LIMIT": 10, "TERRITORY_FIELD": "territory", "OUTPUT": "memory:units",
              "OUTPUT_TERRITORIES": "memory:territories"}
    params.update(parameters)
    return run_algorithm(ALG, params, feedback=feedback)


def test_nc_births_balanced_on_both_measures_and_contiguous(run_algorithm, nc_layer):
    result = _build(run_algorithm, nc_layer, BALANCE_FIELDS=["births_1974", "births_1979"])
    units = result["OUTPUT"]
    assert units.featureCount() == 100
    assignment = _assignment(units)
    territories = set(assignment.values())
    assert len(territories) == 8 and None not in territories
    worst = 0.0
    for measure in ("births_1974", "births_1979"):
        sums = _sums(units, measure)
        target = sum(sums.values()) / 8
        for name, total in sums.items():
            deviation = abs(total - target) / target
            worst = max(worst, deviation)
            assert deviation <= 0.05 + 1e-9, f"{name}: {measure} off target by {deviation:.1%}"
    assert result["MAX_DEVIATION"] == pytest.approx(100 * worst, abs=0.01)
    neighbours = _nc_neighbours()
    for name in territories:
        members = {fips for fips, t in assignment.items() if t == name}
        assert _connected(members, neighbours), f"{name} is not contiguous"
    assert result["NONCONTIGUOUS"] == 0


def test_measures_that_pull_apart_reach_the_tolerance_within_the_time_limit(run_algorithm, ohio_valley_layer):
    """Population sits in Cleveland, Columbus, Cincinnati and Louisville, accounts (one per county)
    are spread over 263 counties: metro territories must reach out into rural counties. Five
    territories within 5 % on both, contiguous, inside TIME_LIMIT (the engine before issue 23 stayed
    at 5.3 % after 30 s). Build stops at TIME_LIMIT with the best plan so far (tests/unit/
    test_build_time_limit.py), so a plan within tolerance was found within it; how fast, on an idle
    machine, is the bench's business."""
    from qgis.core import QgsSpatialIndex

    result = _build(run_algorithm, ohio_valley_layer, TERRITORY_COUNT=5, BALANCE_FIELDS=["population", "accounts"],
                    TIME_LIMIT=60)
    units = result["OUTPUT"]
    assert units.featureCount() == 263
    for measure in ("population", "accounts"):
        sums = _sums(units, measure)
        target = sum(sums.values()) / 5
        assert len(sums) == 5
        for name, total in sums.items():
            assert abs(total - target) <= 0.05 * target + 1e-9, f"{name}: {measure} {total} against {target}"
    assert result["MAX_DEVIATION"] <= 5.0
    # contiguity from the county polygons themselves
    features = {str(f["fips"]): f for f in units.getFeatures()}
    index = QgsSpatialIndex(units.getFeatures())
    by_id = {f.id(): f for f in features.values()}
    neighbours = {fips: set() for fips in features}
    for fips, feature in features.items():
        geometry = feature.geometry()
        for other in index.intersects(geometry.boundingBox()):
            near = by_id[other]
            if str(near["fips"]) != fips and geometry.intersects(near.geometry()):
                neighbours[fips].add(str(near["fips"]))
    assignment = _assignment(units)
    for name in set(assignment.values()):
        members = {fips for fips, t in assignment.items() if t == name}
        assert _connected(members, neighbours), f"{name} is not contiguous"


def test_territory_layer_reports_the_figures(run_algorithm, nc_layer):
    result = _build(run_algorithm, nc_layer, BALANCE_FIELDS=["births_1974"], TERRITORY_COUNT=5)
    units, summary = result["OUTPUT"], result["OUTPUT_TERRITORIES"]
    sums = _sums(units, "births_1974")
    counts = defaultdict(int)
    for feature in units.getFeatures():
        counts[feature["territory"]] += 1
    assert summary.featureCount() == 5
    area = 0.0
    for feature in summary.getFeatures():
        name = feature["territory"]
        assert feature["units"] == counts[name]
        assert feature["births_1974"] == pytest.approx(sums[name])
        target = sum(sums.values()) / 5
        assert feature["births_1974_tgt"] == pytest.approx(target)
        assert feature["births_1974_dev"] == pytest.approx(100 * (sums[name] - target) / target, abs=0.01)
        assert feature["contiguous"] == 1
        assert 0 < feature["polsby"] <= 1
        area += feature["area_km2"]
    # NAD27 degrees in, square kilometres out: North Carolina is about 130,000 km².
    assert 120_000 < area < 140_000


def test_input_is_untouched_and_output_keeps_every_attribute(run_algorithm, georgia_layer):
    before = [(f.id(), f.attributes(), f.geometry().asWkt(3)) for f in georgia_layer.getFeatures()]
    result = _build(run_algorithm, georgia_layer, BALANCE_FIELDS=["population"], TERRITORY_COUNT=6)
    after = [(f.id(), f.attributes(), f.geometry().asWkt(3)) for f in georgia_layer.getFeatures()]
    assert before == after
    assert "territory" not in georgia_layer.fields().names()
    out = result["OUTPUT"]
    assert out.fields().names()[:-1] == georgia_layer.fields().names()
    original = {f["fips"]: f["population"] for f in georgia_layer.getFeatures()}
    assert {f["fips"]: f["population"] for f in out.getFeatures()} == original


@pytest.mark.slow(10)
def test_unit_counts_balanced_without_balance_fields(run_algorithm, georgia_layer):
    result = _build(run_algorithm, georgia_layer, TERRITORY_COUNT=10)
    counts = defaultdict(int)
    for feature in result["OUTPUT"].getFeatures():
        counts[feature["territory"]] += 1
    assert len(counts) == 10
    # 159 counties into 10: 15.9 each, ±5 % → 15 to 16 (integers), within one unit of the target
    assert all(abs(c - 15.9) <= 1.0 for c in counts.values()), counts


def test_same_random_seed_gives_the_same_plan(run_algorithm, georgia_layer):
    first = _assignment(_build(run_algorithm, georgia_layer, BALANCE_FIELDS=["population"], RANDOM_SEED=7)["OUTPUT"])
    second = _assignment(_build(run_algorithm, georgia_layer, BALANCE_FIELDS=["population"], RANDOM_SEED=7)["OUTPUT"])
    assert first == second


def _with_field(layer, name, values_by_fips):
    """A memory copy of ``layer`` with a text field ``name`` set from ``values_by_fips``."""
    copy = layer.materialize(QgsFeatureRequest())
    copy.startEditing()
    copy.addAttribute(make_field(name, STRING))
    copy.updateFields()
    index = copy.fields().lookupField(name)
    for feature in copy.getFeatures():
        value = values_by_fips.get(str(feature["fips"]))
        if value is not None:
            copy.changeAttributeValue(feature.id(), index, value)
    assert copy.commitChanges()
    return copy


@pytest.mark.slow(10)
def test_locked_units_keep_their_territory(run_algorithm, georgia_layer):
    locks = {"13121": "Atlanta", "13089": "Atlanta", "13051": "Savannah", "13029": "Savannah"}
    locked = _with_field(georgia_layer, "lock", locks)
    result = _build(run_algorithm, locked, BALANCE_FIELDS=["population"], TERRITORY_COUNT=6, LOCKED_FIELD="lock",
                    TOLERANCE=10)
    assignment = _assignment(result["OUTPUT"])
    for fips, name in locks.items():
        assert assignment[fips] == name
    assert len(set(assignment.values())) == 6


def test_locks_naming_more_territories_than_asked_are_refused(run_algorithm, georgia_layer):
    locks = {"13121": "A", "13089": "B", "13051": "C"}
    locked = _with_field(georgia_layer, "lock", locks)
    with pytest.raises(QgsProcessingException, match="3 territories"):
        _build(run_algorithm, locked, TERRITORY_COUNT=2, LOCKED_FIELD="lock")


def _seed_layer(points, crs="EPSG:4326"):
    layer = QgsVectorLayer(f"Point?crs={crs}&field=rep:string&field=share:double", "seeds", "memory")
    features = []
    for name, x, y, share in points:
        feature = QgsFeature(layer.fields())
        feature.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(x, y)))
        feature.setAttributes([name, share])
        features.append(feature)
    layer.dataProvider().addFeatures(features)
    return layer


def test_seeds_name_territories_and_unequal_targets_are_met(run_algorithm, nc_layer):
    # rep homes in WGS 84 (the units are in NAD27): Asheville, Greensboro, Raleigh, Wilmington (half-time)
    seeds = _seed_layer([("Asheville", -82.55, 35.60, 1.0), ("Greensboro", -79.79, 36.07, 1.0),
                         ("Raleigh", -78.64, 35.78, 1.0), ("Wilmington", -77.94, 34.23, 0.5)])
    result = _build(run_algorithm, nc_layer, BALANCE_FIELDS=["births_1974"], SEEDS=seeds, SEED_NAME_FIELD="rep",
                    SEED_TARGET_FIELD="share", TOLERANCE=10)
    sums = _sums(result["OUTPUT"], "births_1974")
    assert set(sums) == {"Asheville", "Greensboro", "Raleigh", "Wilmington"}
    total = sum(sums.values())
    for name, share in (("Asheville", 1.0), ("Greensboro", 1.0), ("Raleigh", 1.0), ("Wilmington", 0.5)):
        target = total * share / 3.5
        assert abs(sums[name] - target) <= 0.10 * target + 1e-6, (name, sums[name], target)
    assignment = _assignment(result["OUTPUT"], key="name")
    assert assignment["Buncombe"] == "Asheville"  # the county Asheville lies in
    assert assignment["New Hanover"] == "Wilmington"


def test_seeds_far_outside_the_units_are_refused(run_algorithm, nc_layer):
    # metre coordinates typed into a degree layer: a typical CRS mix-up
    seeds = _seed_layer([("A", 10.0, 50.0, 1.0), ("B", 12.0, 48.0, 1.0)])
    with pytest.raises(QgsProcessingException, match="far outside"):
        _build(run_algorithm, nc_layer, SEEDS=seeds, SEED_NAME_FIELD="rep")


def test_island_is_joined_and_reported(run_algorithm, georgia_layer):
    copy = georgia_layer.materialize(QgsFeatureRequest())
    island = QgsFeature(copy.fields())
    island.setGeometry(QgsGeometry.fromWkt("MultiPolygon(((1150000 3450000, 1160000 3450000, 1160000 3460000, "
                                           "1150000 3460000, 1150000 3450000)))"))
    island.setAttribute("fips", "island")
    island.setAttribute("population", 1000)
    assert copy.dataProvider().addFeatures([island])[0]
    feedback = Recorder()
    result = _build(run_algorithm, copy, feedback=feedback, BALANCE_FIELDS=["population"], TERRITORY_COUNT=5,
                    TOLERANCE=10)
    assignment = _assignment(result["OUTPUT"])
    assert assignment["island"] is not None
    island_id = max(f.id() for f in copy.getFeatures())
    assert any(str(island_id) in message and "island" in message.lower() for message in feedback.messages), \
        feedback.messages


def test_point_accounts_are_balanced_and_contiguous(run_algorithm, nc_layer):
    import processing

    points = processing.run("native:pointonsurface", {"INPUT": nc_layer, "OUTPUT": "memory:"})["OUTPUT"]
    result = _build(run_algorithm, points, BALANCE_FIELDS=["births_1979"], TERRITORY_COUNT=4)
    assert result["MAX_DEVIATION"] <= 5.0
    assert result["NONCONTIGUOUS"] == 0
    assert result["OUTPUT"].featureCount() == 100


@pytest.mark.parametrize("case", ["empty", "too_few_units", "negative", "null", "text_field", "broken_geometry"])
def test_bad_input_is_refused_with_a_clear_message(run_algorithm, case):
    layer = QgsVectorLayer("Polygon?crs=EPSG:3857&field=w:double&field=label:string", "bad", "memory")
    squares = [f"Polygon(({x} 0, {x + 10} 0, {x + 10} 10, {x} 10, {x} 0))" for x in range(0, 40, 10)]
    values = [1.0, 2.0, 3.0, 4.0]
    wkts = list(squares)
    count, fields, expected = 2, ["w"], None
    if case == "empty":
        wkts, expected = [], "no features"
    elif case == "too_few_units":
        count, expected = 5, "at most 4"
    elif case == "negative":
        values[2], expected = -1.0, "negative"
    elif case == "null":
        values[1], expected = None, "NULL"
    elif case == "text_field":
        fields, expected = ["label"], "BALANCE_FIELDS|not numeric"
    elif case == "broken_geometry":
        wkts[3], expected = "Polygon((30 0, 30 0, 30 0, 30 0))", "cannot be repaired|invalid geometry"
    features = []
    for wkt, value in zip(wkts, values):
        feature = QgsFeature(layer.fields())
        feature.setGeometry(QgsGeometry.fromWkt(wkt))
        feature.setAttributes([value, "x"])
        features.append(feature)
    layer.dataProvider().addFeatures(features)
    before = [f.attributes() for f in layer.getFeatures()]
    with pytest.raises(QgsProcessingException, match=expected):
        _build(run_algorithm, layer, TERRITORY_COUNT=count, BALANCE_FIELDS=fields)
    assert [f.attributes() for f in layer.getFeatures()] == before


def test_outputs_are_styled_one_colour_per_territory(territory_provider, georgia_layer, qgis_new_project):
    import processing

    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    result = processing.runAndLoadResults(ALG, {
        "INPUT": georgia_layer, "TERRITORY_COUNT": 6, "BALANCE_FIELDS": ["population"], "TOLERANCE": 10,
        "OUTPUT": "memory:", "OUTPUT_TERRITORIES": "memory:"}, context=context)
    for key in ("OUTPUT", "OUTPUT_TERRITORIES"):
        layer = QgsProject.instance().mapLayer(result[key])
        renderer = layer.renderer()
        assert renderer.type() == "categorizedSymbol"
        assert renderer.classAttribute() == "territory"
        named = [c for c in renderer.categories() if c.value() not in (None, "")]
        assert len(named) == 6
        assert len({c.symbol().color().name() for c in named}) == 6


class ProgressRecorder(Recorder):
    def __init__(self):
        super().__init__()
        self.texts = []

    def setProgressText(self, text):  # noqa: N802
        self.texts.append(text)
        super().setProgressText(text)


def test_lower_bound_names_the_oversized_unit(run_algorithm, georgia_layer):
    """Georgia in 12 territories: Fulton alone is 1.21 elderly targets, so no plan beats 20.96 %."""
    feedback = Recorder()
    result = _build(run_algorithm, georgia_layer, feedback=feedback, TERRITORY_COUNT=12,
                    BALANCE_FIELDS=["population", "elderly"], TIME_LIMIT=5)
    fulton = next(f.id() for f in georgia_layer.getFeatures() if str(f["fips"]) == "13121")
    elderly = [f["elderly"] for f in georgia_layer.getFeatures()]
    expected = 100 * (max(elderly) / (sum(elderly) / 12) - 1)
    assert result["LOWER_BOUND"] == pytest.approx(expected, abs=1e-3)
    assert result["LOWER_BOUND"] >= 20.9
    assert result["MAX_DEVIATION"] >= result["LOWER_BOUND"] - 1e-3
    said = [m for m in feedback.messages if "No plan can be better than" in m and "elderly" in m]
    assert said and f"Feature ids: {fulton}" in said[0], feedback.messages
    assert not any("impossible" in m.lower() for m in feedback.messages)


def test_lower_bound_is_zero_when_nothing_is_proven(run_algorithm, nc_layer):
    feedback = Recorder()
    result = _build(run_algorithm, nc_layer, feedback=feedback, TERRITORY_COUNT=4,
                    BALANCE_FIELDS=["births_1974"])
    assert result["LOWER_BOUND"] == 0
    assert any("LOWER_BOUND = 0" in m for m in feedback.messages)


@pytest.mark.slow(21)
def test_time_limit_buys_balance_and_the_progress_shows_the_worst_deviation(run_algorithm, georgia_layer):
    """Georgia on two measures in 8 territories: the quick plan is out of tolerance; more time helps."""
    quick = _build(run_algorithm, georgia_layer, TERRITORY_COUNT=8, BALANCE_FIELDS=["population", "elderly"],
                   TIME_LIMIT=0)
    feedback = ProgressRecorder()
    longer = _build(run_algorithm, georgia_layer, feedback=feedback, TERRITORY_COUNT=8,
                    BALANCE_FIELDS=["population", "elderly"], TIME_LIMIT=20)
    print(f"TIME_LIMIT 0: {quick['MAX_DEVIATION']:.2f} %, TIME_LIMIT 20: {longer['MAX_DEVIATION']:.2f} %")
    assert longer["MAX_DEVIATION"] <= quick["MAX_DEVIATION"]
    if quick["MAX_DEVIATION"] > 5:
        assert longer["MAX_DEVIATION"] < quick["MAX_DEVIATION"]
        assert any("worst deviation" in t for t in feedback.texts), feedback.texts[-5:]
    assert longer["NONCONTIGUOUS"] == 0


@pytest.mark.slow(8)
def test_units_too_heavy_to_share_a_territory_end_apart(run_algorithm, georgia_layer):
    """Fulton and DeKalb (neighbours) made 0.6 of a population target each: never together."""
    copy = georgia_layer.materialize(QgsFeatureRequest())
    heavy = {"13121", "13089"}
    rest = sum(f["population"] for f in copy.getFeatures() if str(f["fips"]) not in heavy)
    size = 0.125 * rest  # 0.6 x (rest + 2 size) / 6
    index = copy.fields().lookupField("population")
    changes = {f.id(): {index: size} for f in copy.getFeatures() if str(f["fips"]) in heavy}
    assert copy.dataProvider().changeAttributeValues(changes)
    for seed in (0, 1, 2):
        result = _build(run_algorithm, copy, TERRITORY_COUNT=6, BALANCE_FIELDS=["population"], RANDOM_SEED=seed,
                        TIME_LIMIT=5)
        territory = _assignment(result["OUTPUT"])
        assert territory["13121"] != territory["13089"], seed


def test_tolerances_per_balance_field(run_algorithm, georgia_layer):
    """Population within 5 %, elderly allowed 99 %: every territory meets the population band."""
    result = _build(run_algorithm, georgia_layer, TERRITORY_COUNT=6, BALANCE_FIELDS=["population", "elderly"],
                    TOLERANCES="5, 99", TIME_LIMIT=20)
    sums = _sums(result["OUTPUT"], "population")
    mean = sum(sums.values()) / len(sums)
    assert max(abs(v / mean - 1) for v in sums.values()) <= 0.05 + 1e-9
    assert result["NONCONTIGUOUS"] == 0


@pytest.mark.parametrize("text, fragment", [("5", "1 tolerance(s) were given for 2"), ("5,x", "not numbers"),
                                            ("5,120", "percentage")])
def test_bad_tolerances_are_refused(run_algorithm, georgia_layer, text, fragment):
    with pytest.raises(QgsProcessingException, match=re.escape(fragment)):
        _build(run_algorithm, georgia_layer, TERRITORY_COUNT=6, BALANCE_FIELDS=["population", "elderly"],
               TOLERANCES=text)
