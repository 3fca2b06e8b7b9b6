"""The panel's feedback view: load the reps' files, preview a request, accept and reject, apply the
accepted ones as one undo step, undo; the change log notes the rep and the reason."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from dock_helpers import set_up_dock, show_layer
from feedback_helpers import PAGES, neighbours_of, territory_of, write_feedback
from qgis_desktop import check_desktop_run, run_desktop
from territory_planner.compat import STRING, make_field

ROOT = Path(__file__).resolve().parents[2]


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


@pytest.mark.skipif(shutil.which("xvfb-run") is None or shutil.which("qgis") is None,
                    reason="needs the qgis and xvfb packages (make sysdeps)")
def test_feedback_in_the_desktop_panel_previews_accepts_and_undoes(tmp_path):
    """The real QGIS desktop (Xvfb): a rep's file loaded in the panel, previewed, accepted, applied, undone."""
    sample = tmp_path / "georgia_counties.gpkg"
    shutil.copy(ROOT / "resources" / "data" / "georgia_counties.gpkg", sample)
    folder = tmp_path / "feedback"
    folder.mkdir()
    run = run_desktop(tmp_path, f"""
        import csv
        from qgis.core import QgsProject, QgsVectorLayer
        from qgis.PyQt.QtCore import QObject
        from qgis.PyQt.QtWidgets import QDockWidget
        from territory_planner.core.plan.feedback import plan_fingerprint
        layer = QgsVectorLayer({str(sample)!r} + "|layername=georgia_counties", "Georgia counties", "ogr")
        QgsProject.instance().addMapLayer(layer)
        action = [a for a in iface.mainWindow().findChildren(QObject)
                  if a.objectName() == "TerritoryPlannerDockAction"][0]
        action.trigger()
        dock = [d for d in iface.mainWindow().findChildren(QDockWidget)
                if d.objectName() == "TerritoryPlannerDock"][0]
        dock.controller.run_task = lambda task: task.finished(task.run())
        dock.setup_form.layer_combo.setLayer(layer)
        dock.setup_form.measures_combo.setCheckedItems(["population"])
        dock.setup_form.tolerance_spin.setValue(50.0)
        dock.create_field("territory")
        dock.territory_toolbar.count_spin.setValue(6)
        dock.territory_toolbar.build_action.trigger()
        dock.apply_preview()
        layer.commitChanges()
        layer.startEditing()
        service = dock.service
        where = {{f["fips"]: f["territory"] for f in layer.getFeatures()}}
        k = service.registry_index[service.territory_names[0]]
        i, j = next((i, j) for i in range(len(service.fids)) if service.labels[i] == k
                    for j in service.adjacency[i].indices if service.labels[j] != k)
        fips = layer.getFeature(int(service.fids[i]))["fips"]
        asking = service.registry[service.labels[j]]
        with open({str(folder / "feedback_x.csv")!r}, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["territory", "unit", "unit_name", "kind", "action", "reason", "submitted_by",
                             "submitted_at", "plan_id"])
            writer.writerow([asking, fips, "", "unit", "add", "Closer to my route", "Ann Rep",
                             "2026-12-01T09:00:00Z", plan_fingerprint(list(where), list(where.values()))])
        panel = [w for w in dock.findChildren(QObject) if w.objectName() == "territoryFeedback"][0]
        result["loaded"] = panel.load({str(folder)!r})
        panel.select(0)
        result["previewed"] = service.preview_fids() == [int(service.fids[i])]
        [b for b in panel.findChildren(QObject) if b.objectName() == "territoryAcceptRequest"][0].click()
        depth = layer.undoStack().index()
        [b for b in panel.findChildren(QObject) if b.objectName() == "territoryApplyFeedback"][0].click()
        result["one_step"] = layer.undoStack().index() == depth + 1
        result["moved"] = layer.getFeature(int(service.fids[i]))["territory"] == asking
        layer.undoStack().undo()
        result["undone"] = layer.getFeature(int(service.fids[i]))["territory"] == where[fips]
        result["committed"] = layer.commitChanges()
    """, timeout=240)
    result = check_desktop_run(run)
    assert result["loaded"] == 1 and result["previewed"]
    assert result["one_step"] and result["moved"] and result["undone"]
    assert result["committed"]
