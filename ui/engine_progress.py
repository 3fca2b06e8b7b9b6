"""The row of the panel that follows a Build or Rebalance while the engine searches: what it does
(the phase and the worst deviation of the best plan so far), how far it is, and Cancel."""

from __future__ import annotations

from qgis.PyQt.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QVBoxLayout, QWidget

from ..i18n import tr
from ..layers.signal_links import SignalLinks
from .table_dialog import push_button


class EngineProgress(QWidget):
    """A view of the controller's engine runs: shown while one runs, hidden otherwise; ``cancel_button``
    asks the controller to stop the search (nothing is changed when a run is cancelled)."""

    def __init__(self, controller, parent=None):
        super().__init__(parent)
        self.setObjectName("territoryEngineProgress")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.line = QLabel(self)
        self.line.setObjectName("territoryEngineLine")
        self.line.setWordWrap(True)
        row = QHBoxLayout()
        self.bar = QProgressBar(self)
        self.bar.setObjectName("territoryEngineBar")
        self.bar.setRange(0, 100)
        self.cancel_button = push_button(self, tr("Cancel"), "territoryEngineCancel",
                                         tr("Stop the search; nothing is changed"))
        row.addWidget(self.bar, 1)
        row.addWidget(self.cancel_button)
        layout.addWidget(self.line)
        layout.addLayout(row)
        self.setVisible(False)
        self._links = SignalLinks([
            (controller.engineStarted, self.start),
            (controller.progress, self.show_line),
            (controller.engineFraction, self.show_fraction),
            (controller.engineEnded, self.stop),
            (self.cancel_button.clicked, self.cancel),
        ])
        self._controller = controller

    def start(self, title: str) -> None:
        """A run began: show its title until the engine says what it does."""
        self.line.setText(title)
        self.bar.setValue(0)
        self.cancel_button.setEnabled(True)
        self.setVisible(True)

    def show_line(self, text: str) -> None:
        self.line.setText(text)

    def show_fraction(self, percent: float) -> None:
        self.bar.setValue(int(round(percent)))

    def cancel(self, *_clicked) -> None:
        """Stop the run: the search stops at its next step, and nothing is changed."""
        self.cancel_button.setEnabled(False)
        self.line.setText(tr("Stopping the search…"))
        self._controller.cancel_engine()

    def stop(self) -> None:
        self.setVisible(False)
        self.cancel_button.setEnabled(True)
        self.line.clear()
        self.bar.setValue(0)

    def unload(self) -> None:
        self._links.cut()
