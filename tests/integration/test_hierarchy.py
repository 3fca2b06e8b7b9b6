"""Build territory hierarchy inside real QGIS: regions are contiguous, balanced groups of whole
territories, and running it again on the regions gives a third level."""

from __future__ import annotations

import numpy as np
import pytest
from qgis.core import (
    QgsCoordinateTransformContext,
    QgsFeatureRequest,
    QgsProcessingException,
    QgsVectorLayer,
)
from scipy.sparse.csgraph import connected_components

TERRITORIES = 8
TERRITORY_TOLERANCE = 3.0
REGION_TOLERANCE = 5.0
MEASURE = "births_1974"


def as_layer(value) -> QgsVectorLayer:
    if isinstance(value, QgsVectorLayer):
        return value
    layer = QgsVectorLayer(value, "output", "ogr")
    assert layer.isValid(), value
    return layer


def snapshot(layer: QgsVectorLayer) -> list:
    return sorted((f.id(), [str(a) for a in f.attributes()]) for f in layer.getFeatures())


def groups(layer: QgsVectorLayer, inner: str, outer: str) -> dict[str, set[str]]:
    """For each value of ``inner``, the set of ``outer`` values its units carry."""
    out: dict[str, set[str]] = {}
    for f in layer.getFeatures():
        out.setdefault(f[inner], set()).add(f[outer])
    return out


def pieces(layer: QgsVectorLayer, field: str) -> dict[str, int]:
    """Connected pieces of every group of units, using the plugin's unit adjacency."""
    from territory_planner.layers.units import read_units

    units = read_units(layer, [], QgsCoordinateTransformContext())
    label_of = {f.id(): f[field] for f in layer.getFeatures()}
    labels = np.array([label_of[int(fid)] for fid in units.fids])
    out = {}
    for name in set(labels):
        members = np.flatnonzero(labels == name)
        out[name] = connected_components(units.adjacency[members][:, members], directed=False)[0]
    return out


def deviation(layer: QgsVectorLayer, field: str) -> float:
    sums: dict[str, float] = {}
    for f in layer.getFeatures():
        sums[f[field]] = sums.get(f[field], 0.0) + float(f[MEASURE])
    totals = np.array(list(sums.values()))
    return float(np.abs(totals / totals.mean() - 1).max() * 100)


@pytest.fixture
def plan(built_plan):
    """This test's own copy of a North Carolina plan, built once per worker (conftest.built_plan)."""
    result = built_plan("nc_counties.gpkg", TERRITORY_COUNT=TERRITORIES, BALANCE_FIELDS=[MEASURE],
                        TOLERANCE=TERRITORY_TOLERANCE, RANDOM_SEED=1)
    layer = result["OUTPUT"]
    # Territories within 3 % make any grouping of equal numbers of them a region within 5 %.
    assert result["MAX_DEVIATION"] <= TERRITORY_TOLERANCE, "the territories should be balanced to start with"
    return layer


def hierarchy(run_algorithm, layer, territory_field, count, region_field="region", feedback=None, **extra):
    parameters = {"INPUT": layer, "TERRITORY_FIELD": territory_field, "REGION_COUNT": count,
                  "BALANCE_FIELDS": [MEASURE], "TOLERANCE": REGION_TOLERANCE, "REGION_FIELD": region_field,
                  "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_REGIONS": "TEMPORARY_OUTPUT"}
    parameters.update(extra)
    return run_algorithm("territory:buildhierarchy", parameters, feedback=feedback)


def test_regions_are_contiguous_balanced_groups_of_whole_territories(run_algorithm, plan):
    before = snapshot(plan)
    result = hierarchy(run_algorithm, plan, "territory", 4)
    assert snapshot(plan) == before
    units = as_layer(result["OUTPUT"])
    assert units.featureCount() == plan.featureCount()

    # every territory lies wholly in one region; every region has whole territories
    regions_of_territory = groups(units, "territory", "region")
    assert all(len(r) == 1 for r in regions_of_territory.values())
    assert len(set().union(*regions_of_territory.values())) == 4
    assert all(count == 1 for count in pieces(units, "region").values())
    assert deviation(units, "region") == pytest.approx(result["MAX_DEVIATION"], abs=1e-3)
    assert result["MAX_DEVIATION"] <= REGION_TOLERANCE
    assert result["NONCONTIGUOUS"] == 0

    regions = as_layer(result["OUTPUT_REGIONS"])
    assert regions.featureCount() == 4
    members = groups(units, "region", "territory")
    for feature in regions.getFeatures():
        assert feature["terr_count"] == len(members[feature["region"]])
        assert set(feature["members"].split(", ")) == members[feature["region"]]
        assert feature["contiguous"] == 1


