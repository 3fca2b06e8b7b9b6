"""The territory list as the panel shows it: one row per territory (and one for unassigned units)
over the service's figures. The model only reads the service; it never computes figures itself.
(The "territory table" is another thing: the toolbox's table of territories, layers/territory_table.py.)"""

from __future__ import annotations

import math

from qgis.core import QgsApplication
from qgis.PyQt.QtCore import QAbstractTableModel, QModelIndex, Qt
from qgis.PyQt.QtGui import QColor

from ..i18n import tr
from ..layers.signal_links import SignalLinks
from ..layers.style import territory_colour
from ..layers.territory_table import display_name
from .assignment_service import AssignmentService
from .territory_list import TerritoryListEditor

#: numeric value for sorting (Qt's UserRole)
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
#: True when a deviation cell lies outside the tolerance
OUT_OF_TOLERANCE_ROLE = Qt.ItemDataRole.UserRole + 2
#: the deviation as a fraction, for the bar delegate
DEVIATION_ROLE = Qt.ItemDataRole.UserRole + 3
#: the territory name of the row (None for the unassigned row)
TERRITORY_ROLE = Qt.ItemDataRole.UserRole + 4
#: the tolerance as a fraction
TOLERANCE_ROLE = Qt.ItemDataRole.UserRole + 5


