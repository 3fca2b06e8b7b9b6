"""Turn a QGIS layer (or table) of accounts into arrays beside the units.

An account is a point (a customer, a hospital, a store) or a row of a table without geometry whose
unit field holds the id of its unit (accounts that carry a ZIP code). Its *home unit* is the unit
it stands in: found by location (points in another CRS are transformed to the units'), or by
matching its unit id against the units' id field. Its override, when set, is the code of the
territory it is aligned to on purpose. Everything a user can get wrong (repeated ids, an account
with neither location nor unit id, NULL or negative workloads, multipoints) raises
:class:`AccountDataError` naming the accounts and the fix; nothing is guessed.

This is the one reading path for the accounts of the toolbox and the panel.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from qgis.core import (
    QgsCoordinateTransform,
    QgsCoordinateTransformContext,
    QgsFeature,
    QgsFeatureRequest,
    QgsGeometry,
    QgsWkbTypes,
)

from ..core.plan.accounts import AccountBook
from ..i18n import tr
from .plan_reader import GeoPackageColumns
from .shapes import units_at
from .units import ScaledFeedback, Units
from .values import as_number, text_or_none

#: How many accounts a message names before "and N more".
NAMED_IN_MESSAGES = 10


class AccountDataError(ValueError):
    """The accounts cannot be read as given; the message names the accounts and the fix."""


@dataclass
class Accounts:
    """The accounts of one layer, in the order they were read.

    ``fids`` are feature ids, ``ids`` the values of the account id field (as text), ``names`` what
    messages call each account (the name field, else the id). ``workloads`` has one column per
    entry of ``measure_names``. ``overrides`` holds each account's override code (None: none).
    ``home`` is the engine index of each account's home unit, -1 outside every unit (or when its
    unit id matches no unit: those are also in ``unknown_unit``). ``positions`` are in the units'
    metric CRS (NaN for accounts read by unit id only).
    """

    fids: np.ndarray
    ids: list[str]
    names: list[str]
    workloads: np.ndarray
    measure_names: list[str]
    overrides: list
    home: np.ndarray
    positions: np.ndarray
    override_field: str = ""
    unknown_unit: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    index_of_fid: dict = field(default_factory=dict, repr=False)

    @property
    def count(self) -> int:
        return len(self.ids)

    @property
    def overridden_any(self) -> bool:
        """Some account carries an override."""
        return any(code is not None for code in self.overrides)

    def outside(self) -> np.ndarray:
        """Indices of the accounts in no unit (not an error: they have no territory unless overridden)."""
        return np.flatnonzero(self.home < 0)

    def label(self, i: int) -> str:
        """An account as messages name it: “name (id)”, or the id alone."""
        name, ident = self.names[i], self.ids[i]
        return ident if name == ident else f"{name} ({ident})"

    def listing(self, indices, limit: int = NAMED_IN_MESSAGES) -> str:
        return _listing([self.label(int(i)) for i in indices], limit)

    def unknown_overrides(self, codes: Sequence[str]) -> np.ndarray:
        """Indices of the accounts whose override names none of ``codes``."""
        known = set(codes)
        return np.asarray([i for i, code in enumerate(self.overrides) if code is not None and code not in known],
                          dtype=np.int64)

    def override_indices(self, codes: Sequence[str], strict: bool = True) -> np.ndarray:
        """(a,) each override as an index into ``codes`` (-1: none). ``strict``: an override naming no
        territory of the plan raises :class:`AccountDataError`; otherwise such an override counts as none."""
        if strict:
            self.check_overrides(codes)
        position = {code: k for k, code in enumerate(codes)}
        return np.fromiter((position.get(code, -1) if code is not None else -1 for code in self.overrides),
                           dtype=np.int64, count=self.count)

    def check_overrides(self, codes: Sequence[str]) -> None:
        unknown = self.unknown_overrides(codes)
        if unknown.size:
            values = sorted({self.overrides[i] for i in unknown.tolist()})
            raise AccountDataError(tr(
                "{} accounts have an override that is not a territory of the plan ({}): {}. Put the code of one "
                "of the plan's territories in “{}”, or clear the override.").format(
                unknown.size, _listing([f"“{v}”" for v in values], NAMED_IN_MESSAGES), self.listing(unknown),
                self.override_field))

    def book(self, codes: Sequence[str], strict: bool = True) -> AccountBook:
        """The engine's view of the accounts for a plan whose territories are ``codes``."""
        return AccountBook(home=self.home, override=self.override_indices(codes, strict), workloads=self.workloads)


