"""The territory table: one row per territory code with its name, rep, colour, lock and goal.

A unit's territory field holds the code, which never changes; everything people see (name, rep,
colour) lives in the table, so a rename touches no unit. Build and Rebalance write the table as
their ``OUTPUT_TERRITORIES`` layer (code column named like the units' territory field, then
``name``, ``rep``, ``colour``, ``locked``, ``goal`` and the figures); Set territory goals writes it
with goals; every algorithm that takes a plan reads it back through its optional ``TERRITORIES`` input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from qgis.core import QgsFeature, QgsFeatureRequest, QgsProcessingException, QgsVectorLayer

from ..core.plan.colouring import assign_colours, is_colour, territory_neighbours
from ..i18n import tr
from .values import lock_value, text_or_none

TABLE_COLUMNS = ("name", "rep", "colour", "locked", "goal")


@dataclass
class TerritoryRow:
    code: str
    name: str
    rep: str | None = None
    colour: str | None = None
    locked: bool = False
    goal: float | None = None

    @property
    def label(self) -> str:
        """What people call the territory: its name, its code when unnamed."""
        return self.name or self.code


def code_column(fields, territory_field: str | Sequence[str] | None) -> int:
    """Index of the code column: named like the territory field (or one of several), else
    ``code`` or ``territory``, else −1."""
    wanted = [territory_field] if isinstance(territory_field, str) or territory_field is None else list(territory_field)
    for name in [*wanted, "code", "territory"]:
        if name and fields.lookupField(name) >= 0:
            return fields.lookupField(name)
    return -1


def read_territory_table(source, territory_field: str | Sequence[str] | None = None) -> dict[str, TerritoryRow]:
    """The table's rows by code. Raises ``QgsProcessingException`` when no code column is found or
    a code repeats."""
    if source is None:
        return {}
    fields = source.fields()
    code_index = code_column(fields, territory_field)
    if code_index < 0:
        raise QgsProcessingException(tr(
            "The territory table has no code column (looked for “{}” and “code”). Give the table written by "
            "Build territories or Rebalance territories, or add a column with the territory codes."
        ).format(territory_field if isinstance(territory_field, str) else ", ".join(territory_field or ["code"])))
    index = {name: fields.lookupField(name) for name in TABLE_COLUMNS}
    rows: dict[str, TerritoryRow] = {}
    request = QgsFeatureRequest().setFlags(QgsFeatureRequest.Flag.NoGeometry)
    for feature in source.getFeatures(request):
        code = text_or_none(feature.attribute(code_index))
        if code is None:
            continue
        if code in rows:
            raise QgsProcessingException(tr(
                "The territory table lists the code “{}” twice. Keep one row per territory code.").format(code))

        def value(column, feature=feature):
            return feature.attribute(index[column]) if index[column] >= 0 else None

        colour = text_or_none(value("colour"))
        rows[code] = TerritoryRow(code=code, name=text_or_none(value("name")) or code, rep=text_or_none(value("rep")),
                                  colour=colour.lower() if colour and is_colour(colour) else None,
                                  locked=lock_value(value("locked"))[0], goal=_goal(value("goal"), code))
    return rows


def _goal(value, code: str) -> float | None:
    """A goal cell as a number; None when empty. Text that is no number is an error naming the code."""
    text = text_or_none(value)
    if text is None:
        return None
    try:
        goal = float(text) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        goal = float("nan")
    if not math.isfinite(goal) or goal < 0:
        raise QgsProcessingException(tr(
            "The territory table's goal for “{}” is “{}”, which is not a goal. Give a number of zero or more, or "
            "leave it empty.").format(code, text))
    return goal


def adjacency_pairs(adjacency) -> np.ndarray:
    """The (i, j) unit pairs of a sparse adjacency matrix, i < j."""
    coo = adjacency.tocoo()
    keep = coo.row < coo.col
    return np.column_stack([coo.row[keep], coo.col[keep]])


def plan_rows(codes: Sequence[str], labels: np.ndarray, adjacency, known: dict[str, TerritoryRow] | None = None,
              reps: Sequence[str | None] | None = None) -> list[TerritoryRow]:
    """A row per code (in ``codes`` order): name, rep, lock and goal from ``known`` (the table given),
    colours kept from it where neighbours stay distinct and chosen on the territory adjacency
    graph for the rest. ``reps[k]``, when given, overrides the rep of territory k."""
    known = known or {}
    neighbours = territory_neighbours(labels, adjacency_pairs(adjacency), len(codes))
    keep = {k: known[c].colour for k, c in enumerate(codes) if c in known and known[c].colour}
    colours = assign_colours(neighbours, keep)
    rows = []
    for k, code in enumerate(codes):
        old = known.get(code)
        rep = old.rep if old else None
        if reps is not None and reps[k]:
            rep = reps[k]
        rows.append(TerritoryRow(code=code, name=old.name if old else code, rep=rep, colour=colours[k],
                                 locked=old.locked if old else False, goal=old.goal if old else None))
    return rows


def colours_by_code(rows: Sequence[TerritoryRow]) -> dict[str, str]:
    return {row.code: row.colour for row in rows if row.colour}


def names_by_code(rows: Sequence[TerritoryRow]) -> dict[str, str]:
    return {row.code: row.label for row in rows}


def plan_table_layer(project, layer_id: str) -> QgsVectorLayer | None:
    """The territory table ``layer_id`` of the panel's plan, when it is a valid layer of ``project``."""
    layer = project.mapLayer(layer_id) if layer_id else None
    return layer if isinstance(layer, QgsVectorLayer) and layer.isValid() else None