class TerritoryListModel(QAbstractTableModel):
    """Columns: territory, locked, [rep], units, [goal], then sum and deviation per measure, pieces."""

    def __init__(self, service: AssignmentService, parent=None):
        super().__init__(parent)
        self.service = service
        self._rows: list[str | None] = []
        self._columns: list[tuple[str, int]] = []
        # figures per row, fetched from the service once per change (views ask for every cell
        # and role many times while painting and sizing columns)
        self._figures: dict = {}
        self._measure_names: list[str] = []
        self._warning_icon = QgsApplication.getThemeIcon("/mIconWarning.svg")
        self._editor = TerritoryListEditor(service)  # the lock column's check boxes lock territories
        #: {code: why its rep is flagged} (a rep living outside the territory), shown in red
        self.rep_flags: dict[str, str] = {}
        self._links = SignalLinks([(service.territoriesChanged, self.reset), (service.planChanged, self.reset),
                                   (service.figuresChanged, self._on_figures_changed)])
        self.reset()

    def _figures_of(self, name) -> dict:
        """The ledger's figures of a territory, with the rep shown for it."""
        figures = self._figures.get(name)
        if figures is None:
            figures = self._figures[name] = self.service.ledger.figures_of(name)
            if figures:
                figures["rep"] = self._rep_text(name)
        return figures

    def _rep_text(self, name) -> str:
        """The territory's rep in the territory table (by code, as Assign reps writes it), else the rep
        of most of its units (the rep field)."""
        service = self.service
        row = service.table_rows.get(name) if name is not None else None
        if row is not None and row.rep:
            return row.rep
        common = service.ledger.rep_counts(name) if service.plan.rep_field else []
        if not common:
            return ""
        if len(common) == 1:
            return common[0][0]
        return tr("{} (+{} more)").format(common[0][0], len(common) - 1)

    # -- structure -------------------------------------------------------------------------------
    def reset(self) -> None:
        self.beginResetModel()
        self._figures = {}
        service = self.service
        self._rows = list(service.territory_names) + ([None] if service.is_bound else [])
        columns = [("name", -1), ("locked", -1)]
        if service.is_bound and service.plan.rep_field:
            columns.append(("rep", -1))
        columns.append(("units", -1))
        if service.is_bound and any(row.goal is not None for row in service.table_rows.values()):
            columns.append(("goal", -1))  # goals kept by code in the territory table
        if service.is_bound:
            columns.append(("worst", -1))
            for a in range(len(service.measure_names)):
                if service.measures:
                    columns.append(("sum", a))
                columns.append(("deviation", a))
        columns.append(("parts", -1))
        self._columns = columns
        # names as they were at this reset: the view may paint once more before the next one
        self._measure_names = list(service.measure_names) if service.is_bound else []
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._columns)

    def column_kind(self, column: int) -> tuple[str, int]:
        return self._columns[column]

    def column_of(self, kind: str, measure: int = -1) -> int:
        """Column number of a kind of figure (e.g. ("deviation", 0)); -1 when not shown."""
        try:
            return self._columns.index((kind, measure))
        except ValueError:
            return -1

    def territory_at(self, row: int) -> str | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def row_of(self, name: str | None) -> int:
        try:
            return self._rows.index(name)
        except ValueError:
            return -1

    def _on_figures_changed(self, names: list) -> None:
        if not self._rows:
            return
        last = len(self._columns) - 1
        if not names:
            self._figures = {}
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._rows) - 1, last))
            return
        for name in names:
            self._figures.pop(name, None)
            row = self.row_of(name)
            if row >= 0:
                self.dataChanged.emit(self.index(row, 0), self.index(row, last))

    # -- headers and cells -----------------------------------------------------------------------
    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self._columns):
            return None
        kind, a = self._columns[section]
        measure = self._measure_names[a] if 0 <= a < len(self._measure_names) else ""
        if role == Qt.ItemDataRole.DisplayRole:
            return {
                "name": tr("Territory"), "locked": "", "rep": tr("Rep"), "units": tr("Units"),
                "sum": measure, "deviation": tr("{} dev. %").format(measure), "parts": tr("Pieces"),
                "worst": tr("Worst dev. %"), "goal": tr("Goal"),
            }[kind]
        if role == Qt.ItemDataRole.DecorationRole and kind == "locked":
            return QgsApplication.getThemeIcon("/locked.svg")
        if role == Qt.ItemDataRole.ToolTipRole:
            return {
                "name": tr("Territory name; the swatch is its colour on the map"),
                "locked": tr("Locked territories are changed neither by painting nor by rebalancing"),
                "rep": tr("Rep of the territory's units (from the rep field)"),
                "units": tr("Number of units"),
                "sum": tr("Sum of {}").format(measure),
                "deviation": tr("Deviation of {} from the territory's target; red outside the tolerance")
                .format(measure),
                "parts": tr("Connected pieces; more than one means the territory is not contiguous"),
                "worst": tr("The largest deviation over all balanced measures; red outside the tolerance"),
                "goal": tr("The territory's goal, kept by code in the territory table (Set territory goals)"),
            }[kind]
        return None

    def flags(self, index):
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.isValid() and self._columns[index.column()][0] == "locked" and self._rows[index.row()] is not None:
            flags |= Qt.ItemFlag.ItemIsUserCheckable
        return flags

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        name = self._rows[index.row()]
        kind, a = self._columns[index.column()]
        if role == TERRITORY_ROLE:
            return name
        if role == TOLERANCE_ROLE:
            return self._tolerance(kind, a, name)
        figures = self._figures_of(name)
        if not figures or (a >= 0 and a >= len(figures["sums"])):
            return None
        if kind == "name":
            return self._name_data(name, role)
        if kind == "locked":
            if role == Qt.ItemDataRole.CheckStateRole and name is not None:
                return Qt.CheckState.Checked if figures["locked"] else Qt.CheckState.Unchecked
            if role == SORT_ROLE:
                return int(figures["locked"])
            return None
        if kind == "rep":
            if role in (Qt.ItemDataRole.DisplayRole, SORT_ROLE):
                return figures["rep"]
            return None
        if kind == "units":
            if role in (Qt.ItemDataRole.DisplayRole, SORT_ROLE):
                return figures["units"]
            if role == Qt.ItemDataRole.TextAlignmentRole:
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            return None
        if kind == "goal":
            row = self.service.table_rows.get(name) if name is not None else None
            goal = row.goal if row is not None else None
            if role == Qt.ItemDataRole.DisplayRole:
                return _format_number(goal) if goal is not None else ""
            if role == SORT_ROLE:
                return goal if goal is not None else float("-inf")
            if role == Qt.ItemDataRole.TextAlignmentRole:
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            return None
        if kind == "sum":
            value = float(figures["sums"][a])
            if role == Qt.ItemDataRole.DisplayRole:
                return _format_number(value)
            if role == SORT_ROLE:
                return value
            if role == Qt.ItemDataRole.TextAlignmentRole:
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            return None
        if kind == "deviation":
            return self._deviation_data(name, float(figures["deviation"][a]), role, self._tolerance(kind, a, name))
        if kind == "worst":
            deviation = figures["deviation"]
            if name is None or not len(deviation):
                return None if role != SORT_ROLE else float("-inf")
            worst = int(abs(deviation).argmax())
            return self._deviation_data(name, float(deviation[worst]), role, self._tolerance(kind, a, name),
                                        outside=self.service.out_of_tolerance(name))
        if kind == "parts":
            return self._parts_data(name, figures["parts"], role)
        return None

    def show_rep_flags(self, flags: dict[str, str]) -> None:
        """Flag the territories whose rep lives outside them (``flags`` {code: text})."""
        if flags == self.rep_flags:
            return
        self.rep_flags = dict(flags)
        if self._rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._rows) - 1, 0))

    def _name_data(self, name, role):
        if role == Qt.ItemDataRole.ForegroundRole and name in self.rep_flags:
            return QColor(190, 30, 30)  # as AlignMix outlines a rep living elsewhere in red
        if role in (Qt.ItemDataRole.DisplayRole, SORT_ROLE):
            return display_name(self.service.table_rows, name) if name is not None else tr("Unassigned")
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._summary(name)
        if role == Qt.ItemDataRole.DecorationRole:
            if name is None:
                return QColor(200, 200, 200)
            colour = self.service.colours.of(name)  # the map's colour
            return QColor(colour) if colour else territory_colour(self.service.territory_names.index(name))
        if role == Qt.ItemDataRole.FontRole and name is None:
            from qgis.PyQt.QtGui import QFont

            font = QFont()
            font.setItalic(True)
            return font
        return None

    def _summary(self, name) -> str:
        """Every figure of a territory in a few lines (the name cell's tooltip)."""
        figures = self._figures_of(name)
        shown = display_name(self.service.table_rows, name)
        lines = [(shown if shown == name else f"{shown} ({name})") if name is not None else tr("Unassigned"),
                 tr("Units: {}").format(figures.get("units", 0))]
        if figures.get("rep"):
            lines.append(tr("Rep: {}").format(figures["rep"]))
        row = self.service.table_rows.get(name) if name is not None else None
        if row is not None and row.goal is not None:
            lines.append(tr("Goal: {}").format(_format_number(row.goal)))
        if name in self.rep_flags:
            lines.append(self.rep_flags[name])
        for a, measure in enumerate(self._measure_names):
            if a >= len(figures.get("sums", [])):
                break
            line = "{}: {}".format(measure, _format_number(float(figures["sums"][a])))
            deviation = float(figures["deviation"][a])
            if name is not None and not math.isnan(deviation):
                line += tr(" (target {}, {:+.1f} %)").format(_format_number(float(figures["targets"][a])),
                                                                    100.0 * deviation)
            lines.append(line)
        if name is not None and figures.get("parts", -1) >= 0:
            lines.append(tr("Pieces: {}").format(figures["parts"]))
        if figures.get("locked"):
            lines.append(tr("Locked"))
        return "\n".join(lines)

    def _tolerance(self, kind: str, a: int, name) -> float:
        """The tolerance (a fraction) a cell is judged against: its measure's own, or for the worst
        column the tolerance of the measure that deviates most (relative to its tolerance)."""
        tolerances = self.service.plan.tolerance_fractions()
        if kind == "deviation" and 0 <= a < len(tolerances):
            return float(tolerances[a])
        if kind == "worst" and name is not None and len(tolerances) > 1:
            deviation = self._figures_of(name).get("deviation")
            if deviation is not None and len(deviation) == len(tolerances):
                return float(tolerances[int(abs(deviation).argmax())])
        return float(tolerances[0]) if len(tolerances) else self.service.plan.tolerance / 100.0

    def _deviation_data(self, name, deviation: float, role, tolerance: float, outside: bool | None = None):
        if name is None or math.isnan(deviation):
            return None if role != SORT_ROLE else float("-inf")
        if outside is None:
            outside = abs(deviation) > tolerance + 1e-12
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{100.0 * deviation:+.1f} %"
        if role in (SORT_ROLE, DEVIATION_ROLE):
            return deviation
        if role == OUT_OF_TOLERANCE_ROLE:
            return outside
        if role == Qt.ItemDataRole.ToolTipRole:
            return (tr("Outside the tolerance of ±{:.1f} %") if outside
                    else tr("Within the tolerance of ±{:.1f} %")).format(100.0 * tolerance)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _parts_data(self, name, parts: int, role):
        if name is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return "…" if parts < 0 else str(parts)
        if role == SORT_ROLE:
            return parts
        if role == Qt.ItemDataRole.DecorationRole and parts > 1:
            return self._warning_icon
        if role == Qt.ItemDataRole.ToolTipRole:
            if parts < 0:
                return tr("Neighbours are still being read")
            if parts > 1:
                return tr("Not contiguous: {} separate pieces").format(parts)
            return tr("Contiguous")
        return None

    def setData(self, index, value, role=Qt.ItemDataRole.EditRole) -> bool:
        if not index.isValid() or role != Qt.ItemDataRole.CheckStateRole:
            return False
        name = self._rows[index.row()]
        if self._columns[index.column()][0] != "locked" or name is None:
            return False
        try:
            state = Qt.CheckState(value)
        except (TypeError, ValueError):
            state = value
        self._editor.set_locked(name, state == Qt.CheckState.Checked)
        return True


def _format_number(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}".replace(",", "\u2009")
    return f"{value:,.1f}".replace(",", "\u2009")
