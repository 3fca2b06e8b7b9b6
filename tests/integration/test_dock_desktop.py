"""The dock in the real QGIS desktop (under Xvfb): open the bundled Georgia sample, build a plan
from the dock, paint with it, and save a screenshot (test-output/dock.png, shown in the README)."""

from __future__ import annotations

import shutil

import pytest
from qgis_desktop import NEEDS_DESKTOP, ROOT, check_desktop_run, run_desktop

pytestmark = NEEDS_DESKTOP


@pytest.mark.slow(11)
def test_dock_in_the_desktop_builds_a_plan_and_is_screenshotted(tmp_path):
    sample = tmp_path / "georgia_counties.gpkg"
    shutil.copy(ROOT / "resources" / "data" / "georgia_counties.gpkg", sample)
    screenshot = ROOT / "test-output" / "dock.png"
    screenshot.parent.mkdir(exist_ok=True)
    if screenshot.exists():
        screenshot.unlink()
    run = run_desktop(tmp_path, f"""
        from qgis.core import QgsProject, QgsVectorLayer
        from qgis.PyQt.QtCore import QObject
        from qgis.PyQt.QtWidgets import QDockWidget
        layer = QgsVectorLayer({str(sample)!r} + "|layername=georgia_counties", "Georgia counties", "ogr")
        QgsProject.instance().addMapLayer(layer)
        action = [a for a in iface.mainWindow().findChildren(QObject)
                  if a.objectName() == "TerritoryPlannerDockAction"][0]
        action.trigger()
        dock = [d for d in iface.mainWindow().findChildren(QDockWidget)
                if d.objectName() == "TerritoryPlannerDock"][0]
        # tasks run here and now, so the probe sees their results
        dock.controller.run_task = lambda task: task.finished(task.run())
        dock.setup_form.layer_combo.setLayer(layer)
        dock.setup_form.measures_combo.setCheckedItems(["population", "elderly"])
        dock.setup_form.tolerance_spin.setValue(10.0)
        result["field_created"] = dock.create_field("territory")
        dock.territory_toolbar.count_spin.setValue(6)
        dock.territory_toolbar.build_action.trigger()
        dock.apply_preview()
        service = dock.service
        result["territories"] = service.territory_names
        result["unassigned"] = len(service.ledger.fids_of(None))
        # paint a unit on the first territory's border into its neighbour
        first = service.territory_names[0]
        k = service.registry_index[first]
        border = [(i, j) for i in range(len(service.fids)) if service.labels[i] == k
                  for j in service.adjacency[i].indices if service.labels[j] != k]
        i, j = border[0]
        neighbour = service.registry[service.labels[j]]
        dock.service.set_active(neighbour)
        result["painted"] = dock.paint([int(service.fids[i])])
        # the built plan admits no improving single move; after the hand edit, suggestions appear
        dock.refresh_suggestions()
        result["suggestions"] = dock.suggestions_panel.list.count()
        def score():
            return sum(float((service.ledger.figures_of(t)["deviation"] ** 2).sum()) for t in service.territory_names)
        before = score()
        if result["suggestions"]:
            dock.suggestions_panel.list.itemClicked.emit(dock.suggestions_panel.list.item(0))
            dock.preview_panel.apply_button.click()
        result["suggestion_helped"] = score() < before
        # for the picture: paint again, and show the suggestions that answer it
        dock.paint([int(service.fids[i])])
        dock.refresh_suggestions()
        result["renderer"] = layer.renderer().type()
        iface.mainWindow().resize(1440, 900)
        iface.mainWindow().showMaximized()
        dock.show()
        dock.raise_()
        from qgis.PyQt.QtCore import Qt
        iface.mainWindow().resizeDocks([dock], [700], Qt.Orientation.Horizontal)
        iface.mapCanvas().setExtent(layer.extent())
        iface.mapCanvas().refreshAllLayers()
        for _ in range(50):
            QgsApplication.processEvents()
        iface.mapCanvas().waitWhileRendering()
        QgsApplication.processEvents()
        image = iface.mainWindow().grab()
        result["saved"] = image.save({str(screenshot)!r})
        result["size"] = [image.width(), image.height()]
        # save the edits: QGIS would otherwise ask about them while quitting
        result["committed"] = layer.commitChanges()
    """, timeout=240)
    result = check_desktop_run(run)
    assert result["field_created"]
    assert result["territories"] == [f"Territory {k}" for k in range(1, 7)]
    assert result["unassigned"] == 0
    assert result["suggestions"] > 0 and result["suggestion_helped"]
    assert result["painted"] == 1
    assert result["renderer"] == "categorizedSymbol"
    assert result["saved"] and screenshot.stat().st_size > 10_000
    assert result["committed"]