def test_third_level_from_the_regions(run_algorithm, plan, tmp_path):
    regions = as_layer(hierarchy(run_algorithm, plan, "territory", 4)["OUTPUT"])
    result = hierarchy(run_algorithm, regions, "region", 2, region_field="zone",
                       OUTPUT=str(tmp_path / "zones.gpkg"), OUTPUT_REGIONS=str(tmp_path / "zones.shp"))
    units = as_layer(result["OUTPUT"])
    assert {"territory", "region", "zone"} <= set(units.fields().names())
    assert all(len(z) == 1 for z in groups(units, "region", "zone").values())
    assert all(len(z) == 1 for z in groups(units, "territory", "zone").values())
    assert sorted(set().union(*groups(units, "region", "zone").values())) == ["Zone 1", "Zone 2"]
    assert all(count == 1 for count in pieces(units, "zone").values())
    # zones of two regions of two territories each, all within 3 %: zones are within tolerance
    assert result["MAX_DEVIATION"] <= REGION_TOLERANCE
    assert as_layer(str(tmp_path / "zones.shp")).featureCount() == 2


def test_without_balance_fields_regions_get_equal_unit_counts(run_algorithm, georgia_layer):
    built = run_algorithm("territory:buildterritories", {
        "INPUT": georgia_layer, "TERRITORY_COUNT": 9, "TOLERANCE": 10, "OUTPUT": "TEMPORARY_OUTPUT",
        "OUTPUT_TERRITORIES": "TEMPORARY_OUTPUT"})
    plan = as_layer(built["OUTPUT"])
    result = run_algorithm("territory:buildhierarchy", {
        "INPUT": plan, "TERRITORY_FIELD": "territory", "REGION_COUNT": 3, "TOLERANCE": 15,
        "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_REGIONS": "TEMPORARY_OUTPUT"})
    units = as_layer(result["OUTPUT"])
    counts = {}
    for f in units.getFeatures():
        counts[f["region"]] = counts.get(f["region"], 0) + 1
    sizes = np.array(list(counts.values()))
    assert len(sizes) == 3
    assert np.abs(sizes / sizes.mean() - 1).max() * 100 == pytest.approx(result["MAX_DEVIATION"], abs=1e-3)
    assert all(count == 1 for count in pieces(units, "region").values())


def test_bad_input_names_the_problem(run_algorithm, plan):
    with pytest.raises(QgsProcessingException, match="at most 8 regions"):
        hierarchy(run_algorithm, plan, "territory", 9)
    copy = plan.materialize(QgsFeatureRequest())
    index = copy.fields().lookupField("territory")
    copy.dataProvider().changeAttributeValues({next(copy.getFeatures()).id(): {index: None}})
    with pytest.raises(QgsProcessingException, match="no territory"):
        hierarchy(run_algorithm, copy, "territory", 3)
    with pytest.raises(QgsProcessingException, match="region field"):
        hierarchy(run_algorithm, plan, "territory", 3, region_field="territory")


def test_outputs_load_styled_by_region(territory_provider, plan, qgis_new_project):
    import processing
    from qgis.core import QgsProcessingContext, QgsProject

    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    result = processing.runAndLoadResults("territory:buildhierarchy", {
        "INPUT": plan, "TERRITORY_FIELD": "territory", "REGION_COUNT": 4, "BALANCE_FIELDS": [MEASURE],
        "OUTPUT": "memory:", "OUTPUT_REGIONS": "memory:"}, context=context)
    for key in ("OUTPUT", "OUTPUT_REGIONS"):
        renderer = QgsProject.instance().mapLayer(result[key]).renderer()
        assert renderer.type() == "categorizedSymbol" and renderer.classAttribute() == "region"
        named = [c for c in renderer.categories() if c.value() not in (None, "")]
        assert len({c.symbol().color().name() for c in named}) == len(named) == 4


def test_progress_is_reported_and_cancel_stops_the_run(run_algorithm, plan):
    from qgis.core import QgsProcessingFeedback

    feedback = QgsProcessingFeedback()
    seen: list[float] = []
    feedback.progressChanged.connect(seen.append)
    hierarchy(run_algorithm, plan, "territory", 4, feedback=feedback)
    assert max(seen) >= 90 and seen == sorted(seen)

    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda value: feedback.cancel() if value > 35 else None)
    with pytest.raises(QgsProcessingException):
        hierarchy(run_algorithm, plan, "territory", 4, feedback=feedback)
