"""How the panel is laid out and fits a screen: the setup box, the territory table, the frame that
scrolls the panel and keeps the progress and status lines in view, the table's share of the splitter,
and the status line's text."""

from __future__ import annotations

from qgis.gui import QgsCollapsibleGroupBox
from qgis.PyQt.QtCore import QEvent, Qt
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHeaderView,
    QLabel,
    QScrollArea,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ..i18n import tr
from .engine_progress import EngineProgress


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


def setup_box(parent: QWidget, form: QWidget) -> QgsCollapsibleGroupBox:
    """The box that holds the setup form; it folds away once the plan is set up, so the territory table
    then has the height."""
    box = QgsCollapsibleGroupBox(tr("Plan setup"), parent)
    box.setObjectName("territorySetupBox")
    box.setSaveCollapsedState(False)
    box_layout = QVBoxLayout(box)
    box_layout.setContentsMargins(2, 2, 2, 2)
    box_layout.addWidget(form)
    return box


def territory_table(parent: QWidget, model) -> QTableView:
    """The territory table over ``model`` (the sorted territory list): one row chosen at a time, nothing
    edited in place, compact rows, columns sized by the panel after each reset."""
    table = QTableView(parent)
    table.setModel(model)
    table.setSortingEnabled(True)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().setVisible(False)
    # compact rows: a laptop screen shows every territory of a small plan without scrolling
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 8)
    table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    # sized once per reset, not on every change: painting must not make the view measure every cell
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    table.horizontalHeader().setStretchLastSection(False)
    # columns are sized from the rows in view and 200 others, not from every territory's row
    table.horizontalHeader().setResizeContentsPrecision(200)
    table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
    table.setObjectName("territoryTable")
    return table


class PanelFrame(QWidget):
    """The panel's frame: its body in a scroll area (a short screen scrolls the panel instead of making
    QGIS's window taller than the screen), and below it, always in view, the engine's progress row, the
    status line and the active territory's travel times."""

    def __init__(self, body: QWidget, controller, parent: QWidget):
        super().__init__(parent)
        frame_layout = QVBoxLayout(self)
        frame_layout.setContentsMargins(0, 0, 0, 0)
        frame_layout.setSpacing(2)
        scroll = PanelScroll(self)
        scroll.setObjectName("territoryPanelScroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        frame_layout.addWidget(scroll, 1)
        self.scroll = scroll
        # in view with the status line: Cancel must not scroll away while the engine searches
        self.engine_progress = EngineProgress(controller, self)
        frame_layout.addWidget(self.engine_progress)
        self.status_label = QLabel(self)
        self.status_label.setObjectName("territoryStatus")
        self.status_label.setWordWrap(True)
        self.status_label.setContentsMargins(4, 0, 4, 2)
        frame_layout.addWidget(self.status_label)
        self.travel_label = QLabel(self)
        self.travel_label.setObjectName("territoryTravel")
        self.travel_label.setWordWrap(True)
        self.travel_label.setVisible(False)
        frame_layout.addWidget(self.travel_label)


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


def make_room(splitter, panel) -> None:
    """Give ``panel`` (one of the splitter's panels, just shown) the height it needs: a hidden panel
    keeps no room in a splitter, so it would show with none. The splitter grows by what the other
    panels cannot spare (on a short screen the panel then scrolls)."""
    index = splitter.indexOf(panel)
    if index < 0:
        return
    sizes = splitter.sizes()
    want = max(panel.minimumSizeHint().height(), panel.sizeHint().height())
    lack = want - sizes[index]
    if lack <= 0:
        return
    for k in sorted(range(len(sizes)), key=lambda k: -sizes[k]):
        widget = splitter.widget(k)
        if k in (0, index) or not widget.isVisible():  # the territory table keeps its rows (fit_table_rows)
            continue
        floor = max(widget.minimumSizeHint().height(), widget.minimumHeight())
        take = min(max(sizes[k] - floor, 0), lack)
        sizes[k] -= take
        lack -= take
    sizes[index] = want
    if lack > 0:
        splitter.setMinimumHeight(sum(sizes) + splitter.handleWidth() * (len(sizes) - 1))
    splitter.setSizes(sizes)


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
