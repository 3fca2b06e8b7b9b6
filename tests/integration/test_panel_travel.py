"""The panel shows the active territory's travel times on a road network (the bundled Helsinki
sample): from its centre unit, mean, workload-weighted mean and longest drive."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from dock_helpers import run_synchronously, set_up_dock
from qgis.core import QgsProject, QgsVectorLayer
from territory_planner.compat import STRING, make_field
from territory_planner.ui.dock import TerritoryDock

DATA = Path(__file__).resolve().parents[2] / "resources" / "data"


@pytest.fixture
def dock(qgis_iface, qgis_new_project):
    panel = TerritoryDock(qgis_iface)
    panel.controller.run_task = run_synchronously
    yield panel
    panel.unload()
    panel.deleteLater()


def minutes(label: str) -> list[float]:
    return [float(x) for x in re.findall(r"(\d+\.\d)", label)]


def test_travel_times_of_the_active_territory(dock, tmp_path):
    path = tmp_path / "helsinki.gpkg"
    shutil.copy(DATA / "helsinki_roads.gpkg", path)
    accounts = QgsVectorLayer(f"{path}|layername=accounts", "accounts", "ogr")
    roads = QgsVectorLayer(f"{path}|layername=roads", "roads", "ogr")
    assert accounts.isValid() and roads.isValid()
    assert accounts.dataProvider().addAttributes([make_field("territory", STRING, 20)])
    accounts.updateFields()
    QgsProject.instance().addMapLayers([accounts, roads])
    set_up_dock(dock, accounts, measures=[])
    dock.territory_toolbar.count_spin.setValue(4)
    dock.build()
    assert dock.apply_preview() > 0
    service = dock.service
    dock.setup_form.network_combo.setLayer(roads)
    assert service.plan.network_layer == roads.id()
    name = service.territory_names[0]
    service.set_active(name)
    dock.refresh_suggestions()
    assert dock.travel_label.isVisibleTo(dock)
    mean, weighted, longest = minutes(dock.travel_label.text())
    assert 0 < mean <= longest and 0 < weighted <= longest

    # give the territory every other unit: the whole sample is farther to drive
    others = [f.id() for f in accounts.getFeatures() if f.id() not in set(service.ledger.fids_of(name))]
    assert dock.paint(others) == len(others)
    dock.refresh_suggestions()
    assert minutes(dock.travel_label.text())[2] > longest

    dock.setup_form.network_combo.setLayer(None)
    dock.refresh_suggestions()
    assert not dock.travel_label.isVisibleTo(dock)
