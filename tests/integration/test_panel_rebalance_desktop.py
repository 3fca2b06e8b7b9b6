"""Rebalance from the panel in the real QGIS desktop (under Xvfb), with the engine in QGIS's task
manager as a user runs it (issue 26): the preview comes within the time limit, the panel answers
clicks on its table while the engine searches, and Cancel stops a search, changing nothing."""

from __future__ import annotations

import shutil

import pytest
from qgis_desktop import NEEDS_DESKTOP, ROOT, check_desktop_run, run_desktop

pytestmark = NEEDS_DESKTOP


@pytest.mark.slow(20)
def test_rebalance_in_the_desktop_previews_answers_clicks_and_cancels(tmp_path):
    sample = tmp_path / "georgia_counties.gpkg"
    shutil.copy(ROOT / "resources" / "data" / "georgia_counties.gpkg", sample)
    run = run_desktop(tmp_path, f"""
        import time
        from qgis.core import QgsProject, QgsVectorLayer
        from qgis.PyQt.QtCore import QEventLoop, Qt, QTimer
        from qgis.PyQt.QtTest import QTest
        from qgis.PyQt.QtWidgets import QDockWidget

        def wait(condition, seconds):
            loop, end = QEventLoop(), time.monotonic() + seconds
            while not condition() and time.monotonic() < end:
                QTimer.singleShot(20, loop.quit)
                loop.exec()
            return condition()

        layer = QgsVectorLayer({str(sample)!r} + "|layername=georgia_counties", "Georgia counties", "ogr")
        QgsProject.instance().addMapLayer(layer)
        iface.mainWindow().showMaximized()
        dock = [d for d in iface.mainWindow().findChildren(QDockWidget)
                if d.objectName() == "TerritoryPlannerDock"][0]
        dock.show()
        service, controller, row = dock.service, dock.controller, dock.engine_progress
        in_task_manager = controller.run_task
        # a first plan on population, built here and now
        controller.run_task = lambda task: task.finished(task.run())
        dock.setup_form.layer_combo.setLayer(layer)
        dock.setup_form.measures_combo.deselectAllOptions()
        dock.setup_form.measures_combo.setCheckedItems(["population"])
        dock.setup_form.tolerance_spin.setValue(5.0)
        dock.create_field("territory")
        dock.territory_toolbar.count_spin.setValue(8)
        dock.territory_toolbar.build_action.trigger()
        result["built"] = dock.apply_preview()
        result["saved"] = layer.commitChanges()
        # rebalanced on both measures at 1 %, out of reach: the engine searches until its 4 s are up
        controller.run_task = in_task_manager
        dock.setup_form.measures_combo.setCheckedItems(["population", "elderly"])
        dock.setup_form.tolerance_spin.setValue(1.0)
        dock.territory_toolbar.time_limit_spin.setValue(4)
        result["neighbours"] = wait(lambda: service.adjacency is not None, 60)
        lines, shown, answers = [], [], []
        controller.progress.connect(lines.append)
        service.previewChanged.connect(lambda preview: shown.append(preview is not None))

        def click_a_row():
            # a click on the next territory's row makes it the active territory
            if not controller.engine_tasks or shown:
                return
            index = dock.proxy.index(len(answers) % len(service.territory_names), 0)
            start = time.monotonic()
            QTest.mouseClick(dock.table.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                             dock.table.visualRect(index).center())
            answers.append((service.active == index.data(), time.monotonic() - start))

        clicker = QTimer()
        clicker.setInterval(250)
        clicker.timeout.connect(click_a_row)
        ticks = []
        ticker = QTimer()
        ticker.setInterval(50)
        ticker.timeout.connect(lambda: ticks.append(time.monotonic()))
        clicker.start()
        ticker.start()
        started = time.monotonic()
        dock.territory_toolbar.rebalance_action.trigger()
        result["row_shown"] = row.isVisible() and "Rebalancing" in row.line.text()
        result["preview_came"] = wait(lambda: bool(shown), 120)
        result["seconds"] = time.monotonic() - started
        clicker.stop()
        ticker.stop()
        result["answers"] = answers
        result["longest_pause"] = max((b - a for a, b in zip(ticks, ticks[1:])), default=0.0)
        result["worst_shown"] = any("worst deviation" in line for line in lines)
        result["preview_units"] = len(service.preview.moved) if service.preview else -1
        result["row_hidden"] = not row.isVisible()
        dock.discard_preview()

        # the same with 600 s: Cancel in the panel stops it
        dock.territory_toolbar.time_limit_spin.setValue(600)
        lines.clear()
        dock.territory_toolbar.rebalance_action.trigger()
        result["searching"] = wait(lambda: any("worst deviation" in line for line in lines), 60)
        QTest.mouseClick(row.cancel_button, Qt.MouseButton.LeftButton)
        result["cancel_ended"] = wait(lambda: not controller.engine_tasks and not row.isVisible(), 60)
        result["cancel_changed_nothing"] = service.preview is None and not layer.isModified()
    """, timeout=300)
    result = check_desktop_run(run)
    assert result["built"] == 159 and result["saved"] and result["neighbours"]
    assert result["row_shown"], "the progress row shows the run"
    assert result["preview_came"] and result["preview_units"] > 0 and result["row_hidden"]
    assert result["worst_shown"], "the progress line says the worst deviation of the best plan so far"
    # the panel answered the clicks on its table while the engine searched
    assert len(result["answers"]) >= 3, result
    assert all(answered for answered, _ in result["answers"]), result["answers"]
    assert result["longest_pause"] < 3.0, f"the panel stopped answering for {result['longest_pause']:.1f} s"
    assert result["searching"] and result["cancel_ended"] and result["cancel_changed_nothing"]
