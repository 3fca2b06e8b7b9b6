"""The dock on a PostGIS layer: paint, rebalance and save on a real PostgreSQL/PostGIS server
(started by this test session on loopback), then read the saved plan back through a fresh
connection."""

from __future__ import annotations

import pytest
from dock_helpers import click, select_row, show_layer, table
from postgis_server import PostgisServer, PostgisUnavailableError
from qgis.core import QgsProject, QgsVectorLayer
from territory_planner.resources import sample_data


@pytest.fixture(scope="module")
def postgis():
    server = PostgisServer()
    try:
        server.start()
        server.load(sample_data("georgia_counties.gpkg"), "georgia")
    except PostgisUnavailableError as error:
        server.stop()
        pytest.skip(f"PostgreSQL/PostGIS could not run here: {error}")
    yield server
    server.stop()


def test_paint_rebalance_and_save_a_postgis_layer(postgis, dock, qgis_iface):
    layer = QgsVectorLayer(postgis.uri("georgia", 26916), "georgia (PostGIS)", "postgres")
    assert layer.isValid(), layer.error().summary()
    assert layer.featureCount() == 159
    QgsProject.instance().addMapLayer(layer)

    dock.setup_form.layer_combo.setLayer(layer)
    dock.setup_form.measures_combo.setCheckedItems(["population"])
    dock.setup_form.tolerance_spin.setValue(10.0)
    assert dock.create_field("territory"), "the dock adds the territory field through the edit buffer"
    assert dock.service.is_bound

    # build a first plan, then paint a county into another territory by clicking it
    dock.territory_toolbar.count_spin.setValue(4)
    dock.territory_toolbar.build_action.trigger()
    assert dock.apply_preview() > 0
    assert table(dock)["Unassigned"]["Units"] == 0
    canvas = qgis_iface.mapCanvas()
    show_layer(canvas, layer)
    fid = dock.service.ledger.fids_of("Territory 1")[0]
    point = layer.getFeature(fid).geometry().pointOnSurface().asPoint()
    target = next(t for t in dock.service.territory_names if t != "Territory 1")
    select_row(dock, target)
    dock.paint_toolbar.paint_action.trigger()
    click(dock.paint_toolbar.paint_tool, canvas, point.x(), point.y())
    assert dock.service.ledger.territory_of_fid(fid) == target

    worst = dock.service.ledger.max_deviation()
    dock.territory_toolbar.rebalance_action.trigger()
    dock.apply_preview()
    assert dock.service.ledger.max_deviation() <= worst
    plan = {int(f): dock.service.ledger.territory_of_fid(f) for f in dock.service.fids.tolist()}
    assert postgis.sql("SELECT count(*) FROM information_schema.columns WHERE table_name = 'georgia' "
                       "AND column_name = 'territory'").strip() == "0", "nothing reaches the database before saving"

    assert layer.commitChanges(), layer.commitErrors()
    fresh = QgsVectorLayer(postgis.uri("georgia", 26916), "georgia again", "postgres")
    assert fresh.isValid()
    saved = {f.id(): f["territory"] for f in fresh.getFeatures()}
    assert saved == plan
    counts = dict(line.split("|") for line in postgis.sql(
        "SELECT territory, count(*) FROM georgia GROUP BY territory").splitlines())
    assert {name: int(n) for name, n in counts.items()} == {
        name: row["Units"] for name, row in table(dock).items() if name != "Unassigned"}
