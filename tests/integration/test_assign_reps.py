"""Assign reps to territories inside real QGIS: the matching is the best of all permutations,
vacancies and spare reps are named, kept pairs are honoured, bad reps layers are refused."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsCoordinateTransformContext,
    QgsFeature,
    QgsGeometry,
    QgsPointXY,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProject,
    QgsVectorLayer,
)
from territory_planner.compat import STRING, make_field

TERRITORIES = 6
WGS84 = QgsCoordinateReferenceSystem("EPSG:4326")


class RecordingFeedback(QgsProcessingFeedback):
    def __init__(self):
        super().__init__()
        self.warnings: list[str] = []

    def pushWarning(self, text):
        self.warnings.append(text)
        super().pushWarning(text)


def as_layer(value) -> QgsVectorLayer:
    if isinstance(value, QgsVectorLayer):
        return value
    layer = QgsVectorLayer(value, "output", "ogr")
    assert layer.isValid(), value
    return layer


def snapshot(layer: QgsVectorLayer) -> list:
    return sorted((f.id(), [str(a) for a in f.attributes()], f.geometry().asWkt(3)) for f in layer.getFeatures())


@pytest.fixture
def plan(built_plan):
    """This test's own copy of a Georgia plan, built once per worker (conftest.built_plan)."""
    return built_plan("georgia_counties.gpkg", TERRITORY_COUNT=TERRITORIES, BALANCE_FIELDS=["population"],
                      TOLERANCE=5, RANDOM_SEED=3)["OUTPUT"]


def reps_layer(plan: QgsVectorLayer, count: int, seed: int = 11, names=None, kept=None) -> QgsVectorLayer:
    """``count`` rep homes at random places inside the units' extent, stored in WGS 84 lon/lat."""
    layer = QgsVectorLayer("Point?crs=EPSG:4326", "reps", "memory")
    layer.dataProvider().addAttributes([make_field("name", STRING), make_field("keep", STRING)])
    layer.updateFields()
    to_wgs84 = QgsCoordinateTransform(plan.crs(), WGS84, QgsProject.instance())
    extent = plan.extent()
    rng = np.random.default_rng(seed)
    features = []
    for r in range(count):
        point = QgsPointXY(rng.uniform(extent.xMinimum(), extent.xMaximum()),
                           rng.uniform(extent.yMinimum(), extent.yMaximum()))
        feature = QgsFeature(layer.fields())
        feature.setGeometry(QgsGeometry.fromPointXY(to_wgs84.transform(point)))
        name = names[r] if names is not None else f"Rep {chr(65 + r)}"
        feature.setAttributes([name, (kept or {}).get(name)])
        features.append(feature)
    layer.dataProvider().addFeatures(features)
    return layer


def cost_matrix(plan: QgsVectorLayer, reps: QgsVectorLayer, balance_fields: list[str]):
    """Territories × reps: the workload-weighted distance (m) from each home to each territory's
    units, computed here from the unit points and the reps' projected homes."""
    from territory_planner.layers.units import read_units

    units = read_units(plan, balance_fields, QgsCoordinateTransformContext(), with_adjacency=False)
    territory_of = {f.id(): f["territory"] for f in plan.getFeatures()}
    names = sorted(set(territory_of.values()))
    labels = np.array([names.index(territory_of[int(fid)]) for fid in units.fids])
    if balance_fields:
        weights = (units.workloads / units.workloads.sum(axis=0)).sum(axis=1)
    else:
        weights = np.ones(units.count)
    to_metric = QgsCoordinateTransform(reps.crs(), units.metric_crs, QgsProject.instance())
    rep_names, homes = [], []
    for feature in reps.getFeatures():
        point = to_metric.transform(feature.geometry().asPoint())
        rep_names.append(feature["name"])
        homes.append((point.x() * units.unit_factor, point.y() * units.unit_factor))
    homes = np.array(homes)
    costs = np.zeros((len(names), len(homes)))
    for k in range(len(names)):
        members = labels == k
        for r in range(len(homes)):
            distance = np.hypot(*(units.positions[members] - homes[r]).T)
            costs[k, r] = float((weights[members] * distance).sum())
    return names, rep_names, costs, weights, labels


def best_total(costs: np.ndarray, kept: dict[int, int] | None = None) -> float:
    """Brute force over every one-to-one matching (all permutations of the larger side)."""
    p, r = costs.shape
    kept = kept or {}
    best = np.inf
    for chosen in itertools.permutations(range(max(p, r)), min(p, r)):
        pairs = list(enumerate(chosen)) if p <= r else [(t, j) for j, t in enumerate(chosen)]
        if any(dict(pairs).get(k) != j for k, j in kept.items()):
            continue
        best = min(best, sum(costs[k, j] for k, j in pairs))
    return float(best)


def matching_of(result) -> dict[str, str]:
    territories = as_layer(result["OUTPUT_TERRITORIES"])
    return {f["territory"]: f["rep"] for f in territories.getFeatures()}


