"""The Territory Planner dock panel."""

from __future__ import annotations

from qgis.gui import QgsDockWidget
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtWidgets import QLabel, QVBoxLayout, QWidget


class TerritoryDock(QgsDockWidget):
    """Panel for assigning units to territories by hand (content grows with the dock issue)."""

    def __init__(self, iface, parent=None):
        super().__init__(self.tr("Territory Planner"), parent)
        self.iface = iface
        self.setObjectName("TerritoryPlannerDock")
        body = QWidget(self)
        layout = QVBoxLayout(body)
        hint = QLabel(self.tr("Build territories from the Processing toolbox: Territory Planner ▸ Build territories."), body)
        hint.setWordWrap(True)
        layout.addWidget(hint)
        layout.addStretch(1)
        self.setWidget(body)

    def tr(self, text: str) -> str:
        return QCoreApplication.translate("TerritoryDock", text)

    def unload(self) -> None:
        """Disconnect from QGIS objects before the plugin goes away."""
