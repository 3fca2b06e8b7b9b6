"""The side-by-side table of all scenarios of a plan."""

from __future__ import annotations

import math

from ..i18n import tr
from .table_dialog import TableDialog


class ScenarioDialog(TableDialog):
    """Rows: scenarios (baseline first). Columns: worst deviation per measure, territories out of
    tolerance, territories in pieces, compactness, units and workload changed against the baseline."""

    def __init__(self, rows: list, measures: list[str], baseline: str, tolerance: float, parent=None):
        headers = [tr("Scenario"), tr("Territories")]
        headers += [tr("Worst {} dev. %").format(m) for m in measures]
        headers += [tr("Out of tolerance"), tr("In pieces"), tr("Inertia (km²)"), tr("Units changed")]
        headers += [tr("{} changed %").format(m) for m in measures]
        self.headers = headers
        cells = []
        for row in rows:
            line = [row.name + (" " + tr("(baseline)") if row.name == baseline else ""), str(row.territories)]
            line += [f"{100 * d:.1f}" for d in row.worst_deviation]
            line += [str(row.out_of_tolerance), "–" if row.noncontiguous < 0 else str(row.noncontiguous),
                     "–" if math.isnan(row.inertia_km2) else f"{row.inertia_km2:,.0f}", str(row.changed_units)]
            line += [f"{100 * c:.1f}" for c in row.changed_workload]
            cells.append(line)
        super().__init__("territoryScenarioDialog", tr("Compare scenarios"),
                         tr("Changes are counted against the baseline “{}”; tolerance {:g} %.").format(baseline,
                                                                                                   tolerance),
                         ("territoryScenarioTable", headers, cells, lambda _r, c: c > 0), (760, 300), parent)

    def cells(self) -> dict:
        """{scenario row label: {header: text}} as shown."""
        return {self.table.item(r, 0).text(): {self.headers[c]: self.table.item(r, c).text()
                                               for c in range(1, self.table.columnCount())}
                for r in range(self.table.rowCount())}
