"""The panel's territories as people know them: by code on the units, by name, rep and colour in the
plan's territory table (``layers/territory_table.py``, made by ``layers/plan_table.py`` when the plan
has none), and in their colours on the map.

The table's rows are read with the plan and again after a rename or reps were written to it; when the
units are saved, the table's own edits are saved with them and every territory of the plan gets its
row and colour there. The colours are chosen on the territory adjacency graph, neighbours clearly apart,
keeping the colours the layer's style and the table give.
"""

from __future__ import annotations

from qgis.core import QgsProject, QgsVectorLayer

from ..i18n import tr
from ..layers.plan_table import TABLE_OF, add_missing_rows
from ..layers.style import TerritoryColours
from ..layers.territory_table import adjacency_pairs, code_column, display_name, plan_table_layer, read_plan_table
from .settings import PlanSettings


class TerritoryIdentity:
    """The names, reps and colours of the territories of ``plan`` (units layer bound by the service)."""

    def __init__(self, project: QgsProject, plan: PlanSettings):
        self.project = project
        self.plan = plan
        #: the territory table's rows by code (names, reps, colours, goals, locks), when the plan has one
        self.rows: dict = {}
        self.colours = TerritoryColours()

    def table(self) -> QgsVectorLayer | None:
        """The plan's territory table (a layer of the project), None when it has none."""
        return plan_table_layer(self.project, self.plan.territory_table)

    def display_name(self, code: str | None) -> str | None:
        """What people call territory ``code``: its name in the territory table, else the code."""
        return display_name(self.rows, code)

    def read(self) -> str | None:
        """Read the territory table's rows again; why it could not be read, or None."""
        self.rows, problem = read_plan_table(self.table(), self.plan.territory_field)
        return problem

    def save_with_units(self, units_layer_id: str, names: list[str]) -> str | None:
        """The units were saved: save the territory table's edits (renames, reps) with them, and give
        every territory of ``names`` its row and colour there. Why the table could not be saved, or None."""
        table = self.table()
        if table is None:
            return None
        if table.isEditable() and table.isModified() and not table.commitChanges():
            return tr("The territory table “{}” could not be saved: {}").format(
                table.name(), "; ".join(table.commitErrors()))
        code_index = code_column(table.fields(), self.plan.territory_field)
        if code_index >= 0 and table.customProperty(TABLE_OF, "") == units_layer_id:
            add_missing_rows(table, code_index, list(names), dict(self.colours.by_name))
            self.rows, _problem = read_plan_table(table, self.plan.territory_field)
        return None

    def paint(self, layer: QgsVectorLayer, names: list[str], values: list, labels, adjacency) -> None:
        """Colour ``layer`` by territory (``values[k]``: territory ``names[k]``'s value in the territory
        field; ``labels``: each unit's position in ``names``, −1 unassigned), neighbours clearly apart
        (``adjacency``: the units' neighbours, None while unknown), unassigned units hatched, unless the
        user chose to keep the layer's own style; the legend names the territories."""
        self.colours.paint(layer, self.plan.territory_field, names, values, labels,
                           adjacency_pairs(adjacency) if adjacency is not None else None,
                           {code: row.colour for code, row in self.rows.items() if row.colour},
                           self.plan.keep_style, {code: row.label for code, row in self.rows.items()})