@pytest.mark.slow(8)
def test_scenarios_preview_and_change_log_in_the_desktop(tmp_path):
    """A second scenario painted on its own and compared with the first; a rebalance previewed,
    discarded, then applied as one step; after saving, the change log holds what changed."""
    sample = tmp_path / "georgia_counties.gpkg"
    shutil.copy(ROOT / "resources" / "data" / "georgia_counties.gpkg", sample)
    screenshot = ROOT / "test-output" / "preview.png"
    screenshot.parent.mkdir(exist_ok=True)
    run = run_desktop(tmp_path, f"""
        from qgis.core import QgsProject, QgsVectorLayer
        from qgis.PyQt.QtWidgets import QDockWidget
        layer = QgsVectorLayer({str(sample)!r} + "|layername=georgia_counties", "Georgia counties", "ogr")
        QgsProject.instance().addMapLayer(layer)
        dock = [d for d in iface.mainWindow().findChildren(QDockWidget)
                if d.objectName() == "TerritoryPlannerDock"][0]
        dock.show()
        dock.controller.run_task = lambda task: task.finished(task.run())
        dock.setup_form.layer_combo.setLayer(layer)
        dock.setup_form.measures_combo.deselectAllOptions()
        dock.setup_form.measures_combo.setCheckedItems(["population"])
        dock.setup_form.tolerance_spin.setValue(5.0)
        dock.create_field("territory")
        dock.territory_toolbar.count_spin.setValue(6)
        dock.territory_toolbar.build_action.trigger()
        result["built"] = dock.apply_preview()
        result["saved_a"] = layer.commitChanges()
        service = dock.service
        result["new_scenario"] = dock.controller.new_scenario("plan_b")
        result["scenario"] = service.field_name
        # paint one border county of the first territory into a neighbour, in plan B only
        first = service.territory_names[0]
        k = service.registry_index[first]
        i, j = next((i, j) for i in range(len(service.fids)) if service.labels[i] == k
                    for j in service.adjacency[i].indices if service.labels[j] != k)
        service.set_active(service.registry[service.labels[j]])
        result["painted"] = dock.paint([int(service.fids[i])])
        cells = dock.compare_scenarios().cells()
        result["compared"] = {{name: row["Units changed"] for name, row in cells.items()}}
        depth = layer.undoStack().index()
        before = {{f.id(): f["plan_b"] for f in layer.getFeatures()}}
        dock.territory_toolbar.rebalance_action.trigger()
        result["preview_units"] = len(service.preview.moved) if service.preview else -1
        result["preview_shown"] = dock.preview_panel.isVisible()
        dock.preview_panel.discard_button.click()
        result["discard_kept"] = ({{f.id(): f["plan_b"] for f in layer.getFeatures()}} == before
                                  and layer.undoStack().index() == depth)
        dock.territory_toolbar.rebalance_action.trigger()
        iface.mainWindow().resize(1440, 900)
        iface.mainWindow().showMaximized()
        from qgis.PyQt.QtCore import Qt
        iface.mainWindow().resizeDocks([dock], [520], Qt.Orientation.Horizontal)
        iface.mapCanvas().setExtent(layer.extent())
        iface.mapCanvas().refreshAllLayers()
        for _ in range(50):
            QgsApplication.processEvents()
        iface.mapCanvas().waitWhileRendering()
        QgsApplication.processEvents()
        result["screenshot"] = iface.mainWindow().grab().save({str(screenshot)!r})
        band = dock.highlight.band
        result["band_on_map"] = bool(band and band.isVisible()
                                     and iface.mapCanvas().extent().contains(band.asGeometry().boundingBox()))
        dock.preview_panel.apply_button.click()
        result["one_step"] = layer.undoStack().index() == depth + 1
        result["saved_b"] = layer.commitChanges()
        rows = service.change_log()
        result["log"] = sorted({{(r["scenario"], r["action"]) for r in rows}})
        result["log_rows"] = len(rows)
    """, timeout=240)
    result = check_desktop_run(run)
    assert result["built"] == 159 and result["saved_a"]
    assert result["new_scenario"] and result["scenario"] == "plan_b"
    assert result["painted"] == 1
    assert result["compared"] == {"territory (baseline)": "0", "plan_b": "1"}
    assert result["preview_units"] > 0 and result["preview_shown"] and result["band_on_map"]
    assert result["discard_kept"]
    assert result["one_step"] and result["saved_b"] and result["screenshot"]
    # the first save logs the build of scenario "territory"; the second the paint and rebalance of plan B
    assert ["plan_b", "paint"] in result["log"] and ["plan_b", "rebalance"] in result["log"]
    assert ["territory", "build"] in result["log"]