def read_accounts(source, units: Units, id_field: str, transform_context: QgsCoordinateTransformContext,
                  name_field: str | None = None, override_field: str | None = None,
                  balance_fields: Sequence[str] = (), unit_source=None, unit_id_field: str | None = None,
                  account_unit_field: str | None = None, feedback=None,
                  from_file: GeoPackageColumns | None = None, known_homes=None) -> Accounts | None:
    """Read every account of ``source`` (a feature source or vector layer, points or a table).

    ``units`` are the units the accounts stand in (read with their geometries); ``unit_source`` is
    the layer they were read from, needed with ``unit_id_field``. With ``unit_id_field`` and
    ``account_unit_field`` an account's home unit is the unit whose id it holds (its location
    decides where the unit id is empty); otherwise its location decides. Returns None when
    ``feedback`` is cancelled. ``from_file``: the columns and points prepared by
    :func:`prepare_file_read` (read straight from the GeoPackage; through ``source`` when that fails).
    ``known_homes``: (account feature ids, unit feature ids) found before for the same files
    (:class:`HomeCache`); only the other accounts are located.
    """
    fields = source.fields()
    if bool(unit_id_field) != bool(account_unit_field):
        raise AccountDataError(tr(
            "Give both the units' id field and the accounts' unit field (to find each account's unit by its id), "
            "or neither (to find it by location)."))
    columns = _columns(fields, id_field, name_field, override_field, balance_fields, account_unit_field)
    geometry_type = QgsWkbTypes.geometryType(source.wkbType())
    has_geometry = geometry_type == QgsWkbTypes.GeometryType.PointGeometry
    if geometry_type not in (QgsWkbTypes.GeometryType.PointGeometry, QgsWkbTypes.GeometryType.NullGeometry,
                             QgsWkbTypes.GeometryType.UnknownGeometry):
        raise AccountDataError(tr(
            "Accounts are points, or a table whose unit field holds each account's unit id; this layer has {} "
            "geometries. Use its centroids (Vector ▸ Geometry Tools ▸ Centroids) or a table.").format(
            QgsWkbTypes.geometryDisplayString(geometry_type)))
    if not has_geometry and not account_unit_field:
        raise AccountDataError(tr(
            "The accounts have no geometry, so their units cannot be found by location. Give the units' id field "
            "and the accounts' unit field (e.g. the units' ZIP code and the accounts' ZIP code)."))
    if account_unit_field is None and not units.is_polygon:
        raise AccountDataError(tr(
            "The units are points, so no account stands in one. Give the units' id field and the accounts' unit "
            "field to find each account's unit by its id."))

    read = from_file.read() if from_file is not None and has_geometry else None
    raw = _rows_from_file(columns, *read) if read is not None else _read_rows(source, columns, has_geometry, feedback)
    if raw is None:
        return None
    _check_rows(raw, id_field, account_unit_field)

    count = len(raw.ids)
    workloads = np.frombuffer(raw.workloads, dtype=float).reshape(count, len(balance_fields)).copy()
    positions = _to_units_crs(raw, source.sourceCrs(), units, transform_context)
    home = np.full(count, -1, dtype=np.int64)
    unknown = np.zeros(0, dtype=np.int64)
    by_location = np.isfinite(positions[:, 0])
    if account_unit_field:
        keys = _unit_keys(unit_source, unit_id_field, units)
        found = np.fromiter((keys.get(key, -2) if key is not None else -3 for key in raw.unit_keys),
                            dtype=np.int64, count=count)
        home = np.where(found >= 0, found, -1)
        unknown = np.flatnonzero(found == -2)
        by_location &= found == -3
    fids = np.frombuffer(raw.fids, dtype=np.int64).copy()
    if known_homes is not None and np.any(by_location):
        known = _known_homes(fids, units, *known_homes)
        home = np.where(by_location & (known >= 0), known, home)
        by_location &= known < 0
    if np.any(by_location):
        if not units.is_polygon:
            raise AccountDataError(tr(
                "{} accounts have no unit id and the units are points, so their unit cannot be found: {}. Fill "
                "in their unit id.").format(int(by_location.sum()), _listing(
                    [raw.ids[i] for i in np.flatnonzero(by_location)], NAMED_IN_MESSAGES)))
        located = units_at(units, positions[by_location],
                           ScaledFeedback(feedback, 60.0, 100.0) if feedback is not None else None)
        if located is None:
            return None
        home[by_location] = located
    return Accounts(fids=fids, ids=raw.ids, names=raw.names, workloads=workloads,
                    measure_names=list(balance_fields), overrides=raw.overrides, home=home, positions=positions,
                    override_field=override_field or "", unknown_unit=unknown,
                    index_of_fid={int(fid): i for i, fid in enumerate(fids.tolist())})


