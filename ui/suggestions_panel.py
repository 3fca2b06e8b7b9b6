"""The suggestions for the active territory: the best single-unit moves into or out of it
(``core.plan.suggestions``), each with what it does to both territories' deviations. A click
previews a move (apply or discard it in the preview); a double click selects its unit on the map."""

from __future__ import annotations

import numpy as np
from qgis.core import Qgis
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from ..core.plan.suggestions import Suggestion, suggest_moves
from ..i18n import tr
from ..layers.plan_reader import unit_label
from ..layers.signal_links import SignalLinks
from .preview import Preview

SUGGESTION_ROLE = Qt.ItemDataRole.UserRole + 10


def suggestions_for(service, count: int = 5) -> list[Suggestion]:
    """The best single-unit moves into or out of ``service``'s active territory (needs neighbours)."""
    if not service.is_bound or service.adjacency is None or service.active is None:
        return []
    ledger = service.ledger
    names = ledger.territories.names
    frozen = [position for position, name in enumerate(names) if name in ledger.territories.locked]
    targets = np.broadcast_to(ledger.target(len(names)), (max(len(names), 1), ledger.workloads.shape[1]))
    return suggest_moves(ledger.plan_labels(), ledger.workloads, targets, service.adjacency,
                         names.index(service.active), count=count, movable=~ledger.locked_mask(),
                         frozen_territories=frozen, sums=ledger.sums[ledger.listed()])


def unit_name(service, index: int) -> str:
    """How the panel names unit ``index``: its unit-name field value, else its feature id."""
    return unit_label(service.layer, service.plan.unit_name_field, int(service.fids[index]))


def propose_suggestion(service, suggestion: Suggestion) -> Preview | None:
    """Preview a suggested single-unit move (apply it with ``service.apply_preview``)."""
    names = service.territories.names
    if service.ledger.territory_of_fid(int(service.fids[suggestion.unit])) != names[suggestion.source]:
        service.warn(tr("That suggestion is out of date; the unit has moved since."), Qgis.MessageLevel.Info)
        return None
    return service.propose(np.array([suggestion.unit]), [names[suggestion.target]],
                           tr("Move unit {} to {}").format(unit_name(service, suggestion.unit),
                                                           service.display_name(names[suggestion.target])),
                           action="suggestion")


def suggestion_text(service, suggestion: Suggestion) -> str:
    """The move and its effect on both territories' deviations, per measure."""
    names = [service.display_name(name) for name in service.territory_names]
    effects = []
    for a, measure in enumerate(service.measure_names):
        effects.append(tr("{m}: {s} {sb:+.1f}→{sa:+.1f} %, {t} {tb:+.1f}→{ta:+.1f} %").format(
            m=measure, s=names[suggestion.source], t=names[suggestion.target],
            sb=100 * suggestion.deviation_before[0, a], sa=100 * suggestion.deviation_after[0, a],
            tb=100 * suggestion.deviation_before[1, a], ta=100 * suggestion.deviation_after[1, a]))
    return tr("Move {} from {} to {} — {}").format(unit_name(service, suggestion.unit), names[suggestion.source],
                                                   names[suggestion.target], "; ".join(effects))


class SuggestionsPanel(QWidget):
    """A heading and the list of suggestions for the active territory of ``service``."""

    #: the feature id of a suggestion's unit, double-clicked (to select it on the map)
    unitChosen = pyqtSignal(int)  # noqa: N815 - Qt's naming

    def __init__(self, service, parent=None):
        super().__init__(parent)
        self.service = service
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel(tr("Suggestions"), self)
        self.list = QListWidget(self)
        self.list.setToolTip(tr("Single-unit moves that improve the balance of the active territory; click one "
                                "to preview it, then apply or discard it"))
        layout.addWidget(self.label)
        layout.addWidget(self.list)
        self._links = SignalLinks([(self.list.itemClicked, self._on_clicked),
                                   (self.list.itemDoubleClicked, self._on_double_clicked)])

    def refresh(self) -> None:
        self.list.clear()
        service = self.service
        if not service.is_bound or service.active is None:
            self.label.setText(tr("Suggestions"))
            return
        if service.adjacency is None:
            self.label.setText(tr("Suggestions (waiting for neighbours…)"))
            return
        found = suggestions_for(service, 5)
        self.label.setText(tr("Suggestions for {}").format(service.active) if found else
                           tr("No single move improves the balance of {}").format(service.active))
        for suggestion in found:
            text = suggestion_text(service, suggestion)
            item = QListWidgetItem(text, self.list)
            item.setData(SUGGESTION_ROLE, suggestion)
            item.setToolTip(text)

    def _on_clicked(self, item: QListWidgetItem | None) -> None:
        suggestion = item.data(SUGGESTION_ROLE) if item is not None else None
        if suggestion is not None:
            propose_suggestion(self.service, suggestion)

    def _on_double_clicked(self, item: QListWidgetItem | None) -> None:
        suggestion = item.data(SUGGESTION_ROLE) if item is not None else None
        if suggestion is not None:
            self.unitChosen.emit(int(self.service.fids[suggestion.unit]))

    def unload(self) -> None:
        self._links.cut()
