"""Loading outputs: every algorithm's default outputs load without “not correctly generated”."""

from __future__ import annotations

import pytest
from qgis.core import QgsProcessingContext, QgsProcessingFeedback, QgsProject


class Recorder(QgsProcessingFeedback):
    def __init__(self):
        super().__init__()
        self.errors: list[str] = []

    def reportError(self, error, fatal_error=False):  # noqa: N802 - QGIS API name
        self.errors.append(error)
        super().reportError(error, fatal_error)


@pytest.fixture
def plan_layer(built_plan):
    """This test's own copy of a Georgia plan, built once per worker (conftest.built_plan)."""
    return built_plan("georgia_counties.gpkg", TERRITORY_COUNT=6, BALANCE_FIELDS=["population"], TOLERANCE=10)["OUTPUT"]


@pytest.mark.parametrize("algorithm, parameters", [
    ("territory:territorystatistics", {"TERRITORY_FIELD": "territory", "BALANCE_FIELDS": ["population"]}),
    ("territory:comparealignments", {"FIELD_BEFORE": "territory", "FIELD_AFTER": "territory_b",
                                     "BALANCE_FIELDS": ["population"]}),
    ("territory:rebalanceterritories", {"TERRITORY_FIELD": "territory", "BALANCE_FIELDS": ["population"]}),
    ("territory:buildterritories", {"TERRITORY_COUNT": 6, "BALANCE_FIELDS": ["population"], "TOLERANCE": 10}),
    ("territory:setgoals", {"TERRITORY_FIELD": "territory", "TOTAL_GOAL": 6000, "BASIS": "population"}),
])
def test_default_outputs_load_without_errors(territory_provider, plan_layer, qgis_new_project, algorithm,
                                             parameters, tmp_path):
    import processing
    from territory_planner.compat import STRING, make_field

    plan_layer.dataProvider().addAttributes([make_field("territory_b", STRING)])
    plan_layer.updateFields()
    index = plan_layer.fields().lookupField("territory_b")
    plan_layer.dataProvider().changeAttributeValues(
        {f.id(): {index: f["territory"] if f.id() % 7 else "Territory 1"} for f in plan_layer.getFeatures()})
    alg = processing.algorithmHelp  # noqa: F841 - processing is initialised
    from qgis.core import QgsApplication

    definition = QgsApplication.processingRegistry().algorithmById(algorithm)
    values = {"INPUT": plan_layer, **parameters}
    for output in definition.destinationParameterDefinitions():
        values[output.name()] = output.defaultValue() or (
            str(tmp_path / f"{output.name()}.html") if output.type() == "fileDestination" else "TEMPORARY_OUTPUT")
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    feedback = Recorder()
    processing.runAndLoadResults(algorithm, values, feedback=feedback, context=context)
    assert not [e for e in feedback.errors if "not correctly generated" in e], feedback.errors