def _known_homes(fids: np.ndarray, units: Units, account_fids: np.ndarray, unit_fids: np.ndarray) -> np.ndarray:
    """(a,) the unit index of each account found in the remembered homes (−1: not remembered, or its
    unit is gone), by feature ids."""
    if len(account_fids) == 0 or units.count == 0:
        return np.full(len(fids), -1, dtype=np.int64)
    order = np.argsort(account_fids, kind="stable")
    account_fids, unit_fids = np.asarray(account_fids)[order], np.asarray(unit_fids)[order]
    at = np.clip(np.searchsorted(account_fids, fids), 0, len(account_fids) - 1)
    wanted = unit_fids[at]
    unit_order = np.argsort(units.fids, kind="stable")
    sorted_units = units.fids[unit_order]
    spot = np.clip(np.searchsorted(sorted_units, wanted), 0, len(sorted_units) - 1)
    exists = (account_fids[at] == fids) & (sorted_units[spot] == wanted)
    return np.where(exists, unit_order[spot], -1)


class HomeCache:
    """The accounts' home units remembered between sessions: locating a million accounts takes
    seconds, and the answer only changes when a file of either layer does. One file per pair of
    layers, keyed by their files' paths, sizes and times and the units' filter, in QGIS's settings
    folder. Only whole files are remembered (not layers with unsaved geometry edits)."""

    def __init__(self, path: str | None):
        self.path = path

    @classmethod
    def for_layers(cls, units_layer, accounts_layer, unit_filter: str = "") -> HomeCache:
        """The cache of two layers (a cache that remembers nothing when either is not a plain file or
        has unsaved geometry edits or added or deleted features)."""
        import hashlib
        import os

        from qgis.core import QgsApplication, QgsProviderRegistry

        parts = [unit_filter]
        for layer in (units_layer, accounts_layer):
            buffer = layer.editBuffer() if layer.isEditable() else None
            if buffer is not None and (buffer.changedGeometries() or buffer.addedFeatures()
                                       or buffer.deletedFeatureIds()):
                return cls(None)
            decoded = QgsProviderRegistry.instance().decodeUri(layer.providerType(), layer.source())
            path = decoded.get("path") or ""
            if layer.providerType() != "ogr" or not os.path.isfile(path) or layer.subsetString():
                return cls(None)
            status = os.stat(path)
            parts += [os.path.abspath(path), str(decoded.get("layerName") or ""), str(status.st_size),
                      str(status.st_mtime_ns)]
        key = hashlib.sha1("|".join(parts).encode("utf-8")).hexdigest()
        folder = os.path.join(QgsApplication.qgisSettingsDirPath(), "territory_planner", "account_homes")
        return cls(os.path.join(folder, f"{key}.npz"))

    def load(self):
        """(account feature ids, unit feature ids), or None when nothing is remembered."""
        if self.path is None:
            return None
        try:
            with np.load(self.path) as data:
                return data["accounts"], data["units"]
        except (OSError, KeyError, ValueError):
            return None

    def save(self, accounts: Accounts, units: Units) -> None:
        if self.path is None:
            return
        import os

        located = accounts.home >= 0
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            partial = self.path + ".partial.npz"
            np.savez(partial, accounts=accounts.fids[located], units=units.fids[accounts.home[located]])
            os.replace(partial, self.path)
        except OSError:
            pass  # nothing remembered: the next opening locates the accounts again


# --- reading ----------------------------------------------------------------------------------

