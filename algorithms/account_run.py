"""The accounts side of one run: reading the accounts the parameters name (``layers.accounts`` does
the reading; this turns its errors into messages for the toolbox and names in the log the accounts
that stand in no unit), and the engine's arrays with accounts (:class:`AccountRun`). The
parameters themselves are a block of ``parameters``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from qgis.core import QgsProcessingException

from ..core.plan.accounts import AccountBook
from ..i18n import tr
from ..layers.accounts import AccountDataError, Accounts, prepare_file_read, read_accounts
from ..layers.units import ScaledFeedback, Units
from .parameters import (
    ACCOUNT_ID_FIELD,
    ACCOUNT_NAME_FIELD,
    ACCOUNT_UNIT_FIELD,
    ACCOUNTS,
    OVERRIDE_FIELD,
    UNIT_ID_FIELD,
)


def read_account_parameters(algorithm, parameters, context, unit_source, units: Units, balance_fields: list[str],
                            feedback, progress: tuple[float, float] = (20.0, 60.0)) -> Accounts | None:
    """The accounts the parameters name (None when no accounts layer is given). Raises a
    QgsProcessingException naming the accounts and the fix for every bad input."""
    source = algorithm.parameterAsSource(parameters, ACCOUNTS, context)
    if source is None:
        if parameters.get(ACCOUNTS):
            raise QgsProcessingException(algorithm.invalidSourceError(parameters, ACCOUNTS))
        return None

    def field(name: str) -> str | None:
        return algorithm.parameterAsString(parameters, name, context).strip() or None

    id_field = field(ACCOUNT_ID_FIELD)
    if not id_field:
        raise QgsProcessingException(tr(
            "Give the account id field (ACCOUNT_ID_FIELD): the field that tells accounts apart."))
    feedback.setProgressText(tr("Reading accounts and finding their units…"))
    if field(ACCOUNT_UNIT_FIELD) and not field(UNIT_ID_FIELD):
        raise QgsProcessingException(tr(
            "The accounts' unit field is given without the units' id field (UNIT_ID_FIELD): give both to find "
            "each account's unit by its id, or neither to find it by location."))
    name_field = field(ACCOUNT_NAME_FIELD) if ACCOUNT_NAME_FIELD in parameters else None
    try:
        accounts = read_accounts(
            source, units, id_field, context.transformContext(),
            from_file=_file_read(algorithm, parameters, context, id_field, field(OVERRIDE_FIELD), balance_fields,
                                 name_field),
            name_field=name_field,
            override_field=field(OVERRIDE_FIELD), balance_fields=balance_fields, unit_source=unit_source,
            # UNIT_ID_FIELD counts only with ACCOUNT_UNIT_FIELD (Compare's names the units on its own)
            unit_id_field=field(UNIT_ID_FIELD) if field(ACCOUNT_UNIT_FIELD) else None,
            account_unit_field=field(ACCOUNT_UNIT_FIELD),
            feedback=ScaledFeedback(feedback, *progress))
    except AccountDataError as error:
        raise QgsProcessingException(str(error)) from error
    if accounts is None:
        raise QgsProcessingException(tr("Cancelled."))
    report_accounts_outside(accounts, feedback)
    return accounts


def _file_read(algorithm, parameters, context, id_field, override_field, balance_fields, name_field):
    """The accounts read straight from their GeoPackage when the parameter is a whole layer (not only
    its selected features, a limit or a filter of Processing's source options)."""
    from qgis.core import QgsProcessingFeatureSourceDefinition

    value = parameters.get(ACCOUNTS)
    if isinstance(value, QgsProcessingFeatureSourceDefinition) and (
            value.selectedFeaturesOnly or value.featureLimit >= 0 or getattr(value, "filterExpression", "")):
        return None
    layer = algorithm.parameterAsVectorLayer(parameters, ACCOUNTS, context)
    return prepare_file_read(layer, id_field, override_field, balance_fields, name_field) if layer is not None \
        else None


def report_accounts_outside(accounts: Accounts, feedback) -> None:
    """Name in the log the accounts that stand in no unit, and those whose unit id matches none."""
    unknown = set(accounts.unknown_unit.tolist())
    outside = [i for i in accounts.outside().tolist() if i not in unknown]
    if outside:
        feedback.pushWarning(tr(
            "{} accounts stand in no unit (they have no territory unless overridden): {}.").format(
            len(outside), accounts.listing(outside)))
    if unknown:
        feedback.pushWarning(tr(
            "{} accounts hold a unit id that no unit has (they have no territory unless overridden): {}.").format(
            len(unknown), accounts.listing(sorted(unknown))))


class AccountRun:
    """The accounts side of one run of an algorithm that balances or reports a plan.

    ``BALANCE_FIELDS`` may name fields of the units, of the accounts (summed per unit), or both; a
    name on both layers is an error. ``split`` sorts them before the units are read (the units'
    reader reads only the units' own fields); ``read`` reads the accounts; ``workloads`` and
    ``fixed_loads`` give the engine its arrays in the user's order of measures: the units' own
    workloads and the accounts aligned by geography summed per unit, and the overridden accounts as
    fixed loads of their territories (zero on the units' own measures).
    """

    def __init__(self, balance_fields: list[str], unit_fields: list[str], account_fields: list[str]):
        self.balance_fields, self.unit_fields, self.account_fields = balance_fields, unit_fields, account_fields
        self.accounts: Accounts | None = None

    @classmethod
    def split(cls, algorithm, parameters, context, unit_source, balance_fields: list[str]) -> AccountRun:
        accounts = algorithm.parameterAsSource(parameters, ACCOUNTS, context)
        if accounts is None:
            return cls(list(balance_fields), list(balance_fields), [])
        unit_names = set(unit_source.fields().names())
        account_names = set(accounts.fields().names())
        both = [name for name in balance_fields if name in unit_names and name in account_names]
        if both:
            raise QgsProcessingException(tr(
                "The balance field “{}” is a field of both the units and the accounts, so it is not clear which to "
                "balance. Rename it on one of the layers (e.g. with the Field Calculator) and name that one.").format(
                both[0]))
        neither = [name for name in balance_fields if name not in unit_names and name not in account_names]
        if neither:
            raise QgsProcessingException(tr(
                "The balance field “{}” is neither a field of the units nor of the accounts. Pick fields of either "
                "layer.").format(neither[0]))
        return cls(list(balance_fields), [n for n in balance_fields if n in unit_names],
                   [n for n in balance_fields if n in account_names])

    @property
    def given(self) -> bool:
        return self.accounts is not None

    def read(self, algorithm, parameters, context, unit_source, units: Units, feedback,
             progress: tuple[float, float] = (20.0, 30.0)) -> Accounts | None:
        self.accounts = read_account_parameters(algorithm, parameters, context, unit_source, units,
                                                self.account_fields, feedback, progress)
        if self.accounts is not None:
            for a, name in enumerate(self.account_fields):
                if self.accounts.count and not (self.accounts.workloads[:, a] > 0).any():
                    feedback.pushWarning(tr(
                        "The accounts' balance field “{}” is 0 for every account, so there is nothing to balance "
                        "on it. Check that it holds the workload, or leave it out.").format(name))
        return self.accounts

    def book(self, codes, strict: bool = True) -> AccountBook | None:
        """The accounts for a plan whose territories are ``codes`` (None without accounts). ``strict``:
        an override naming none of them is an error (nothing is written); else it counts as none."""
        if self.accounts is None:
            return None
        try:
            return self.accounts.book(list(codes), strict)
        except AccountDataError as error:
            raise QgsProcessingException(str(error)) from error

    def at_home(self) -> AccountBook | None:
        """Every account at its home unit, overrides left aside (a plan not built yet has no codes)."""
        if self.accounts is None:
            return None
        return AccountBook(home=self.accounts.home, override=np.full(self.accounts.count, -1, dtype=np.int64),
                           workloads=self.accounts.workloads)

    def report_vanished(self, codes, feedback) -> None:
        """Name in the log the overrides whose territory is not among ``codes`` (a new plan dropped it);
        they count at their unit."""
        if self.accounts is None:
            return
        gone = self.accounts.unknown_overrides(list(codes))
        if gone.size:
            values = sorted({self.accounts.overrides[i] for i in gone.tolist()})
            feedback.pushWarning(tr(
                "{} accounts are overridden to territories that no longer exist ({}); they count with the territory "
                "of their unit: {}. Give them a territory of the new plan, or clear their override.").format(
                gone.size, ", ".join(values[:10]), self.accounts.listing(gone)))

    def workloads(self, own: np.ndarray, book: AccountBook | None) -> np.ndarray:
        """(n, m) per unit: its own workloads and the accounts aligned to it by geography, in the order
        of the balance fields; measures the units carry after their balance fields (the workload
        index) follow unchanged."""
        own = np.asarray(own, dtype=float).reshape(own.shape[0], -1)
        if book is None:
            return own
        from_accounts = book.unit_workloads(own.shape[0])
        kept = len(self.unit_fields)
        columns = [own[:, self.unit_fields.index(name)] if name in self.unit_fields
                   else from_accounts[:, self.account_fields.index(name)] for name in self.balance_fields]
        return np.column_stack(columns + [own[:, kept:]]) if columns else own

    def fixed_loads(self, book: AccountBook | None, territory_count: int, measure_count: int | None = None):
        """(p, m) the overridden accounts' workload per territory, in the order of the balance fields and
        padded with zeros to ``measure_count`` measures (the workload index has none of its own); None
        when no account is overridden."""
        if book is None or not book.overridden.any() or not self.account_fields:
            return None
        fixed = book.fixed_loads(territory_count)
        out = np.zeros((territory_count, max(len(self.balance_fields), measure_count or 0)))
        for j, name in enumerate(self.balance_fields):
            if name in self.account_fields:
                out[:, j] = fixed[:, self.account_fields.index(name)]
        return out

    def with_accounts(self, units: Units, book: AccountBook | None) -> Units:
        """``units`` whose workloads are :meth:`workloads` (measure names in the user's order)."""
        if book is None:
            return units
        trailing = list(units.measure_names)[len(self.unit_fields):]
        return replace(units, workloads=self.workloads(units.workloads, book),
                       measure_names=list(self.balance_fields) + trailing)

    def problem_with(self, problem, own_workloads: np.ndarray, book: AccountBook | None):
        """``problem`` counting the accounts as ``book`` aligns them (units' workloads, fixed loads)."""
        if book is None:
            return problem
        workloads = self.workloads(own_workloads, book)
        return replace(problem, workloads=workloads,
                       fixed_loads=self.fixed_loads(book, int(problem.territory_count), workloads.shape[1]))

    def move_accounts(self, problem, labels: np.ndarray, book: AccountBook, feedback) -> AccountBook:
        """The alignment scope "accounts": new overrides, each to a territory bordering its unit's, as
        little workload moved as possible (``core.solve.account_moves``); ``problem`` counts ``book``."""
        from ..core.solve.account_moves import move_accounts_in_plan

        if not self.account_fields:
            raise QgsProcessingException(tr(
                "Moving accounts needs a balance field of the accounts (their workload): name one in the balance "
                "fields, or choose the scope “units”."))
        feedback.setProgressText(tr("Moving accounts to bordering territories…"))
        columns = [self.balance_fields.index(name) for name in self.account_fields]
        moves, moved = move_accounts_in_plan(problem, labels, book, columns)
        workload = ", ".join(f"{name} {moves.moved_workload[self.balance_fields.index(name)]:g}"
                             for name in self.account_fields)
        feedback.pushInfo(tr("{} accounts get a new override to a bordering territory (workload moved: {}).").format(
            moves.moved.size, workload))
        return moved

    def write_overrides(self, algorithm, parameters, context, feedback, book: AccountBook, alignment,
                        key: str) -> str:
        """The accounts with their override field set from ``book`` (in the territory field's type),
        written to the sink ``key`` (a temporary layer when none is named). Returns its id."""
        from qgis.core import QgsField, QgsProcessing

        from .outputs import write_units

        source = algorithm.parameterAsSource(parameters, ACCOUNTS, context)
        name = algorithm.parameterAsString(parameters, OVERRIDE_FIELD, context).strip() or "override"
        field = QgsField(alignment.field)
        field.setName(name)
        values = alignment.values
        overrides = book.override.tolist()
        if not parameters.get(key):
            parameters = {**parameters, key: QgsProcessing.TEMPORARY_OUTPUT}
        out_id, _ = write_units(algorithm, parameters, key, context, feedback, source, self.accounts, [field],
                                lambda i: [values[overrides[i]] if overrides[i] >= 0 else None],
                                progress=(96.0, 100.0), keep_geometries=False)
        return out_id