def total_of(matching: dict[str, str], names, rep_names, costs) -> float:
    return float(sum(costs[names.index(t), rep_names.index(r)] for t, r in matching.items() if r in rep_names))


def assign(run_algorithm, plan, reps, feedback=None, **extra):
    parameters = {"INPUT": plan, "TERRITORY_FIELD": "territory", "REPS": reps, "REP_NAME_FIELD": "name",
                  "BALANCE_FIELDS": ["population"], "OUTPUT": "TEMPORARY_OUTPUT",
                  "OUTPUT_TERRITORIES": "TEMPORARY_OUTPUT"}
    parameters.update(extra)
    return run_algorithm("territory:assignreps", parameters, feedback=feedback)


def test_matching_is_the_best_of_all_permutations(run_algorithm, plan):
    reps = reps_layer(plan, TERRITORIES)
    before = [snapshot(plan), snapshot(reps)]
    result = assign(run_algorithm, plan, reps)
    assert [snapshot(plan), snapshot(reps)] == before, "the algorithm must not modify its inputs"
    names, rep_names, costs, weights, labels = cost_matrix(plan, reps, ["population"])
    matching = matching_of(result)
    assert sorted(matching.values()) == sorted(rep_names)
    assert total_of(matching, names, rep_names, costs) == pytest.approx(best_total(costs), rel=1e-9)

    # every unit carries its territory's rep; rep_avg_km is the weighted mean distance
    units = as_layer(result["OUTPUT"])
    for feature in units.getFeatures():
        assert feature["rep"] == matching[feature["territory"]]
    for feature in as_layer(result["OUTPUT_TERRITORIES"]).getFeatures():
        k, r = names.index(feature["territory"]), rep_names.index(feature["rep"])
        expected = costs[k, r] / weights[labels == k].sum() / 1000
        assert feature["rep_avg_km"] == pytest.approx(expected, rel=1e-6)
        assert feature["vacancy"] == 0
    assert result["VACANCIES"] == 0 and result["UNASSIGNED_REPS"] == ""


def test_more_territories_than_reps_gives_named_vacancies(run_algorithm, plan):
    reps = reps_layer(plan, 4, seed=5)
    feedback = RecordingFeedback()
    result = assign(run_algorithm, plan, reps, feedback=feedback)
    names, rep_names, costs, _, _ = cost_matrix(plan, reps, ["population"])
    matching = matching_of(result)
    vacant = sorted(r for r in matching.values() if r not in rep_names)
    assert vacant == ["Vacancy 1", "Vacancy 2"]
    assert result["VACANCIES"] == 2
    assert total_of(matching, names, rep_names, costs) == pytest.approx(best_total(costs), rel=1e-9)
    assert any("no rep" in w for w in feedback.warnings)


def test_spare_reps_are_listed(run_algorithm, plan):
    reps = reps_layer(plan, 8, seed=9)
    feedback = RecordingFeedback()
    result = assign(run_algorithm, plan, reps, feedback=feedback)
    names, rep_names, costs, _, _ = cost_matrix(plan, reps, ["population"])
    matching = matching_of(result)
    spare = sorted(set(rep_names) - set(matching.values()))
    assert len(spare) == 2
    assert sorted(result["UNASSIGNED_REPS"].split(", ")) == spare
    assert any(all(name in w for name in spare) for w in feedback.warnings)
    assert total_of(matching, names, rep_names, costs) == pytest.approx(best_total(costs), rel=1e-9)


def test_kept_pairs_are_honoured(run_algorithm, plan):
    reps = reps_layer(plan, TERRITORIES)
    free = matching_of(assign(run_algorithm, plan, reps))
    names, rep_names, costs, _, _ = cost_matrix(plan, reps, ["population"])
    # keep Rep A on a territory the free optimum gives to someone else
    territory = next(t for t, r in free.items() if r != "Rep A")
    kept_reps = reps_layer(plan, TERRITORIES, kept={"Rep A": territory})
    result = assign(run_algorithm, plan, kept_reps, REP_TERRITORY_FIELD="keep")
    matching = matching_of(result)
    assert matching[territory] == "Rep A"
    kept = {names.index(territory): rep_names.index("Rep A")}
    total = total_of(matching, names, rep_names, costs)
    assert total == pytest.approx(best_total(costs, kept), rel=1e-9)
    assert total > best_total(costs)
    kept_flags = {f["territory"]: f["kept"] for f in as_layer(result["OUTPUT_TERRITORIES"]).getFeatures()}
    assert kept_flags[territory] == 1 and sum(kept_flags.values()) == 1