@dataclass
class _Columns:
    ident: int
    name: int
    override: int
    unit: int
    balance: list
    balance_names: list


@dataclass
class _Rows:
    fids: array = field(default_factory=lambda: array("q"))
    ids: list = field(default_factory=list)
    names: list = field(default_factory=list)
    overrides: list = field(default_factory=list)
    unit_keys: list = field(default_factory=list)
    workloads: array = field(default_factory=lambda: array("d"))
    xs: array = field(default_factory=lambda: array("d"))
    ys: array = field(default_factory=lambda: array("d"))
    null_ids: list = field(default_factory=list)
    multipoints: list = field(default_factory=list)
    nowhere: list = field(default_factory=list)
    bad_workloads: dict = field(default_factory=dict)  # balance field → accounts with a bad value in it


def _columns(fields, id_field, name_field, override_field, balance_fields, account_unit_field) -> _Columns:
    def index_of(name: str | None, what: str) -> int:
        if not name:
            return -1
        index = fields.lookupField(name)
        if index < 0:
            raise AccountDataError(tr("The {} “{}” is not a field of the accounts. Pick one of their fields.")
                                   .format(what, name))
        return index

    if not id_field:
        raise AccountDataError(tr("Give the accounts' id field: the field that tells accounts apart."))
    balance = []
    for name in balance_fields:
        index = index_of(name, tr("balance field"))
        if not fields.at(index).isNumeric():
            raise AccountDataError(tr(
                "The accounts' balance field “{}” is not numeric ({}). Choose a numeric field, or convert it with the "
                "Field Calculator.").format(name, fields.at(index).typeName()))
        balance.append(index)
    return _Columns(ident=index_of(id_field, tr("account id field")), name=index_of(name_field, tr("name field")),
                    override=index_of(override_field, tr("override field")),
                    unit=index_of(account_unit_field, tr("unit field")), balance=balance,
                    balance_names=list(balance_fields))


