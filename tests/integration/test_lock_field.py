"""One meaning of a lock field in Build, Rebalance and the panel: empty and 0/no do not lock,
1/yes lock a unit where it is, a territory name locks it to that territory."""

from __future__ import annotations

import pytest
from dock_helpers import grid_layer, run_synchronously, set_up_dock
from qgis.core import QgsProcessingException, QgsProject, QgsVectorLayer
from territory_planner.compat import INT, STRING, make_field
from territory_planner.ui.dock import TerritoryDock


def with_lock(layer, values: dict, kind=INT):
    assert layer.dataProvider().addAttributes([make_field("lock", kind, 20)])
    layer.updateFields()
    index = layer.fields().lookupField("lock")
    assert layer.dataProvider().changeAttributeValues({fid: {index: value} for fid, value in values.items()})
    return layer


def test_build_does_not_turn_a_0_1_column_into_territories(run_algorithm, georgia_layer):
    fids = sorted(f.id() for f in georgia_layer.getFeatures())
    layer = with_lock(georgia_layer, {fid: 0 for fid in fids})
    result = run_algorithm("territory:buildterritories", {
        "INPUT": layer, "TERRITORY_COUNT": 4, "BALANCE_FIELDS": ["population"], "TOLERANCE": 10,
        "LOCKED_FIELD": "lock", "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_TERRITORIES": "TEMPORARY_OUTPUT"})
    output = result["OUTPUT"]
    assert isinstance(output, QgsVectorLayer), "temporary outputs come back as layers"
    names = {f["territory"] for f in output.getFeatures()}
    assert "0" not in names and "1" not in names and len(names) == 4

    index = layer.fields().lookupField("lock")
    layer.dataProvider().changeAttributeValues({fids[0]: {index: 1}})
    with pytest.raises(QgsProcessingException, match="locked with a flag"):
        run_algorithm("territory:buildterritories", {
            "INPUT": layer, "TERRITORY_COUNT": 4, "BALANCE_FIELDS": ["population"], "TOLERANCE": 10,
            "LOCKED_FIELD": "lock", "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_TERRITORIES": "TEMPORARY_OUTPUT"})


def test_the_panel_reads_no_and_0_as_unlocked(qgis_iface, qgis_new_project):
    dock = TerritoryDock(qgis_iface)
    dock.controller.run_task = run_synchronously
    try:
        layer = grid_layer(territories={(c, r): "West" if c < 3 else "East" for c in range(6) for r in range(4)})
        fids = sorted(f.id() for f in layer.getFeatures())
        with_lock(layer, {fids[0]: "no", fids[1]: "0", fids[2]: "yes", fids[3]: "East"}, kind=STRING)
        QgsProject.instance().addMapLayer(layer)
        set_up_dock(dock, layer, lock="lock")
        locked = dict(zip(dock.service.fids.tolist(), dock.service.ledger.locked_mask().tolist()))
        assert [locked[f] for f in fids[:5]] == [False, False, True, True, False]
    finally:
        dock.unload()
        dock.deleteLater()