def test_geographic_units_without_weights(run_algorithm, nc_layer, tmp_path):
    built = run_algorithm("territory:buildterritories", {
        "INPUT": nc_layer, "TERRITORY_COUNT": 5, "BALANCE_FIELDS": ["births_1974"], "TOLERANCE": 5,
        "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_TERRITORIES": "TEMPORARY_OUTPUT"})
    plan = as_layer(built["OUTPUT"])
    reps = reps_layer(plan, 5, seed=2)
    result = assign(run_algorithm, plan, reps, BALANCE_FIELDS=[], OUTPUT=str(tmp_path / "units.shp"),
                    OUTPUT_TERRITORIES=str(tmp_path / "territories.xlsx"))
    names, rep_names, costs, _, _ = cost_matrix(plan, reps, [])
    matching = {f["territory"]: f["rep"] for f in as_layer(str(tmp_path / "territories.xlsx")).getFeatures()}
    assert total_of(matching, names, rep_names, costs) == pytest.approx(best_total(costs), rel=1e-9)
    # NC is about 800 km wide: a mean distance in kilometres, not degrees or metres
    assert 5 < result["MEAN_DISTANCE_KM"] < 800
    assert as_layer(str(tmp_path / "units.shp")).featureCount() == 100


@pytest.mark.parametrize("names, kept, message", [
    (["Rep A", None, "Rep C"], None, "no name"),
    (["Rep A", "Rep B", "Rep A"], None, "unique"),
    (["Rep A", "Rep B", "Rep C"], {"Rep B": "Atlantis"}, "Atlantis"),
    (["Rep A", "Rep B", "Rep C"], {"Rep A": "T", "Rep C": "T"}, "two reps"),
])
def test_bad_reps_are_refused(run_algorithm, plan, names, kept, message):
    territory = next(plan.getFeatures())["territory"]
    if kept:
        kept = {k: (territory if v == "T" else v) for k, v in kept.items()}
    reps = reps_layer(plan, 3, names=names, kept=kept)
    with pytest.raises(QgsProcessingException, match=message):
        assign(run_algorithm, plan, reps, REP_TERRITORY_FIELD="keep")


def test_a_rep_without_a_location_is_refused_by_name(run_algorithm, plan):
    """Assign reps matches on the distance from home, so it cannot skip a rep without one (the
    others warn and go on: layers/reps.py)."""
    reps = reps_layer(plan, 3)
    reps.dataProvider().changeGeometryValues({2: QgsGeometry()})
    with pytest.raises(QgsProcessingException, match="Rep “Rep B” \\(feature 2\\) has no location.*their home"):
        assign(run_algorithm, plan, reps)


def test_outputs_load_styled(territory_provider, plan, qgis_new_project):
    import processing
    from qgis.core import QgsProcessingContext

    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    result = processing.runAndLoadResults("territory:assignreps", {
        "INPUT": plan, "TERRITORY_FIELD": "territory", "REPS": reps_layer(plan, TERRITORIES), "REP_NAME_FIELD": "name",
        "OUTPUT": "memory:", "OUTPUT_TERRITORIES": "memory:"}, context=context)
    for key, field in (("OUTPUT", "rep"), ("OUTPUT_TERRITORIES", "territory")):
        renderer = QgsProject.instance().mapLayer(result[key]).renderer()
        assert renderer.type() == "categorizedSymbol" and renderer.classAttribute() == field
        named = [c for c in renderer.categories() if c.value() not in (None, "")]
        assert len({c.symbol().color().name() for c in named}) == len(named) == TERRITORIES


def test_progress_is_reported_and_cancel_stops_the_run(run_algorithm, plan):
    reps = reps_layer(plan, TERRITORIES)
    feedback = QgsProcessingFeedback()
    seen: list[float] = []
    feedback.progressChanged.connect(seen.append)
    assign(run_algorithm, plan, reps, feedback=feedback)
    assert max(seen) >= 90 and seen == sorted(seen)

    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda value: feedback.cancel() if value > 50 else None)
    with pytest.raises(QgsProcessingException):
        assign(run_algorithm, plan, reps, feedback=feedback)


def test_reps_output_carries_the_territory_code_and_statistics_joins_by_it(run_algorithm, plan, tmp_path):
    reps = reps_layer(plan, TERRITORIES + 1)  # one rep too many: no territory
    result = assign(run_algorithm, plan, reps, OUTPUT_REPS="TEMPORARY_OUTPUT")
    matching = matching_of(result)
    out_reps = as_layer(result["OUTPUT_REPS"])
    code_of = {f["name"]: f["territory"] for f in out_reps.getFeatures()}
    assert {rep: code for rep, code in code_of.items() if code} == {rep: t for t, rep in matching.items()}
    spare = [rep for rep, code in code_of.items() if not code]
    assert len(spare) == 1

    # Statistics reads each rep's territory from the code the reps output carries
    stats = run_algorithm("territory:territorystatistics", {
        "INPUT": plan, "TERRITORY_FIELD": "territory", "BALANCE_FIELDS": ["population"], "REPS": out_reps,
        "REP_NAME_FIELD": "name", "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_HTML": str(tmp_path / "report.html")})
    assert stats["TERRITORY_COUNT"] == TERRITORIES  # reps never invent territories
    rows = {f["territory"]: f["rep"] for f in as_layer(stats["OUTPUT"]).getFeatures()}
    assert rows == matching
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert f"Rep “{spare[0]}”" in html and "has no territory" in html