def _read_rows(source, columns: _Columns, has_geometry: bool, feedback) -> _Rows | None:
    wanted = sorted({c for c in (columns.ident, columns.name, columns.override, columns.unit) if c >= 0}
                    | set(columns.balance))
    request = QgsFeatureRequest().setSubsetOfAttributes(wanted)
    if not has_geometry:
        request.setFlags(QgsFeatureRequest.Flag.NoGeometry)
    rows = _Rows()
    total = max(source.featureCount(), 1)
    step = max(1, total // 100)
    point_type = QgsWkbTypes.Type.Point
    feature = QgsFeature()
    iterator = source.getFeatures(request)
    count = 0
    # one pass, the least Python per feature (a million accounts)
    while iterator.nextFeature(feature):
        if feedback is not None and count % step == 0:
            if feedback.isCanceled():
                return None
            feedback.setProgress(60.0 * count / total)
        at = count
        count += 1
        rows.fids.append(feature.id())
        ident = text_or_none(feature.attribute(columns.ident))
        if ident is None:
            rows.null_ids.append(feature.id())
            ident = ""
        rows.ids.append(ident)
        name = text_or_none(feature.attribute(columns.name)) if columns.name >= 0 else None
        rows.names.append(name or ident)
        rows.overrides.append(_code(feature.attribute(columns.override)) if columns.override >= 0 else None)
        unit_key = _code(feature.attribute(columns.unit)) if columns.unit >= 0 else None
        rows.unit_keys.append(unit_key)
        for index, balance_name in zip(columns.balance, columns.balance_names):
            value = feature.attribute(index)
            number = as_number(value)
            if number is None or not math.isfinite(number) or number < 0:
                rows.bad_workloads.setdefault(balance_name, []).append(at)
                number = 0.0
            rows.workloads.append(number)
        x = y = math.nan
        if has_geometry:
            geometry = feature.geometry()
            if not geometry.isNull() and not geometry.isEmpty():
                if QgsWkbTypes.flatType(geometry.wkbType()) == point_type:
                    point = geometry.asPoint()
                    x, y = point.x(), point.y()
                else:
                    part = _single_point(geometry)
                    if part is None:
                        rows.multipoints.append(at)
                    else:
                        x, y = part
        rows.xs.append(x)
        rows.ys.append(y)
        if math.isnan(x) and unit_key is None:
            rows.nowhere.append(at)
    return rows


def _wanted(columns: _Columns) -> list[int]:
    return [c for c in (columns.ident, columns.name, columns.override, columns.unit) if c >= 0] + list(columns.balance)


def prepare_file_read(layer, id_field: str, override_field: str | None = None, balance_fields: Sequence[str] = (),
                      name_field: str | None = None) -> GeoPackageColumns | None:
    """The accounts' columns and points read straight from their GeoPackage (a million accounts in a
    second or two, where QGIS takes several), prepared on the main thread for :func:`read_accounts`;
    None when the layer is not a plain GeoPackage point table (it is read through QGIS then)."""
    if QgsWkbTypes.geometryType(layer.wkbType()) != QgsWkbTypes.GeometryType.PointGeometry:
        return None
    try:
        columns = _columns(layer.fields(), id_field, name_field, override_field, balance_fields, None)
    except AccountDataError:
        return None
    return GeoPackageColumns.prepare(layer, _wanted(columns), points=True)


def _rows_from_file(columns: _Columns, fids: list, raw: list, xy: np.ndarray) -> _Rows:
    """:class:`_Rows` from columns read straight from the file (same checks as :func:`_read_rows`)."""
    rows = _Rows()
    values = dict(zip(_wanted(columns), raw))
    count = len(fids)
    rows.fids = np.asarray(fids, dtype=np.int64)
    # text read straight from the file is str, int, float or None: the cheap cases first (a million ids)
    texts = [v.strip() or None if type(v) is str else (str(v) if type(v) is int else text_or_none(v))
             for v in values[columns.ident]]
    rows.null_ids = [fid for fid, text in zip(fids, texts) if text is None]
    rows.ids = [text or "" for text in texts]
    if columns.name >= 0:
        rows.names = [name or ident for name, ident in zip(_distinct_codes(values[columns.name], text_or_none),
                                                           rows.ids)]
    else:
        rows.names = rows.ids
    rows.overrides = _distinct_codes(values[columns.override], _code) if columns.override >= 0 else [None] * count
    rows.unit_keys = _distinct_codes(values[columns.unit], _code) if columns.unit >= 0 else [None] * count
    work = np.zeros((count, len(columns.balance)))
    for a, (index, name) in enumerate(zip(columns.balance, columns.balance_names)):
        column = values[index]
        try:
            numbers = np.asarray(column, dtype=float)
        except (TypeError, ValueError):
            numbers = np.array([as_number(v) if as_number(v) is not None else np.nan for v in column], dtype=float)
        bad = np.flatnonzero(~np.isfinite(numbers) | (numbers < 0))
        if bad.size:
            rows.bad_workloads[name] = bad.tolist()
            numbers[bad] = 0.0
        work[:, a] = numbers
    # numpy arrays serve as the buffers the reader's arrays are (np.frombuffer takes either)
    rows.workloads = np.ascontiguousarray(work.ravel())
    rows.xs, rows.ys = np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1])
    nowhere = np.isnan(xy[:, 0]) & np.array([key is None for key in rows.unit_keys], dtype=bool)
    rows.nowhere = np.flatnonzero(nowhere).tolist()
    return rows


def _distinct_codes(values: list, convert) -> list:
    """``convert`` of every value, computed once per distinct value (a few hundred territory codes
    among a million accounts)."""
    try:
        once = {value: convert(value) for value in set(values)}
    except TypeError:  # an unhashable value: one by one
        return [convert(value) for value in values]
    return list(map(once.__getitem__, values))


def _single_point(geometry: QgsGeometry) -> tuple[float, float] | None:
    """The point of a multipoint with one part; None for several points."""
    collection = geometry.constGet()
    if collection.numGeometries() != 1:
        return None
    point = collection.geometryN(0)
    return point.x(), point.y()


