"""The one per-territory output layer: its columns, named and typed once, and its writer.

Build, Rebalance, Build hierarchy, Statistics and Assign reps each write one feature per territory.
Their layers share a vocabulary of columns, in groups: the territory table (code, name, rep,
colour, locked), the workloads (unit count; per measure ``m``: ``m`` the sum, ``m_tgt`` the
target, ``m_dev`` the deviation in percent of the target), the pieces (parts, contiguous), the
inertia, the shape (area, perimeter, Polsby–Popper) and the rep's distances. Each algorithm passes
the groups it writes, in its order, plus columns of its own; :func:`write_territory_layer` names
the fields by one rule (unique, cut to 10 characters for a shapefile) and writes the features
with the territories' dissolved shapes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qgis.core import QgsCoordinateReferenceSystem, QgsFeature, QgsFields, QgsWkbTypes

from ..compat import DOUBLE, INT, STRING, make_field
from ..core.metrics import relative_deviation
from ..i18n import tr
from ..layers.shapes import TerritoryShapes
from ..layers.territory_table import TerritoryRow
from ..layers.units import Units
from .engine_run import check_cancelled
from .outputs import add_feature, destination_of, output_field_names

#: text widths of the territory-table columns (code, name, rep, colour) in Build and Rebalance
TABLE_WIDTHS = (80, 120, 120, 7)


@dataclass(frozen=True)
class Column:
    """One field of the territory layer: name, compat type, alias (what it holds) and text width."""

    name: str
    kind: str
    alias: str = ""
    length: int = 0


@dataclass
class ColumnGroup:
    """Columns written together, and ``values(k)``: their values for territory k, in column order."""

    columns: list[Column]
    values: Callable[[int], list]


def measure_columns(units: Units) -> list[str]:
    """Names of the workload measures as the figures see them (the unit count when none)."""
    return list(units.measure_names) if units.measure_names else ["units"]


def deviation_percent(total: float, target: float) -> float:
    """A deviation as the outputs write it: :func:`core.metrics.relative_deviation` in percent of
    the target, 3 decimals."""
    return round(100.0 * float(relative_deviation(total, target)), 3)


def table_columns(code_field: str, rows: Sequence[TerritoryRow], reps: Sequence[str | None] | None = None,
                  widths: tuple[int, int, int, int] = TABLE_WIDTHS) -> ColumnGroup:
    """The territory table's columns: the code (named ``code_field``), name, rep (``reps[k]`` when
    given and not empty, else the table's), colour, locked (1 = yes) and, when any territory has
    one, its goal."""
    code_width, name_width, rep_width, colour_width = widths
    columns = [Column(code_field, STRING, tr("Territory code"), code_width),
               Column("name", STRING, tr("Name"), name_width),
               Column("rep", STRING, tr("Rep"), rep_width),
               Column("colour", STRING, tr("Colour"), colour_width),
               Column("locked", INT, tr("Locked (1 = yes)"))]

    # goals travel with the codes (Set territory goals); a table without any keeps its columns
    with_goals = any(row.goal is not None for row in rows)
    if with_goals:
        columns.append(Column("goal", DOUBLE, tr("Goal")))

    def values(k: int) -> list:
        row = rows[k]
        rep = reps[k] if reps is not None and reps[k] else row.rep
        out = [row.code, row.name, rep, row.colour, 1 if row.locked else 0]
        return out + [row.goal] if with_goals else out

    return ColumnGroup(columns, values)


def workload_columns(measures: Sequence[str], unit_count, sums, targets=None) -> ColumnGroup:
    """``units`` (the unit count), then per measure its sum (not for the unit count itself) and,
    with ``targets``, ``_tgt`` and ``_dev`` (percent of the target)."""
    columns = [Column("units", INT, tr("Units"))]
    for measure in measures:
        if measure != "units":
            columns.append(Column(measure, DOUBLE, tr("{} (sum)").format(measure)))
        if targets is not None:
            columns.append(Column(f"{measure}_tgt", DOUBLE, tr("{} target").format(measure)))
            columns.append(Column(f"{measure}_dev", DOUBLE, tr("{} deviation (%)").format(measure)))

    def values(k: int) -> list:
        out: list = [int(unit_count[k])]
        for a, measure in enumerate(measures):
            if measure != "units":
                out.append(float(sums[k][a]))
            if targets is not None:
                out.append(float(targets[k][a]))
                out.append(deviation_percent(sums[k][a], targets[k][a]))
        return out

    return ColumnGroup(columns, values)


def piece_columns(parts, contiguous) -> ColumnGroup:
    """``parts`` (pieces that do not touch) and ``contiguous`` (1 = one piece)."""
    return ColumnGroup([Column("parts", INT, tr("Parts")), Column("contiguous", INT, tr("Contiguous (1 = yes)"))],
                       lambda k: [int(parts[k]), 1 if bool(contiguous[k]) else 0])


def inertia_columns(inertia) -> ColumnGroup:
    """``inertia_km2``: the workload-weighted moment of inertia around the territory's centre."""
    return ColumnGroup([Column("inertia_km2", DOUBLE, tr("Moment of inertia (km²)"))],
                       lambda k: [float(inertia[k]) / 1e6])


