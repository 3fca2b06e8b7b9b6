"""The real QGIS desktop loads the plugin installed from its ZIP, without a Python error."""

from __future__ import annotations

import shutil

import pytest
from qgis_desktop import run_desktop

pytestmark = pytest.mark.skipif(shutil.which("xvfb-run") is None or shutil.which("qgis") is None,
                                reason="needs the qgis and xvfb packages (make sysdeps)")


def test_desktop_loads_plugin_from_zip(tmp_path):
    result, errors, output = run_desktop(tmp_path, """
        from qgis.PyQt.QtWidgets import QAction, QDockWidget
        result["active"] = "territory_planner" in qgis.utils.active_plugins
        result["provider"] = QgsApplication.processingRegistry().providerById("territory") is not None
        result["algorithms"] = [a.id() for a in QgsApplication.processingRegistry().algorithms()
                                if a.provider() and a.provider().id() == "territory"]
        actions = [a for a in iface.mainWindow().findChildren(QAction)
                   if a.objectName() == "TerritoryPlannerDockAction"]
        result["toolbar_action"] = any(iface.pluginToolBar() in a.associatedWidgets() for a in actions)
        result["dock_hidden_at_start"] = not actions[0].isChecked()
        if actions:
            actions[0].trigger()
        docks = [d for d in iface.mainWindow().findChildren(QDockWidget) if d.objectName() == "TerritoryPlannerDock"]
        result["dock_visible"] = bool(docks) and docks[0].isVisible()
    """)
    assert not errors, "QGIS reported Python errors:\n" + "\n".join(errors)
    assert "probe_error" not in result, result.get("probe_error")
    assert result, "QGIS did not run the probe:\n" + output[-3000:]
    assert result["active"], "the plugin is not among QGIS's active plugins"
    assert result["provider"], "the Processing provider 'territory' is not registered"
    assert "territory:buildterritories" in result["algorithms"]
    assert result["toolbar_action"], "no Territory Planner button on the Plugins toolbar"
    assert result["dock_hidden_at_start"], "the dock should wait for its button"
    assert result["dock_visible"], "the toolbar button did not show the dock"
