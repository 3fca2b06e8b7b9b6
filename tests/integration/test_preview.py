"""Build, Rebalance and suggestions show their proposal first: moved units highlighted, before →
after per territory; Discard leaves the layer as it was, Apply is one undo step."""

from __future__ import annotations

import numpy as np
import pytest
from dock_helpers import set_up_dock, show_layer
from qgis.core import Qgis
from territory_planner.compat import STRING, make_field


def planned(dock, layer, count=5, tolerance=5.0):
    assert layer.dataProvider().addAttributes([make_field("territory", STRING, 40)])
    layer.updateFields()
    set_up_dock(dock, layer, measures=["population"], tolerance=tolerance)
    dock.territory_toolbar.count_spin.setValue(count)
    dock.build()
    assert dock.apply_preview() > 0
    assert layer.commitChanges()
    service = dock.service
    # unbalance it by hand: a third of the largest territory goes to another one
    donor = max(service.territory_names, key=lambda t: len(service.ledger.fids_of(t)))
    receiver = next(t for t in service.territory_names if t != donor)
    moved = service.ledger.fids_of(donor)[: len(service.ledger.fids_of(donor)) // 3]
    service.assign(moved, receiver)
    assert layer.commitChanges()
    assert layer.startEditing()
    return service


def territories(layer) -> dict:
    return {f.id(): f["territory"] for f in layer.getFeatures()}


def test_rebalance_preview_then_discard_changes_nothing(dock, georgia_layer):
    service = planned(dock, georgia_layer)
    show_layer(dock.canvas, georgia_layer)  # the outline is drawn in the map's CRS
    before = territories(georgia_layer)
    depth = georgia_layer.undoStack().index()
    worst = service.ledger.max_deviation()

    dock.territory_toolbar.rebalance_action.trigger()
    preview = service.preview
    assert preview is not None and len(preview.moved) > 0
    assert preview.worst_before == pytest.approx(worst)
    assert preview.worst_after < preview.worst_before
    panel = dock.preview_panel
    assert panel.isVisibleTo(dock)
    shown = panel.rows()
    assert shown and all(" → " in cell for cells in shown.values() for cell in cells)
    assert f"{len(preview.moved)} unit(s) would change" in panel.summary.text()
    # the units that would move are outlined on the map
    assert dock.highlight.band is not None
    assert dock.highlight.fids == sorted(service.preview_fids())
    outline = dock.highlight.band.asGeometry()
    for fid in service.preview_fids():
        assert outline.contains(georgia_layer.getFeature(fid).geometry().pointOnSurface())
    assert territories(georgia_layer) == before and georgia_layer.undoStack().index() == depth

    panel.discard_button.click()
    assert service.preview is None and not panel.isVisibleTo(dock) and dock.highlight.band is None
    assert territories(georgia_layer) == before and georgia_layer.undoStack().index() == depth


def test_rebalance_apply_is_one_undo_step(dock, georgia_layer, qgis_iface):
    service = planned(dock, georgia_layer)
    before = territories(georgia_layer)
    depth = georgia_layer.undoStack().index()
    worst = service.ledger.max_deviation()
    dock.territory_toolbar.rebalance_action.trigger()
    moved = [int(f) for f in service.preview_fids()]
    dock.preview_panel.apply_button.click()
    after = territories(georgia_layer)
    assert sorted(f for f in after if after[f] != before[f]) == sorted(moved)
    assert service.ledger.max_deviation() < worst
    assert georgia_layer.undoStack().index() == depth + 1
    georgia_layer.undoStack().undo()
    assert territories(georgia_layer) == before


def test_cap_limits_the_units_a_rebalance_changes_and_says_what_is_still_off(dock, georgia_layer, qgis_iface):
    service = planned(dock, georgia_layer, tolerance=1.0)
    dock.territory_toolbar.cap_spin.setValue(2.0)  # 2 % of 159 units: at most 3
    dock.territory_toolbar.rebalance_action.trigger()
    preview = service.preview
    assert 0 < len(preview.moved) <= 3
    still_off = preview.out_of_tolerance_after()
    assert still_off, "1 % cannot be reached moving 3 counties after the hand edit"
    assert "Still outside the tolerance" in dock.preview_panel.summary.text()
    dock.apply_preview()
    warnings = qgis_iface.messageBar().get_messages(Qgis.MessageLevel.Warning)
    assert any(all(name in m for name in still_off) and "Still outside" in m for m in warnings)


def test_a_preview_made_before_an_edit_is_dropped(dock, georgia_layer):
    service = planned(dock, georgia_layer)
    dock.territory_toolbar.rebalance_action.trigger()
    assert service.preview is not None
    service.assign(service.ledger.fids_of(service.territory_names[0])[:1], service.territory_names[1])
    assert service.preview is None and dock.highlight.band is None
    assert dock.apply_preview() == 0


def test_rebalance_is_logged_as_rebalance_after_saving(dock, georgia_layer):
    service = planned(dock, georgia_layer)
    dock.territory_toolbar.rebalance_action.trigger()
    moved = service.preview_fids()
    dock.apply_preview()
    assert georgia_layer.commitChanges()
    rows = [r for r in service.change_log() if r["action"] == "rebalance"]
    # named by the plan's unit-name field (the sample's county names, which the panel guesses), as every row
    # of the log is (issue 25)
    assert dock.service.plan.unit_name_field == "name"
    names = {f.id(): f["name"] for f in georgia_layer.getFeatures()}
    assert sorted(r["unit"] for r in rows) == sorted(names[f] for f in moved)
    assert np.all([r["population"] > 0 for r in rows])


def test_the_units_of_a_proposal_can_be_selected_and_zoomed_to(dock, georgia_layer):
    service = planned(dock, georgia_layer)
    show_layer(dock.canvas, georgia_layer)
    dock.territory_toolbar.rebalance_action.trigger()
    moved = sorted(service.preview_fids())
    dock.canvas.setExtent(dock.canvas.extent().buffered(1e6))
    before = dock.canvas.extent()
    dock.preview_panel.select_button.click()
    assert sorted(georgia_layer.selectedFeatureIds()) == moved
    extent = dock.canvas.extent()
    for fid in moved:
        assert extent.contains(georgia_layer.getFeature(fid).geometry().boundingBox())
    assert extent.width() < before.width(), "zoomed in on the selection"