def _code(value) -> str | None:
    """A territory code or unit id as text; a whole number stored as a decimal reads as the integer
    (30301.0 → "30301"), so numeric and text fields of the same ids match."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return text_or_none(value)


def _check_rows(rows: _Rows, id_field: str, account_unit_field: str | None) -> None:
    """Raise for the first kind of bad account found, naming every account of that kind."""
    if rows.null_ids:
        raise AccountDataError(tr(
            "{} accounts have no id in “{}” (feature ids {}). Give every account an id.").format(
            len(rows.null_ids), id_field, _listing([str(f) for f in rows.null_ids], NAMED_IN_MESSAGES)))
    repeated = [] if len(set(rows.ids)) == len(rows.ids) else [
        (ident, times) for ident, times in Counter(rows.ids).items() if times > 1]
    if repeated:
        repeated.sort(key=lambda item: (-item[1], item[0]))
        raise AccountDataError(tr(
            "{} account ids are used more than once in “{}”: {}. Give every account its own id (merge the "
            "duplicates, or use another id field).").format(
            len(repeated), id_field, _listing([tr("“{}” ({} times)").format(i, n) for i, n in repeated],
                                              NAMED_IN_MESSAGES)))

    def label(i: int) -> str:
        name, ident = rows.names[i], rows.ids[i]
        return ident if name == ident else f"{name} ({ident})"

    if rows.multipoints:
        raise AccountDataError(tr(
            "{} accounts are several points each: {}. An account stands in one place: split them (Vector ▸ "
            "Geometry Tools ▸ Multipart to singleparts, then give each part its own id) or keep one point.").format(
            len(rows.multipoints), _listing([label(i) for i in rows.multipoints], NAMED_IN_MESSAGES)))
    if rows.nowhere:
        where = tr("a location or a unit id in “{}”").format(account_unit_field) if account_unit_field else tr(
            "a location")
        raise AccountDataError(tr(
            "{} accounts have neither a location nor a unit id: {}. Give each of them {}, or leave them out."
        ).format(len(rows.nowhere), _listing([label(i) for i in rows.nowhere], NAMED_IN_MESSAGES), where))
    for balance_name, accounts in rows.bad_workloads.items():
        raise AccountDataError(tr(
            "{} accounts have no workload (NULL), a negative or an invalid one in “{}”: {}. Workloads are zero or "
            "more: fill them in (0 when the account has none).").format(
            len(accounts), balance_name, _listing([label(i) for i in accounts], NAMED_IN_MESSAGES)))


def _listing(items: list, limit: int) -> str:
    shown = ", ".join(items[:limit])
    return shown + (tr(" and {} more").format(len(items) - limit) if len(items) > limit else "")


def _to_units_crs(rows: _Rows, crs, units: Units, transform_context) -> np.ndarray:
    """(a, 2) the accounts' points in the units' metric CRS (NaN where an account has none)."""
    count = len(rows.ids)
    xy = np.column_stack([np.frombuffer(rows.xs, dtype=float), np.frombuffer(rows.ys, dtype=float)]).reshape(count, 2)
    located = np.flatnonzero(np.isfinite(xy[:, 0]))
    if located.size and crs.isValid() and crs != units.metric_crs:
        transform = QgsCoordinateTransform(crs, units.metric_crs, transform_context)
        from qgis.core import QgsPointXY

        for i in located.tolist():
            point = transform.transform(QgsPointXY(xy[i, 0], xy[i, 1]))
            xy[i, 0], xy[i, 1] = point.x(), point.y()
    return xy * units.unit_factor


def _unit_keys(unit_source, unit_id_field: str, units: Units) -> dict:
    """unit id (as text) → engine index; raises when the field is missing or an id repeats."""
    if unit_source is None:
        raise AccountDataError(tr("The units' layer is needed to read their ids."))
    index = unit_source.fields().lookupField(unit_id_field)
    if index < 0:
        raise AccountDataError(tr("The unit id field “{}” is not a field of the units. Pick the field that holds "
                                  "each unit's id (e.g. its ZIP code).").format(unit_id_field))
    request = QgsFeatureRequest().setFlags(QgsFeatureRequest.Flag.NoGeometry).setSubsetOfAttributes([index])
    keys: dict = {}
    repeated = []
    for feature in unit_source.getFeatures(request):
        key = _code(feature.attribute(index))
        i = units.index_of_fid.get(feature.id())
        if key is None or i is None:
            continue
        if key in keys:
            repeated.append(key)
        keys[key] = i
    if repeated:
        raise AccountDataError(tr(
            "The unit id “{}” is used by more than one unit in “{}”, so accounts holding it cannot be placed. Give "
            "every unit its own id, or pick another id field.").format(repeated[0], unit_id_field))
    return keys
