"""The panel's feedback view: load the reps' files, preview a request, accept and reject, apply the
accepted ones as one undo step, undo; the change log notes the rep and the reason."""

from __future__ import annotations

import re

import pytest
from dock_helpers import run_synchronously, set_up_dock, show_layer
from feedback_helpers import PAGES, neighbours_of, territory_of, write_feedback
from territory_planner.compat import STRING, make_field
from territory_planner.ui.dock import TerritoryDock


@pytest.fixture
def dock(qgis_iface, qgis_new_project):
    qgis_iface.messageBar().clear_messages()
    panel = TerritoryDock(qgis_iface)
    panel.controller.run_task = run_synchronously
    yield panel
    panel.unload()
    panel.deleteLater()


def planned(dock, layer, count=6):
    """A saved plan of ``count`` territories on ``layer``, built in the panel."""
    assert layer.dataProvider().addAttributes([make_field("territory", STRING, 40)])
    layer.updateFields()
    set_up_dock(dock, layer, measures=["population"], tolerance=50.0)
    dock.territory_toolbar.count_spin.setValue(count)
    dock.build()
    assert dock.apply_preview() > 0
    assert layer.commitChanges()
    assert layer.startEditing()
    return dock.service


def test_feedback_in_the_panel_previews_accepts_applies_and_undoes(dock, georgia_layer, run_algorithm, tmp_path):
    service = planned(dock, georgia_layer)
    show_layer(dock.canvas, georgia_layer)
    made = run_algorithm(PAGES, {"INPUT": georgia_layer, "TERRITORY_FIELD": "territory",
                                 "BALANCE_FIELDS": ["population"], "UNIT_ID_FIELD": "fips",
                                 "OUTPUT_FOLDER": str(tmp_path / "pages")})
    plan_id = re.search(r'"plan_id":"(\w+)"', open(made["PAGES"][0], encoding="utf-8").read()).group(1)
    where, touching = territory_of(georgia_layer), neighbours_of(georgia_layer)
    wanted, asking = next((u, where[v]) for u in sorted(where) for v in sorted(touching[u]) if where[v] != where[u])
    other = next(u for u in sorted(where) if u != wanted)
    folder = tmp_path / "feedback"
    folder.mkdir()
    write_feedback(folder / "feedback_a.csv", [
        {"territory": asking, "unit": wanted, "unit_name": f"County {wanted}", "kind": "unit", "action": "add",
         "reason": "On my way along the interstate", "submitted_by": "Ann Rep", "submitted_at": "2026-12-01T09:00:00Z",
         "plan_id": plan_id},
        {"territory": where[other], "unit": other, "kind": "unit", "action": "drop", "reason": "Too far",
         "submitted_by": "Bob Rep", "submitted_at": "2026-12-02T09:00:00Z", "plan_id": plan_id}])
    panel = dock.feedback_panel
    assert panel.objectName() == "territoryFeedback"
    assert panel.load(str(folder)) == 2
    rows = panel.rows()
    assert [r[3] for r in rows] == ["needs review", "needs review"], "the panel accepts nothing by itself"
    assert "→" in rows[0][6] and asking in rows[0][6]

    fid = next(f.id() for f in georgia_layer.getFeatures() if f["fips"] == wanted)
    panel.select(0)
    assert service.preview is not None and service.preview_fids() == [fid]
    assert dock.preview_panel.isVisibleTo(dock) and dock.highlight.fids == [fid]
    before = territory_of(georgia_layer)
    depth = georgia_layer.undoStack().index()

    panel.accept_button.click()
    panel.select(1)
    panel.reject_button.click()
    assert [r[3] for r in panel.rows()] == ["accepted", "rejected"]
    assert territory_of(georgia_layer) == before, "deciding changes nothing on the layer"
    assert panel.apply() == 1
    assert georgia_layer.undoStack().index() == depth + 1, "one undo step"
    assert territory_of(georgia_layer)[wanted] == asking
    assert panel.rows()[0][3] == "accepted (applied)"

    georgia_layer.undoStack().undo()
    assert territory_of(georgia_layer) == before
    assert panel.review.applied(panel.review.verdicts[0]) is False
    georgia_layer.undoStack().redo()
    assert georgia_layer.commitChanges()
    log = [row for row in service.change_log() if row["action"] == "feedback"]
    assert len(log) == 1 and log[0]["to_territory"] == asking
    assert "Ann Rep" in log[0]["note"] and "On my way along the interstate" in log[0]["note"]


def test_loading_a_folder_without_feedback_says_so(dock, georgia_layer, tmp_path, qgis_iface):
    planned(dock, georgia_layer, count=4)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert dock.feedback_panel.load(str(empty)) == 0
    assert dock.feedback_panel.rows() == []
