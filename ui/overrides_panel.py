"""The overrides of the active territory: the accounts outside its units that it keeps, and the
accounts in its units that another territory serves, each with its workload. A double click
selects the account on the map and zooms to it."""

from __future__ import annotations

from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtWidgets import QTreeWidget, QTreeWidgetItem

from ..i18n import tr
from ..layers.signal_links import SignalLinks

FID_ROLE = Qt.ItemDataRole.UserRole + 20


class OverridesPanel(QTreeWidget):
    """Two groups under the active territory (kept, served by others) of the account binding's overrides."""

    #: the feature id of an account, double-clicked (to select it on the map)
    accountChosen = pyqtSignal(int)  # noqa: N815 - Qt's naming

    def __init__(self, service, accounts, parent=None):
        super().__init__(parent)
        self.service, self.accounts = service, accounts
        self.setObjectName("territoryOverrides")
        self.setRootIsDecorated(True)
        self.setToolTip(tr("Overrides of the active territory: accounts it keeps from outside its units, and "
                           "accounts in its units served by another territory. Double-click one to find it."))
        self._links = SignalLinks([(self.itemDoubleClicked, self._on_double_clicked)])
        self.refresh()

    def refresh(self) -> None:
        self.clear()
        measures = self.accounts.account_measures if self.accounts.is_bound else []
        self.setHeaderLabels([tr("Account"), tr("Territory")] + measures)
        name = self.service.active
        if not self.accounts.ready or name is None:
            self.setVisible(self.accounts.is_bound)
            return
        self.setVisible(True)
        kept, served = self.accounts.overrides_of(name)
        for title, rows in ((tr("Kept from outside its units ({})").format(len(kept)), kept),
                            (tr("In its units, served by others ({})").format(len(served)), served)):
            group = QTreeWidgetItem(self, [title])
            group.setFirstColumnSpanned(True)
            for fid, ident, other, workloads in rows:
                item = QTreeWidgetItem(group, [ident, other or "–"] + [f"{float(v):,.1f}" for v in workloads])
                item.setData(0, FID_ROLE, fid)
            group.setExpanded(True)
        self.resizeColumnToContents(0)

    def _on_double_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        fid = item.data(0, FID_ROLE)
        if fid is not None:
            self.accountChosen.emit(int(fid))

    def unload(self) -> None:
        self._links.cut()
