"""The real QGIS desktop loads the plugin installed from its ZIP, without a Python error."""

from __future__ import annotations

import shutil

import pytest
from qgis_desktop import check_desktop_run, run_desktop

pytestmark = pytest.mark.skipif(shutil.which("xvfb-run") is None or shutil.which("qgis") is None,
                                reason="needs the qgis and xvfb packages (make sysdeps)")


@pytest.mark.slow(10)
def test_desktop_loads_plugin_from_zip(tmp_path):
    run = run_desktop(tmp_path, """
        from qgis.PyQt.QtCore import QObject
        from qgis.PyQt.QtWidgets import QDockWidget
        result["active"] = "territory_planner" in qgis.utils.active_plugins
        result["provider"] = QgsApplication.processingRegistry().providerById("territory") is not None
        result["algorithms"] = [a.id() for a in QgsApplication.processingRegistry().algorithms()
                                if a.provider() and a.provider().id() == "territory"]
        actions = [a for a in iface.mainWindow().findChildren(QObject)
                   if a.objectName() == "TerritoryPlannerDockAction"]
        result["toolbar_action"] = any(iface.pluginToolBar() in a.associatedWidgets() for a in actions)
        result["dock_hidden_at_start"] = not actions[0].isChecked()
        if actions:
            actions[0].trigger()
        docks = [d for d in iface.mainWindow().findChildren(QDockWidget) if d.objectName() == "TerritoryPlannerDock"]
        result["dock_visible"] = bool(docks) and docks[0].isVisible()
    """)
    result = check_desktop_run(run)
    assert result["active"], "the plugin is not among QGIS's active plugins"
    assert result["provider"], "the Processing provider 'territory' is not registered"
    assert "territory:buildterritories" in result["algorithms"]
    assert result["toolbar_action"], "no Territory Planner button on the Plugins toolbar"
    assert result["dock_hidden_at_start"], "the dock should wait for its button"
    assert result["dock_visible"], "the toolbar button did not show the dock"


# -- how a desktop session is judged (QGIS 3.40 may crash in its own shutdown) -------------------
CLEAN = {"unloaded": True, "still_active": False, "left_behind": [], "provider_left": False, "project_cleared": True}


def test_a_crash_after_a_clean_unload_is_reported_not_failed():
    from qgis_desktop import DesktopRun, check_desktop_run

    run = DesktopRun(result=dict(CLEAN, checked=True), output="QGIS died on signal 11", returncode=139)
    with pytest.warns(UserWarning, match="after every check had passed"):
        assert check_desktop_run(run)["checked"]


@pytest.mark.parametrize("run_fields, problem", [
    ({"result": {}, "returncode": 139}, "did not finish the probe"),
    ({"result": dict(CLEAN), "errors": ["Python warning: territory_planner/ui/dock.py: DeprecationWarning"],
      "returncode": 139}, "Python errors or warnings"),
    ({"result": dict(CLEAN), "errors": ["Python error: territory_planner/plugin.py: NameError"]}, "Python errors"),
    ({"result": dict(CLEAN, unloaded=False), "returncode": 139}, "did not unload cleanly"),
    ({"result": dict(CLEAN, left_behind=["TerritoryPlannerDock"]), "returncode": 0}, "left these behind"),
    ({"result": dict(CLEAN, probe_error="Traceback ..."), "returncode": 139}, "Traceback"),
    ({"result": {k: v for k, v in CLEAN.items() if k != "project_cleared"}, "returncode": 0}, "layers were left"),
])
def test_plugin_problems_fail_with_or_without_a_crash(run_fields, problem):
    from qgis_desktop import DesktopRun, check_desktop_run

    with pytest.raises(AssertionError, match=problem):
        check_desktop_run(DesktopRun(**run_fields))


def test_a_run_still_unpacks_as_result_errors_output():
    from qgis_desktop import DesktopRun

    result, errors, output = DesktopRun(result={"a": 1}, errors=["e"], output="o", returncode=0)
    assert (result, errors, output) == ({"a": 1}, ["e"], "o")
