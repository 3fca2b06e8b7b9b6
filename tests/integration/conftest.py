"""Fixtures for tests that run inside a real QGIS (pytest-qgis starts QgsApplication)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from qgis.core import QgsApplication, QgsFeatureRequest, QgsVectorLayer

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "resources" / "data"


_PROVIDERS = []  # Python must keep the providers it registers alive


@pytest.fixture(autouse=True)
def _nothing_runs_into_the_next_test():
    """What a test started in QGIS's threads ends with it: a map canvas still drawing, or a task still
    reading, when the next test clears the project would use layers that are gone. (The accounts'
    colours ask the units layer which unit an account stands in, ``overlay_within``; QGIS 3.22 crashes
    when that layer is deleted while a drawing thread asks.)"""
    yield
    from qgis.PyQt.QtCore import QThreadPool
    from qgis.PyQt.QtWidgets import QApplication
    from territory_planner.ui.map_view import stop_map_drawing

    if QApplication.instance() is None:
        return
    stop_map_drawing()
    QThreadPool.globalInstance().waitForDone(60_000)


@pytest.fixture
def territory_provider(qgis_app, qgis_processing):
    """The plugin's Processing provider, registered as QGIS registers it (again, if a test that
    unloads the plugin removed it)."""
    from territory_planner.algorithms.provider import TerritoryProvider

    registry = QgsApplication.processingRegistry()
    provider = registry.providerById("territory")
    if provider is None:
        provider = TerritoryProvider()
        assert registry.addProvider(provider)
        _PROVIDERS.append(provider)
    return provider


@pytest.fixture
def run_algorithm(territory_provider):
    """Run a Territory Planner algorithm through processing.run, as the toolbox does."""
    import processing

    def run(algorithm_id: str, parameters: dict, feedback=None, context=None):
        return processing.run(algorithm_id, parameters, feedback=feedback, context=context)

    return run


@pytest.fixture
def dock(qgis_iface, qgis_new_project):
    """A territory panel on a new project, its tasks run at once (deleted with the test)."""
    from dock_helpers import run_synchronously
    from territory_planner.ui.dock import TerritoryDock

    qgis_iface.messageBar().clear_messages()
    panel = TerritoryDock(qgis_iface)
    panel.controller.run_task = run_synchronously
    yield panel
    panel.unload()
    panel.deleteLater()


def _copy_sample(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copy(DATA / name, target)
    return target


@pytest.fixture
def georgia_layer(tmp_path):
    """159 Georgia counties (UTM 16N) with 1990 population and elderly counts; a private copy."""
    path = _copy_sample("georgia_counties.gpkg", tmp_path)
    layer = QgsVectorLayer(f"{path}|layername=georgia_counties", "georgia", "ogr")
    assert layer.isValid()
    return layer


@pytest.fixture
def nc_layer(tmp_path):
    """100 North Carolina counties in NAD27 longitude/latitude with 1974/1979 births; a private copy."""
    path = _copy_sample("nc_counties.gpkg", tmp_path)
    layer = QgsVectorLayer(f"{path}|layername=nc_counties", "nc", "ogr")
    assert layer.isValid()
    return layer


_BUILT_PLANS: dict = {}  # (sample, parameters) -> the build's results; one build per worker process


def _snapshot(layer: QgsVectorLayer) -> list:
    return [(f.id(), f.attributes(), f.geometry().asWkt(3)) for f in layer.getFeatures()]


@pytest.fixture
def built_plan(run_algorithm, tmp_path_factory):
    """Factory: ``built_plan("georgia_counties.gpkg", TERRITORY_COUNT=8, ...)`` runs
    territory:buildterritories on a private copy of a bundled sample once per worker process for
    each set of parameters, and gives every test its own memory copies of the outputs (``OUTPUT``,
    ``OUTPUT_TERRITORIES``) with the other results: a test may edit its copy without touching
    another test's. Each build checks that its input was left untouched."""

    def build(sample: str, **parameters) -> dict:
        key = (sample, repr(sorted(parameters.items())))
        if key not in _BUILT_PLANS:
            path = _copy_sample(sample, tmp_path_factory.mktemp("built-plan"))
            source = QgsVectorLayer(f"{path}|layername={path.stem}", path.stem, "ogr")
            assert source.isValid(), path
            before = _snapshot(source)
            result = run_algorithm("territory:buildterritories", {
                "INPUT": source, **parameters, "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_TERRITORIES": "TEMPORARY_OUTPUT"})
            assert _snapshot(source) == before, "the build changed its input"
            _BUILT_PLANS[key] = {name: value.materialize(QgsFeatureRequest()) if isinstance(value, QgsVectorLayer)
                                 else value for name, value in result.items()}
        return {name: value.materialize(QgsFeatureRequest()) if isinstance(value, QgsVectorLayer) else value
                for name, value in _BUILT_PLANS[key].items()}

    return build


@pytest.fixture
def ohio_valley_layer(tmp_path):
    """263 counties of Ohio, Kentucky and West Virginia (degrees) with 1990 population and one
    account per county: measures that pull apart (resources/data/README.md); a private copy."""
    path = _copy_sample("ohio_valley_counties.gpkg", tmp_path)
    layer = QgsVectorLayer(f"{path}|layername=ohio_valley_counties", "ohio_valley", "ogr")
    assert layer.isValid()
    return layer
