"""The algorithms as QGIS users chain them: inside a Model Designer model, and from the
command line through qgis_process with the plugin loaded the way QGIS loads it."""

from __future__ import annotations

import numpy as np
import pytest
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeature,
    QgsGeometry,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingModelAlgorithm,
    QgsProcessingModelChildAlgorithm,
    QgsProcessingModelChildParameterSource,
    QgsProcessingModelOutput,
    QgsProcessingModelParameter,
    QgsProcessingParameterFeatureSource,
    QgsProject,
    QgsVectorLayer,
)
from territory_planner.compat import STRING, make_field


def as_layer(value) -> QgsVectorLayer:
    if isinstance(value, QgsVectorLayer):
        return value
    layer = QgsVectorLayer(value, "output", "ogr")
    assert layer.isValid(), value
    return layer


def rep_homes(layer: QgsVectorLayer, count: int) -> QgsVectorLayer:
    """``count`` reps living at the centroids of evenly spread counties, stored in WGS 84."""
    reps = QgsVectorLayer("Point?crs=EPSG:4326", "reps", "memory")
    reps.dataProvider().addAttributes([make_field("name", STRING)])
    reps.updateFields()
    to_wgs84 = QgsCoordinateTransform(layer.crs(), QgsCoordinateReferenceSystem("EPSG:4326"), QgsProject.instance())
    counties = sorted(layer.getFeatures(), key=lambda f: f.geometry().centroid().asPoint().x())
    features = []
    for r, county in enumerate(counties[:: max(1, len(counties) // count)][:count]):
        feature = QgsFeature(reps.fields())
        point = to_wgs84.transform(county.geometry().centroid().asPoint())
        feature.setGeometry(QgsGeometry.fromPointXY(point))
        feature.setAttributes([f"Rep {r + 1}"])
        features.append(feature)
    reps.dataProvider().addFeatures(features)
    return reps


def child(model, child_id: str, algorithm_id: str, sources: dict, outputs: dict | None = None):
    """Add a child algorithm; ``sources`` maps parameter → static value, ("model", name) or
    ("child", child id, output name); ``outputs`` maps a model output name → child output."""
    step = QgsProcessingModelChildAlgorithm(algorithm_id)
    step.setChildId(child_id)
    step.setDescription(child_id)
    for parameter, source in sources.items():
        if isinstance(source, tuple) and source[0] == "model":
            value = QgsProcessingModelChildParameterSource.fromModelParameter(source[1])
        elif isinstance(source, tuple) and source[0] == "child":
            value = QgsProcessingModelChildParameterSource.fromChildOutput(source[1], source[2])
        else:
            value = QgsProcessingModelChildParameterSource.fromStaticValue(source)
        step.addParameterSources(parameter, [value])
    # as the Model Designer does: every other input gets its default value
    for definition in step.algorithm().parameterDefinitions():
        if definition.isDestination() or definition.name() in sources or definition.defaultValue() is None:
            continue
        step.addParameterSources(definition.name(),
                                 [QgsProcessingModelChildParameterSource.fromStaticValue(definition.defaultValue())])
    if outputs:
        model_outputs = {}
        for name, child_output in outputs.items():
            output = QgsProcessingModelOutput(name)
            output.setChildId(child_id)
            output.setChildOutputName(child_output)
            model_outputs[name] = output
        step.setModelOutputs(model_outputs)
    model.addChildAlgorithm(step)
    return step


def test_model_builds_staffs_and_reports(territory_provider, georgia_layer, tmp_path):
    import processing

    model = QgsProcessingModelAlgorithm("Plan and staff territories", "Territory Planner", "tests")
    for name, label in (("units", "Units"), ("reps", "Reps")):
        model.addModelParameter(QgsProcessingParameterFeatureSource(name, label), QgsProcessingModelParameter(name))
    child(model, "build", "territory:buildterritories", {
        "INPUT": ("model", "units"), "TERRITORY_COUNT": 5, "BALANCE_FIELDS": ["population"], "TOLERANCE": 5.0,
        "RANDOM_SEED": 0, "TERRITORY_FIELD": "territory"})
    child(model, "assign", "territory:assignreps", {
        "INPUT": ("child", "build", "OUTPUT"), "TERRITORY_FIELD": "territory", "REPS": ("model", "reps"),
        "REP_NAME_FIELD": "name", "BALANCE_FIELDS": ["population"]},
        outputs={"staffed": "OUTPUT", "staffed territories": "OUTPUT_TERRITORIES"})
    child(model, "report", "territory:territorystatistics", {
        "INPUT": ("child", "assign", "OUTPUT"), "TERRITORY_FIELD": "territory",
        "BALANCE_FIELDS": ["population"], "TOLERANCE": 5.0},
        outputs={"figures": "OUTPUT"})
    model.updateDestinationParameters()
    valid, errors = model.validate()
    assert valid, errors

    # the model survives a save and reload, as a .model3 file from the Model Designer would
    path = str(tmp_path / "plan_and_staff.model3")
    assert model.toFile(path)
    loaded = QgsProcessingModelAlgorithm()
    assert loaded.fromFile(path)

    reps = rep_homes(georgia_layer, 5)
    parameters = {"units": georgia_layer, "reps": reps}
    for parameter in loaded.destinationParameterDefinitions():
        parameters[parameter.name()] = "TEMPORARY_OUTPUT"
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    results = processing.run(loaded, parameters, context=context, feedback=QgsProcessingFeedback())

    staffed = as_layer(results["assign:staffed"])
    assert staffed.featureCount() == georgia_layer.featureCount()
    reps_of = {}
    for feature in staffed.getFeatures():
        reps_of.setdefault(feature["territory"], set()).add(feature["rep"])
    assert len(reps_of) == 5 and all(len(r) == 1 for r in reps_of.values())
    assert sorted(r for s in reps_of.values() for r in s) == [f"Rep {k}" for k in range(1, 6)]
    figures = as_layer(results["report:figures"])
    assert sorted(f["territory"] for f in figures.getFeatures()) == sorted(reps_of)


def test_qgis_process_runs_the_plugin(georgia_layer, tmp_path):
    from qgis_process import enable_plugin, environment, run

    env = environment(str(tmp_path / "profile"))
    enable_plugin(env)
    built = tmp_path / "built.gpkg"
    answer = run("territory:buildterritories", {
        "INPUT": georgia_layer.source(), "TERRITORY_COUNT": 4, "BALANCE_FIELDS": "population", "TOLERANCE": 5,
        "OUTPUT": str(built), "OUTPUT_TERRITORIES": str(tmp_path / "territories.gpkg")}, env)
    results = answer["results"]
    assert results["MAX_DEVIATION"] <= 5
    layer = as_layer(str(built))
    assert layer.featureCount() == 159
    territories = {f["territory"] for f in layer.getFeatures()}
    assert len(territories) == 4

    answer = run("territory:buildhierarchy", {
        "INPUT": str(built), "TERRITORY_FIELD": "territory", "REGION_COUNT": 2, "BALANCE_FIELDS": "population",
        "TOLERANCE": 15, "OUTPUT": str(tmp_path / "regions.gpkg"),
        "OUTPUT_REGIONS": str(tmp_path / "regions.csv")}, env)
    regions = as_layer(str(tmp_path / "regions.gpkg"))
    region_of = {}
    for feature in regions.getFeatures():
        region_of.setdefault(feature["territory"], set()).add(feature["region"])
    assert len(region_of) == 4 and all(len(r) == 1 for r in region_of.values())
    sums = {}
    for feature in regions.getFeatures():
        sums[feature["region"]] = sums.get(feature["region"], 0) + feature["population"]
    totals = np.array(list(sums.values()), dtype=float)
    worst = float(np.abs(totals / totals.mean() - 1).max() * 100)
    assert answer["results"]["MAX_DEVIATION"] == pytest.approx(worst, abs=1e-3)
    assert as_layer(str(tmp_path / "regions.csv")).featureCount() == 2
