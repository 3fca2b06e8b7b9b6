"""The part of the panel that shows a proposal (Build, Rebalance, a suggestion) before it is applied:
what moves, the before → after deviation of each territory it touches, and Apply / Discard."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from qgis.core import QgsFeatureRequest
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtGui import QBrush, QColor
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..i18n import tr
from ..layers.values import natural_key, text_or_none
from .preview import Preview
from .table_dialog import RIGHT, push_button

_RED = QColor(200, 40, 40)
FID_ROLE = Qt.ItemDataRole.UserRole + 20


def preview_moves(service, preview: Preview, limit: int = 5000) -> list[tuple]:
    """(fid, unit name, from, to) of each unit ``preview`` would move (the first ``limit``), territories
    by their names, units by the plan's unit-name field (else the feature id), in name order."""
    target = dict(zip(np.asarray(preview.units).tolist(), preview.names))
    moved = [int(i) for i in preview.moved[:limit]]
    fids = [int(service.fids[i]) for i in moved]
    names = {fid: str(fid) for fid in fids}
    field = service.plan.unit_name_field
    index = service.layer.fields().lookupField(field) if field else -1
    if index >= 0 and fids:
        request = QgsFeatureRequest().setFilterFids(fids).setFlags(QgsFeatureRequest.Flag.NoGeometry)
        request.setSubsetOfAttributes([index])
        for feature in service.layer.getFeatures(request):
            names[feature.id()] = text_or_none(feature.attribute(index)) or str(feature.id())
    rows = [(fid, names[fid], service.display_name(service.registry[service.labels[i]]),
             service.display_name(target.get(i))) for i, fid in zip(moved, fids)]
    return sorted(rows, key=lambda row: natural_key(row[1]))


class PreviewPanel(QWidget):
    """A view of one :class:`Preview`; hidden while there is none."""

    #: a unit of the list was clicked (its feature id)
    unitChosen = pyqtSignal(int)  # noqa: N815 - Qt's naming

    def __init__(self, parent=None):
        super().__init__(parent)
        self._names = lambda code: code
        self.setObjectName("territoryPreview")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.summary = QLabel(self)
        self.summary.setWordWrap(True)
        self.summary.setObjectName("territoryPreviewSummary")
        self.table = QTableWidget(self)
        self.table.setObjectName("territoryPreviewTable")
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        buttons = QHBoxLayout()
        self.apply_button = push_button(self, tr("Apply"), "territoryApplyPreview",
                                        tr("Make these changes as one edit (undo reverts it)"))
        self.discard_button = push_button(self, tr("Discard"), "territoryDiscardPreview",
                                          tr("Forget this proposal; the layer stays as it is"))
        self.select_button = push_button(self, tr("Select"), "territoryPreviewSelect",
                                         tr("Select the units that would move (and zoom to them)"))
        buttons.addWidget(self.select_button)
        buttons.addStretch(1)
        buttons.addWidget(self.discard_button)
        buttons.addWidget(self.apply_button)
        # where each unit goes: a click selects it on the map and zooms to it
        self.units_list = QListWidget(self)
        self.units_list.setObjectName("territoryPreviewUnits")
        self.units_list.setToolTip(tr("The units that would move, from → to; click one to select it on the map"))
        self.units_list.itemClicked.connect(lambda item: self.unitChosen.emit(int(item.data(FID_ROLE))))
        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("territoryPreviewTabs")
        self.tabs.addTab(self.table, tr("Territories"))
        self.tabs.addTab(self.units_list, tr("Units"))
        layout.addWidget(self.summary)
        layout.addWidget(self.tabs, 1)
        layout.addLayout(buttons)
        self.setVisible(False)

    def show_preview(self, preview: Preview | None, moves: list | None = None,
                     names: Callable[[str], str] | None = None) -> None:
        """Show ``preview``: its summary, each touched territory's deviation before → after, and
        ``moves`` [(fid, unit, from, to)]; ``names`` gives a territory code's name."""
        self.units_list.clear()
        if preview is None:
            self.table.setRowCount(0)
            self.summary.clear()
            self.setVisible(False)
            return
        self._names = names or (lambda code: code)
        for fid, unit, before, after in moves or []:
            item = QListWidgetItem(f"{unit}: {before or tr('unassigned')} → {after or tr('unassigned')}")
            item.setData(FID_ROLE, int(fid))
            self.units_list.addItem(item)
        self.tabs.setTabText(1, tr("Units ({})").format(len(moves or [])))
        moved_share = [100.0 * w / t if t > 0 else 0.0 for w, t in zip(preview.moved_workload, preview.total_workload)]
        workload = ", ".join(tr("{:.1f} % of {}").format(s, m) for s, m in zip(moved_share, preview.measures))
        text = tr("{}: {} unit(s) would change territory ({}). Worst deviation {:.1f} % → {:.1f} %.").format(
            preview.title, len(preview.moved), workload, 100.0 * preview.worst_before, 100.0 * preview.worst_after)
        outside = preview.out_of_tolerance_after()
        if outside:
            text += " " + tr("Still outside the tolerance: {}.").format(", ".join(outside))
        if preview.notes:
            text += "\n" + "\n".join(preview.notes)
        self.summary.setText(text)
        self._fill_table(preview)
        self.apply_button.setEnabled(len(preview.moved) > 0 or preview.territory_list is not None)
        self.setVisible(True)

    def _fill_table(self, preview: Preview) -> None:
        changed = np.flatnonzero((np.abs(preview.after - preview.before) > 1e-12).any(axis=1))
        headers = [tr("Territory")] + [tr("{} before → after").format(m) for m in preview.measures]
        self.table.clear()
        self.table.setColumnCount(len(headers))
        self.table.setHorizontalHeaderLabels(headers)
        self.table.setRowCount(len(changed))
        tolerance = np.broadcast_to(np.asarray(preview.tolerance, dtype=float).reshape(-1),
                                    (max(len(preview.measures), 1),)) if np.ndim(preview.tolerance) else None
        for row, k in enumerate(changed):
            self.table.setItem(row, 0, QTableWidgetItem(str(self._names(preview.territories[k]))))
            for a in range(len(preview.measures)):
                before, after = preview.before[k, a], preview.after[k, a]
                item = QTableWidgetItem(f"{100 * before:+.1f} % → {100 * after:+.1f} %")
                item.setTextAlignment(RIGHT)
                limit = preview.tolerance if tolerance is None else tolerance[min(a, len(tolerance) - 1)]
                if abs(after) > limit + 1e-9:
                    item.setForeground(QBrush(_RED))
                self.table.setItem(row, 1 + a, item)
        self.table.resizeColumnsToContents()

    def rows(self) -> dict:
        """What the table shows: {territory: [cell text per measure]} (for tests and screen readers)."""
        return {self.table.item(r, 0).text(): [self.table.item(r, c).text() for c in range(1, self.table.columnCount())]
                for r in range(self.table.rowCount())}
