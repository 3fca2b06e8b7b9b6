"""How the panel fits a screen: its scroll area, the territory table's share of the splitter, and the
status line's text."""

from __future__ import annotations

from qgis.PyQt.QtCore import QEvent
from qgis.PyQt.QtWidgets import QScrollArea

from ..i18n import tr


class PanelScroll(QScrollArea):
    """The panel's scroll area: as wide as the panel's content needs (so the dock opens wide enough for
    its buttons and the table's columns), as tall as the screen allows (it scrolls when shorter)."""

    def setWidget(self, widget) -> None:  # noqa: N802 - Qt's name
        super().setWidget(widget)
        widget.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt's name
        # the content's size changed (a layer chosen, a panel shown): the dock may need to be wider
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()
        return super().eventFilter(watched, event)

    def _content_width(self) -> int:
        body = self.widget()
        return body.minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width() if body else 0

    def sizeHint(self):  # noqa: N802 - Qt's name
        hint = super().sizeHint()
        hint.setWidth(max(hint.width(), self._content_width()))
        return hint

    def minimumSizeHint(self):  # noqa: N802 - Qt's name
        # never narrower than the content (no clipped buttons, no sideways scrolling); any height
        hint = super().minimumSizeHint()
        hint.setWidth(max(hint.width(), self._content_width()))
        return hint


def fit_table_rows(splitter, table, row_count: int, most: int = 12) -> None:
    """Give ``table`` (the splitter's first widget) the height of its rows (up to ``most``) before the
    panels below it (preview, suggestions, feedback) share the rest; the splitter never squeezes the
    table below that height (on a short screen the panel scrolls instead)."""
    rows = min(row_count, most)
    needed = (table.horizontalHeader().height() + rows * table.verticalHeader().defaultSectionSize()
              + 2 * table.frameWidth() + 2)
    below = [splitter.widget(k) for k in range(1, splitter.count()) if splitter.widget(k).isVisible()]
    least_below = sum(max(w.minimumSizeHint().height(), w.minimumHeight()) for w in below)
    splitter.setMinimumHeight(needed + least_below + splitter.handleWidth() * len(below))
    sizes = splitter.sizes()
    total = sum(sizes)
    if total <= needed or sizes[0] >= needed:
        return
    others = sum(sizes[1:]) or 1
    rest = total - needed
    splitter.setSizes([needed] + [int(rest * size / others) for size in sizes[1:]])


def plan_status(service) -> str:
    """The status line: the active territory and the plan's worst deviation (refreshed after every
    change, undo and redo), a proposal waiting to be applied, the neighbours still being read."""
    if not service.is_bound:
        return tr("Choose a units layer and its territory field.")
    active = service.display_name(service.active) if service.active is not None else "–"
    text = tr("Active: {}").format(active)
    if service.territory_names and any(service.ledger.counts[service.ledger.listed()]):
        outside = sum(1 for name in service.territory_names if service.out_of_tolerance(name))
        text += " · " + tr("worst deviation {:.1f} % (tolerance {})").format(
            100.0 * service.ledger.max_deviation(), service.plan.tolerance_text())
        if outside:
            text += " · " + tr("{} outside").format(outside)
    preview = service.preview
    if preview is not None:
        text += " · " + tr("{}: worst deviation {:.1f} % → {:.1f} %, apply or discard it").format(
            preview.title, 100.0 * preview.worst_before, 100.0 * preview.worst_after)
    if service.adjacency is None:
        text += " — " + tr("reading neighbours for contiguity…")
    return text