def shape_columns(shapes: TerritoryShapes, perimeter: bool = False) -> ColumnGroup:
    """``area_km2``, with ``perimeter`` also ``perim_km``, and ``polsby`` (Polsby–Popper)."""
    columns = [Column("area_km2", DOUBLE, tr("Area (km²)"))]
    if perimeter:
        columns.append(Column("perim_km", DOUBLE, tr("Perimeter (km)")))
    columns.append(Column("polsby", DOUBLE, tr("Polsby-Popper compactness")))

    def values(k: int) -> list:
        out = [shapes.area_km2[k]]
        if perimeter:
            out.append(shapes.perimeter_km[k])
        return out + [shapes.polsby_popper[k]]

    return ColumnGroup(columns, values)


def rep_distance_columns(mean_km, longest_km) -> ColumnGroup:
    """``rep_avg_km`` and ``rep_max_km``: distances from the rep's home (None without a rep)."""
    return figure_columns((Column("rep_avg_km", DOUBLE, tr("Rep mean distance (km)")), mean_km),
                          (Column("rep_max_km", DOUBLE, tr("Rep max distance (km)")), longest_km))


def account_columns(book, labels, count: int) -> ColumnGroup:
    """``accounts`` aligned to the territory, ``overrides_in`` (accounts outside its units it keeps)
    and ``overrides_out`` (accounts in its units another territory serves), from ``book`` (a
    ``core.plan.accounts.AccountBook``) and the units' ``labels``."""
    accounts = book.account_counts(labels, count)
    kept, served = book.overrides_in(labels, count), book.overrides_out(labels, count)
    return ColumnGroup([Column("accounts", INT, tr("Accounts")),
                        Column("overrides_in", INT, tr("Accounts from outside kept (overrides in)")),
                        Column("overrides_out", INT, tr("Accounts inside served by others (overrides out)"))],
                       lambda k: [int(accounts[k]), int(kept[k]), int(served[k])])


def figure_columns(*pairs: tuple[Column, Sequence]) -> ColumnGroup:
    """Columns of an algorithm's own, each with its value per territory."""
    return ColumnGroup([column for column, _ in pairs], lambda k: [values[k] for _, values in pairs])


def territory_fields(groups: Sequence[ColumnGroup], destination: str = "", aliases: bool = False) -> QgsFields:
    """The layer's fields: the groups' columns in order, named by :func:`outputs.output_field_names`
    (so a shapefile gets names of at most 10 characters), with aliases when ``aliases``."""
    columns = [column for group in groups for column in group.columns]
    fields = QgsFields()
    for name, column in zip(output_field_names([c.name for c in columns], destination), columns):
        field = make_field(name, column.kind, column.length)
        if aliases:
            field.setAlias(column.alias)
        fields.append(field)
    return fields


def write_territory_layer(algorithm, parameters, key: str, context, feedback, groups: Sequence[ColumnGroup],
                          shapes: TerritoryShapes | None, crs, is_polygon: bool, aliases: bool = False,
                          territory_count: int = 0):
    """Write one feature per territory (its dissolved shape and the groups' values) to the sink
    ``key``; without ``shapes``, a table of ``territory_count`` rows. Returns (sink id, fields); the
    id is None when the output is not wanted."""
    fields = territory_fields(groups, destination_of(parameters, key), aliases)
    if shapes is None:
        wkb = QgsWkbTypes.Type.NoGeometry
    else:
        wkb = QgsWkbTypes.Type.MultiPolygon if is_polygon else QgsWkbTypes.Type.MultiPoint
    sink, dest_id = algorithm.parameterAsSink(parameters, key, context, fields, wkb,
                                              crs if crs is not None else QgsCoordinateReferenceSystem())
    if sink is None:
        return None, fields
    geometries = shapes.geometry if shapes is not None else [None] * territory_count
    for k, geometry in enumerate(geometries):
        check_cancelled(feedback)
        feature = QgsFeature(fields)
        if geometry is not None:
            feature.setGeometry(geometry)
        feature.setAttributes([value for group in groups for value in group.values(k)])
        add_feature(sink, feature)
    return dest_id, fields


def plan_columns(code_field: str, rows: Sequence[TerritoryRow], units: Units, figures,
                 shapes: TerritoryShapes) -> list[ColumnGroup]:
    """The columns of a plan's territory layer (Build, Rebalance, Build hierarchy): the territory
    table, the workloads against their targets, the pieces, the inertia and, for polygon units,
    area and Polsby–Popper."""
    groups = [table_columns(code_field, rows),
              workload_columns(measure_columns(units), figures.unit_count, figures.sums, figures.targets),
              piece_columns(figures.parts, figures.contiguous),
              inertia_columns(figures.inertia)]
    if units.is_polygon:
        groups.append(shape_columns(shapes))
    return groups
