"""The saved change log of a plan: filtered by scenario and territory, exported to CSV or XLSX."""

from __future__ import annotations

import datetime as _dt

from qgis.PyQt.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
)

from ..i18n import tr
from ..layers.change_log import COLUMNS, export_rows
from ..layers.values import natural_key
from .table_dialog import fill_read_only_table, fit_to_contents, push_button, read_only_table

#: the filters' first item: every scenario, every territory
EVERY = None


def shown_time(stamp) -> str:
    """A logged time as people read it: local, with its offset from UTC ("2026-12-06 14:03 UTC+01:00")."""
    try:
        moment = _dt.datetime.fromisoformat(str(stamp))
    except ValueError:
        return str(stamp or "")
    if moment.tzinfo is None:  # written without an offset: taken as UTC
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    local = moment.astimezone()
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M} UTC{offset[:3]}:{offset[3:]}"


class ChangeLogDialog(QDialog):
    """Rows of the ``territory_changes`` table, newest first: when (local time), who, scenario, what,
    which unit, from and to (territory names beside their codes), the workload, and a note for rows
    that change scenarios rather than units. ``names`` gives each territory code's name."""

    def __init__(self, rows: list[dict], measures: list[str], territory: str | None, where: str,
                 names: dict | None = None, scenario: str | None = None, parent=None):
        super().__init__(parent)
        self.setObjectName("territoryChangeLogDialog")
        self.setWindowTitle(tr("Change log"))
        self.rows = list(reversed(rows))  # newest first
        self.measures = list(measures)
        self.names = dict(names or {})
        self.where = where
        layout = QVBoxLayout(self)
        filters = QHBoxLayout()
        self.scenario_combo = self._filter(filters, "territoryChangeLogScenario", tr("Scenario"), tr("All scenarios"),
                                           [(s, s) for s in sorted({r.get("scenario") for r in rows} - {None},
                                                                   key=natural_key)], scenario)
        codes = {r.get(key) for r in rows for key in ("from_territory", "to_territory")} - {None}
        if territory is not None:
            codes.add(territory)
        self.territory_combo = self._filter(filters, "territoryChangeLogTerritory", tr("Territory"),
                                            tr("All territories"),
                                            [(self._territory(c), c) for c in sorted(codes, key=natural_key)],
                                            territory)
        filters.addStretch(1)
        self.export_button = push_button(self, tr("Export…"), "territoryChangeLogExport",
                                         tr("Write the rows shown to a CSV or Excel (XLSX) file"))
        filters.addWidget(self.export_button)
        layout.addLayout(filters)
        self.summary = QLabel(self)
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.headers = [tr("When"), tr("Who"), tr("Scenario"), tr("Action"), tr("Unit"), tr("From"), tr("To"),
                        tr("Note")] + self.measures
        self.table = read_only_table(self, "territoryChangeLogTable", self.headers, [])
        layout.addWidget(self.table, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.scenario_combo.currentIndexChanged.connect(lambda _index: self.refresh())
        self.territory_combo.currentIndexChanged.connect(lambda _index: self.refresh())
        self.export_button.clicked.connect(lambda: self.export())
        self.refresh()
        fit_to_contents(self, self.table)

    def _filter(self, row: QHBoxLayout, name: str, label: str, every: str, items: list, chosen) -> QComboBox:
        combo = QComboBox(self)
        combo.setObjectName(name)
        combo.addItem(every, EVERY)
        for text, value in items:
            combo.addItem(text, value)
        index = combo.findData(chosen) if chosen is not None else 0
        combo.setCurrentIndex(max(index, 0))
        row.addWidget(QLabel(label, self))
        row.addWidget(combo)
        return combo

    def _territory(self, code) -> str:
        """A territory as the log shows it: its name beside its code when they differ."""
        if code is None:
            return ""
        name = self.names.get(code, code)
        return str(code) if name == code else f"{name} ({code})"

    def shown_rows(self) -> list[dict]:
        """The rows the filters let through, newest first."""
        scenario, territory = self.scenario_combo.currentData(), self.territory_combo.currentData()
        return [row for row in self.rows
                if (scenario is EVERY or row.get("scenario") == scenario)
                and (territory is EVERY or territory in (row.get("from_territory"), row.get("to_territory")))]

    def refresh(self) -> None:
        shown = self.shown_rows()
        territory = self.territory_combo.currentData()
        if shown:
            text = tr("{} saved change(s){}, stored in {}.").format(
                len(shown), tr(" into or out of {}").format(self._territory(territory)) if territory else "",
                self.where)
        else:
            text = tr("No saved change{} yet. Changes are recorded when the layer's edits are saved{}.").format(
                tr(" of {}").format(self._territory(territory)) if territory else "",
                "" if self.where else tr(" (layers kept only in memory have no change log)"))
        self.summary.setText(text)
        values = []
        for row in shown:
            line = [shown_time(row.get("changed_at"))]
            line += [row.get(key) for key in COLUMNS[1:5]]
            line += [self._territory(row.get("from_territory")), self._territory(row.get("to_territory"))]
            line += [row.get("note")] + [row.get(m) for m in self.measures]
            values.append(line)
        cells = [["" if value is None else (f"{value:,.0f}" if isinstance(value, float) else str(value))
                  for value in line] for line in values]
        fill_read_only_table(self.table, cells, lambda r, c: isinstance(values[r][c], float))
        self.export_button.setEnabled(bool(shown))

    def export(self, path: str | None = None) -> str | None:
        """Write the rows shown to ``path`` (.csv or .xlsx; asks when None); the path written, or None."""
        if path is None:
            path, _kind = QFileDialog.getSaveFileName(self, tr("Export the change log"), "territory_changes.xlsx",
                                                      tr("Excel workbook (*.xlsx);;CSV (*.csv)"))
            if not path:
                return None
        problem = export_rows(list(reversed(self.shown_rows())), self.measures, path)
        if problem is not None:
            self.summary.setText(problem)
            return None
        return path
