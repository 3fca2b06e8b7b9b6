"""The saved change log of a plan, filtered to one territory."""

from __future__ import annotations

from ..i18n import tr
from ..layers.change_log import COLUMNS
from .table_dialog import TableDialog


class ChangeLogDialog(TableDialog):
    """Rows of the ``territory_changes`` table, newest first: when, who, what, which unit, from and to,
    workload."""

    def __init__(self, rows: list[dict], measures: list[str], territory: str | None, where: str, parent=None):
        if rows:
            text = tr("{} saved change(s){}, stored in {}.").format(
                len(rows), tr(" into or out of {}").format(territory) if territory else "", where)
        else:
            text = tr("No saved change{} yet. Changes are recorded when the layer's edits are saved{}.").format(
                tr(" of {}").format(territory) if territory else "",
                "" if where else tr(" (layers kept only in memory have no change log)"))
        headers = [tr("When"), tr("Who"), tr("Scenario"), tr("Action"), tr("Unit"), tr("From"), tr("To"),
                   tr("Note")] + measures
        values = [[row.get(key) for key in list(COLUMNS) + measures] for row in reversed(rows)]
        cells = [["" if value is None else (f"{value:,.0f}" if isinstance(value, float) else str(value))
                  for value in row] for row in values]
        super().__init__("territoryChangeLogDialog", tr("Change log") + (f" — {territory}" if territory else ""), text,
                         ("territoryChangeLogTable", headers, cells, lambda r, c: isinstance(values[r][c], float)),
                         (820, 360), parent)
