"""The panel's read-only tables and the dialogs around them (change log, scenarios, save conflicts).

Cells are ``QTableWidgetItem`` texts: a unit or territory named ``<b>`` or ``'; DROP TABLE`` is shown
as the text it is."""

from __future__ import annotations

from collections.abc import Callable

from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)


def read_only_table(parent: QWidget, name: str, headers: list[str], rows: list[list[str]],
                    right_aligned: Callable[[int, int], bool] | None = None) -> QTableWidget:
    """A table no one edits: ``rows`` of cell texts under ``headers``; ``right_aligned(row, column)``
    says which cells hold numbers."""
    table = QTableWidget(len(rows), len(headers), parent)
    table.setObjectName(name)
    table.setHorizontalHeaderLabels(headers)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().setVisible(False)
    fill_read_only_table(table, rows, right_aligned)
    return table


def fill_read_only_table(table: QTableWidget, rows: list[list[str]],
                         right_aligned: Callable[[int, int], bool] | None = None) -> None:
    """Show ``rows`` of cell texts in ``table`` (its headers stay)."""
    table.setRowCount(len(rows))
    for row, cells in enumerate(rows):
        for column, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if right_aligned is not None and right_aligned(row, column):
                item.setTextAlignment(RIGHT)
            table.setItem(row, column, item)
    table.resizeColumnsToContents()


def fit_to_contents(dialog: QDialog, table: QTableWidget, rows: int = 14) -> None:
    """Size ``dialog`` so that ``table`` shows every column and up to ``rows`` rows without scrolling,
    within the screen the dialog is on."""
    width = table.verticalHeader().width() + 2 * table.frameWidth() + table.verticalScrollBar().sizeHint().width()
    width += sum(table.columnWidth(c) for c in range(table.columnCount()))
    height = table.horizontalHeader().height() + 2 * table.frameWidth()
    height += sum(table.rowHeight(r) for r in range(min(rows, table.rowCount()))) or table.verticalHeader()\
        .defaultSectionSize()
    extra = dialog.sizeHint() - table.sizeHint()  # the labels, buttons and margins around the table
    screen = dialog.screen().availableGeometry() if hasattr(dialog, "screen") and dialog.screen() else None
    wanted_width = width + max(extra.width(), 24)
    wanted_height = height + max(extra.height(), 80)
    if screen is not None:
        wanted_width = min(wanted_width, int(0.9 * screen.width()))
        wanted_height = min(wanted_height, int(0.8 * screen.height()))
    dialog.resize(max(wanted_width, 360), max(wanted_height, 200))


def push_button(parent: QWidget, text: str, name: str, tip: str) -> QPushButton:
    button = QPushButton(text, parent)
    button.setObjectName(name)
    button.setToolTip(tip)
    return button


class TableDialog(QDialog):
    """A line of text over a read-only table, and a Close button (non-modal in the panel)."""

    def __init__(self, name: str, title: str, text: str, table: tuple, size: tuple[int, int], parent=None):
        """``table``: (object name, headers, rows, right_aligned) as :func:`read_only_table` takes them."""
        super().__init__(parent)
        self.setObjectName(name)
        self.setWindowTitle(title)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(text, self))
        self.table = read_only_table(self, *table)
        layout.addWidget(self.table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(*size)
        fit_to_contents(self, self.table)
