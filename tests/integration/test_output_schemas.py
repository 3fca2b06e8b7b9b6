"""The per-territory layers of Build, Rebalance, Build hierarchy, Statistics and Assign reps: one
writer (algorithms/territory_layer.py), each algorithm's fields exactly as its users know them
(names, types, text widths, order), and one naming rule for shapefiles."""

from __future__ import annotations

import pytest
from qgis.core import QgsFeature, QgsVectorLayer

MEASURES = ["population", "elderly"]
TABLE = [("territory", "string", 80), ("name", "string", 120), ("rep", "string", 120), ("colour", "string", 7),
         ("locked", "integer", 0)]
WORKLOADS = [("units", "integer", 0), ("population", "double", 0), ("population_tgt", "double", 0),
             ("population_dev", "double", 0), ("elderly", "double", 0), ("elderly_tgt", "double", 0),
             ("elderly_dev", "double", 0)]
PLAN = TABLE + WORKLOADS + [("parts", "integer", 0), ("contiguous", "integer", 0), ("inertia_km2", "double", 0),
                            ("area_km2", "double", 0), ("polsby", "double", 0)]


def schema(layer) -> list[tuple[str, str, int]]:
    return [(f.name(), f.typeName().lower(), f.length() if f.typeName().lower() == "string" else 0)
            for f in layer.fields()]


def as_layer(value) -> QgsVectorLayer:
    layer = value if isinstance(value, QgsVectorLayer) else QgsVectorLayer(value, "out", "ogr")
    assert layer.isValid(), value
    return layer


@pytest.fixture
def plan(run_algorithm, georgia_layer):
    result = run_algorithm("territory:buildterritories", {
        "INPUT": georgia_layer, "TERRITORY_COUNT": 4, "BALANCE_FIELDS": MEASURES, "TOLERANCE": 10,
        "RANDOM_SEED": 1, "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_TERRITORIES": "TEMPORARY_OUTPUT"})
    return result


def reps_for(plan_layer) -> QgsVectorLayer:
    """A rep per territory, at home in its first unit, with the territory code beside the name."""
    reps = QgsVectorLayer(f"Point?crs={plan_layer.crs().authid()}&field=name:string&field=territory:string",
                          "reps", "memory")
    homes = {}
    for unit in plan_layer.getFeatures():
        homes.setdefault(unit["territory"], unit.geometry().pointOnSurface())
    for n, (code, home) in enumerate(sorted(homes.items())):
        rep = QgsFeature(reps.fields())
        rep.setGeometry(home)
        rep.setAttributes([f"Rep {n}", code])
        assert reps.dataProvider().addFeature(rep)
    return reps


def test_build_rebalance_and_hierarchy_write_the_plan_columns(run_algorithm, plan):
    assert schema(plan["OUTPUT_TERRITORIES"]) == PLAN
    units = plan["OUTPUT"]
    rebalanced = run_algorithm("territory:rebalanceterritories", {
        "INPUT": units, "TERRITORY_FIELD": "territory", "BALANCE_FIELDS": MEASURES, "TOLERANCE": 10,
        "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_TERRITORIES": "TEMPORARY_OUTPUT"})
    assert schema(rebalanced["OUTPUT_TERRITORIES"]) == PLAN + [("moved_in", "integer", 0), ("moved_out", "integer", 0)]
    regions = run_algorithm("territory:buildhierarchy", {
        "INPUT": units, "TERRITORY_FIELD": "territory", "REGION_COUNT": 2, "BALANCE_FIELDS": MEASURES,
        "TOLERANCE": 20, "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_REGIONS": "TEMPORARY_OUTPUT"})
    assert schema(regions["OUTPUT_REGIONS"]) == [("region", "string", 80)] + PLAN[1:] + [
        ("terr_count", "integer", 0), ("members", "string", 254)]


def test_statistics_and_assign_reps_write_their_own_groups(run_algorithm, plan, tmp_path):
    units = plan["OUTPUT"]
    statistics = run_algorithm("territory:territorystatistics", {
        "INPUT": units, "TERRITORY_FIELD": "territory", "BALANCE_FIELDS": MEASURES, "REPS": reps_for(units),
        "REP_NAME_FIELD": "name", "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_HTML": str(tmp_path / "report.html")})
    wide = [(name, kind, 254 if kind == "string" else 0) for name, kind, _ in TABLE]
    assert schema(statistics["OUTPUT"]) == wide + WORKLOADS + [
        ("area_km2", "double", 0), ("perim_km", "double", 0), ("polsby", "double", 0), ("parts", "integer", 0),
        ("contiguous", "integer", 0), ("enclave_of", "string", 254), ("within_tol", "integer", 0),
        ("rep_avg_km", "double", 0), ("rep_max_km", "double", 0)]
    assigned = run_algorithm("territory:assignreps", {
        "INPUT": units, "TERRITORY_FIELD": "territory", "REPS": reps_for(units), "REP_NAME_FIELD": "name",
        "BALANCE_FIELDS": MEASURES, "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_TERRITORIES": "TEMPORARY_OUTPUT",
        "OUTPUT_REPS": "TEMPORARY_OUTPUT"})
    assert schema(assigned["OUTPUT_TERRITORIES"]) == TABLE[:2] + [("rep", "string", 80)] + TABLE[3:] + [
        ("vacancy", "integer", 0), ("kept", "integer", 0), ("units", "integer", 0), ("population", "double", 0),
        ("elderly", "double", 0), ("rep_avg_km", "double", 0), ("rep_max_km", "double", 0)]


def test_a_shapefile_gets_the_same_short_names_from_every_writer(run_algorithm, plan, tmp_path):
    """Field names of at most 10 characters that keep their ending (``popula_tgt``), where OGR's own
    cut gave ``populati_1``: Build, Statistics, Build hierarchy and Assign reps alike."""
    units = plan["OUTPUT"]
    regions = run_algorithm("territory:buildhierarchy", {
        "INPUT": units, "TERRITORY_FIELD": "territory", "REGION_COUNT": 2, "BALANCE_FIELDS": MEASURES,
        "TOLERANCE": 20, "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_REGIONS": str(tmp_path / "regions.shp")})
    names = [f.name() for f in as_layer(regions["OUTPUT_REGIONS"]).fields()]
    assert ["population", "popula_tgt", "popula_dev", "elderly", "elderl_tgt", "elderl_dev"] == [
        n for n in names if n.startswith(("popula", "elderl"))]
    assert "inerti_km2" in names
    built = run_algorithm("territory:buildterritories", {
        "INPUT": units, "TERRITORY_COUNT": 4, "BALANCE_FIELDS": MEASURES, "TOLERANCE": 10, "RANDOM_SEED": 1,
        "TERRITORY_FIELD": "plan_b", "OUTPUT": "TEMPORARY_OUTPUT",
        "OUTPUT_TERRITORIES": str(tmp_path / "built.shp")})
    built_names = [f.name() for f in as_layer(built["OUTPUT_TERRITORIES"]).fields()]
    assert [n for n in built_names if n.startswith(("popula", "elderl", "inerti"))] == [
        n for n in names if n.startswith(("popula", "elderl", "inerti"))]
