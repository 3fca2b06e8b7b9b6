"""Wiring: the Processing provider, the dock and its toolbar/menu action.

Everything `initGui` adds is recorded in `self._undo_steps`; `unload` runs them in reverse, so
loading and unloading any number of times leaves nothing behind.
"""

from __future__ import annotations

from typing import Callable

from qgis.core import QgsApplication, QgsProject
from qgis.PyQt.QtCore import Qt

try:  # Qt6 (QGIS 4): QAction lives in QtGui
    from qgis.PyQt.QtGui import QAction
except ImportError:  # Qt5
    from qgis.PyQt.QtWidgets import QAction

from .algorithms.provider import TerritoryProvider
from .i18n import tr
from .resources import icon

MENU = "&Territory Planner"


class TerritoryPlannerPlugin:
    """The object QGIS creates through `classFactory`."""

    def __init__(self, iface):
        self.iface = iface
        self.provider: TerritoryProvider | None = None
        self.dock = None
        self.service = None
        self.controller = None
        self.dock_action: QAction | None = None
        self._undo_steps: list[Callable[[], None]] = []

    # Processing -----------------------------------------------------------------------------
    def initProcessing(self) -> None:  # noqa: N802 - QGIS API name
        if self.provider is not None:
            return
        self.provider = TerritoryProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    # GUI ------------------------------------------------------------------------------------
    def initGui(self) -> None:  # noqa: N802 - QGIS API name
        self.initProcessing()
        from .ui.assignment_service import AssignmentService
        from .ui.dock import TerritoryDock
        from .ui.plan_controller import PlanController
        from .ui.save_conflict_dialog import SaveConflictChooser

        # the plan the panel shows and edits, and its controller: the panel is a view of them
        self.service = AssignmentService(QgsProject.instance())
        # a save that would overwrite units someone else changed asks first (Keep mine / Take theirs / Cancel)
        self.service.conflict_chooser = SaveConflictChooser(self.iface.mainWindow())
        self.controller = PlanController(self.service, QgsProject.instance())
        self.dock = TerritoryDock(self.iface, self.iface.mainWindow(), controller=self.controller)
        self.iface.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        self.dock.hide()  # shown from its button; adding it to a visible main window shows it
        self._undo_steps.append(self._remove_dock)

        action = QAction(icon("territory.svg"), tr("Territory Planner"), self.iface.mainWindow())
        action.setObjectName("TerritoryPlannerDockAction")
        action.setToolTip(tr("Show or hide the Territory Planner panel"))
        action.setCheckable(True)
        action.toggled.connect(self.dock.setVisible)
        self.dock.visibilityChanged.connect(action.setChecked)
        self.iface.addToolBarIcon(action)
        self.iface.addPluginToMenu(MENU, action)
        self.dock_action = action
        self._undo_steps.append(lambda: self._remove_action(action))

    def _remove_action(self, action: QAction) -> None:
        self.iface.removePluginMenu(MENU, action)
        self.iface.removeToolBarIcon(action)
        action.deleteLater()
        self.dock_action = None

    def _remove_dock(self) -> None:
        if self.dock is None:
            return
        self.dock.unload()
        self.iface.removeDockWidget(self.dock)
        self.dock.setParent(None)
        self.dock.deleteLater()
        self.dock = None
        self.controller.unload()
        self.controller.deleteLater()
        self.controller = None
        self.service.close()
        self.service.deleteLater()
        self.service = None

    def unload(self) -> None:
        while self._undo_steps:
            self._undo_steps.pop()()
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