def read_plan_table(layer: QgsVectorLayer | None, territory_field: str) -> tuple[dict[str, TerritoryRow], str | None]:
    """The rows of the panel's territory table by code, and why it could not be read (None when it
    could); no rows without a table."""
    if layer is None:
        return {}, None
    try:
        return read_territory_table(layer, territory_field), None
    except QgsProcessingException as error:
        return {}, str(error)


def display_name(rows: dict[str, TerritoryRow], code: str | None) -> str | None:
    """What people call territory ``code``: its name in the territory table, else the code."""
    row = rows.get(code) if code is not None else None
    return row.label if row is not None else code


def rename_in_table(layer, territory_field: str, code: str, new: str) -> str | None:
    """Give territory ``code`` the name ``new`` in the territory table ``layer``, through the table's
    edit buffer (one undoable edit; the code, and so every unit, stays). None when done, else why not."""
    index = code_column(layer.fields(), territory_field)
    name_index = layer.fields().lookupField("name")
    if index < 0 or name_index < 0:
        return tr("The territory table “{}” has no name column to hold the new name.").format(layer.name())
    if not layer.isEditable() and not layer.startEditing():
        return tr("QGIS could not start editing the territory table “{}”.").format(layer.name())
    fids = [f.id() for f in layer.getFeatures() if text_or_none(f.attribute(index)) == code]
    layer.beginEditCommand(tr("Rename territory {} to {}").format(code, new))
    for fid in fids:
        layer.changeAttributeValue(fid, name_index, new)
    if not fids:  # a code the table does not list yet (a territory built since the last save)
        feature = QgsFeature(layer.fields())
        feature.setAttribute(index, code)
        feature.setAttribute(name_index, new)
        layer.addFeature(feature)
    layer.endEditCommand()
    return None


def set_in_table(layer, territory_field: str, values: dict[str, dict[str, object]], text: str) -> str | None:
    """Set columns of territory rows in the territory table ``layer`` through its edit buffer, as one
    edit command: ``values`` {code: {column: value}} (rows missing for a code are added). None when
    done, else why not."""
    index = code_column(layer.fields(), territory_field)
    if index < 0:
        return tr("The territory table “{}” has no code column.").format(layer.name())
    if not layer.isEditable() and not layer.startEditing():
        return tr("QGIS could not start editing the territory table “{}”.").format(layer.name())
    fids: dict[str, list[int]] = {}
    for feature in layer.getFeatures(QgsFeatureRequest().setFlags(QgsFeatureRequest.Flag.NoGeometry)):
        fids.setdefault(text_or_none(feature.attribute(index)), []).append(feature.id())
    layer.beginEditCommand(text)
    for code, columns in values.items():
        indexes = {layer.fields().lookupField(column): value for column, value in columns.items()}
        indexes.pop(-1, None)
        for fid in fids.get(code, []):
            for column, value in indexes.items():
                layer.changeAttributeValue(fid, column, value)
        if code not in fids:
            feature = QgsFeature(layer.fields())
            feature.setAttribute(index, code)
            for column, value in indexes.items():
                feature.setAttribute(column, value)
            layer.addFeature(feature)
    layer.endEditCommand()
    return None
