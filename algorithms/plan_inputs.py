"""What an algorithm reads of a plan, written once: the units layer (INPUT), its territory field and the
balance fields; then, in steps, the units with their accounts, the alignment (each unit's territory),
the territory table, and the units' workloads with the accounts counted for the plan's codes.

:meth:`PlanInputs.read` reads the parameters only, so an algorithm checks its own parameters
against them before anything large is read; every later step keeps to the share of the progress
bar its caller gives it, and raises ``QgsProcessingException`` with the message that says how to fix
the input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qgis.core import QgsProcessingException
from scipy import sparse

from ..core.plan.accounts import AccountBook
from ..layers.alignment import Alignment, read_alignment
from ..layers.territory_table import TerritoryRow, plan_rows
from ..layers.units import ScaledFeedback, Units
from . import parameters as shared
from .account_run import AccountRun
from .territory_layer import measure_columns


@dataclass
class PlanInputs:
    """One run's plan inputs, filled in step by step (``units`` and ``alignment`` once read).

    ``account_run`` sorts the balance fields into the units' and the accounts' (``AccountRun``);
    without an accounts layer every balance field is the units'.
    """

    algorithm: object
    parameters: dict
    context: object
    feedback: object
    source: object
    territory_field: str
    balance_fields: list[str]
    account_run: AccountRun | None = None
    units: Units | None = None
    alignment: Alignment | None = None
    book: AccountBook | None = None
    _table: dict[str, TerritoryRow] | None = field(default=None, repr=False)

    @classmethod
    def read(cls, algorithm, parameters, context, feedback, territory_field: str | None = shared.TERRITORY_FIELD
             ) -> PlanInputs:
        """The units layer (raises when it cannot be read), the territory field (``territory_field``: the
        parameter that names it; None when the algorithm has none) and the balance fields."""
        source = shared.units_source(algorithm, parameters, context)
        name = algorithm.parameterAsString(parameters, territory_field, context) if territory_field else ""
        return cls(algorithm, parameters, context, feedback, source, name,
                   shared.balance_fields(algorithm, parameters, context))

    # -- steps -----------------------------------------------------------------------------------
    def accounts(self) -> AccountRun:
        """The balance fields sorted into the units' and the accounts' (once; raises for a name on both
        layers or on neither)."""
        if self.account_run is None:
            self.account_run = AccountRun.split(self.algorithm, self.parameters, self.context, self.source,
                                                self.balance_fields)
        return self.account_run

    def read_units(self, text: str, until: float, accounts_until: float | None = None, with_adjacency: bool = True,
                   fields: list[str] | None = None) -> Units:
        """The units, saying ``text`` and taking the progress bar from 0 to ``until``; then, with
        ``accounts_until``, the accounts (up to it). Without accounts the units carry every balance
        field (or ``fields``)."""
        if accounts_until is not None:
            fields = self.accounts().unit_fields
        elif fields is None:
            fields = self.balance_fields
        self.feedback.setProgressText(text)
        self.units = self.algorithm.read_units(self.source, fields, self.context,
                                               ScaledFeedback(self.feedback, 0, until), with_adjacency)
        if accounts_until is not None:
            self.account_run.read(self.algorithm, self.parameters, self.context, self.source, self.units,
                                  self.feedback, (until, accounts_until))
        return self.units

    def read_alignment(self, when_empty: str | None = None) -> Alignment:
        """Each unit's territory in the territory field. ``when_empty``: the message (its ``{}`` the
        field) raised when no unit has a territory."""
        self.alignment = read_alignment(self.source, self.territory_field, self.units, self.feedback)
        if when_empty is not None and not self.alignment.names:
            raise QgsProcessingException(when_empty.format(self.territory_field))
        return self.alignment

    @property
    def codes(self) -> list[str]:
        """The plan's territory codes, in the alignment's order."""
        return self.alignment.names

    @property
    def labels(self):
        """Each unit's territory as an index into ``codes`` (-1: none)."""
        return self.alignment.labels

    def territory_table(self) -> dict[str, TerritoryRow]:
        """The TERRITORIES table's rows by code ({} when none is given), read once."""
        if self._table is None:
            self._table = shared.territory_table(self.algorithm, self.parameters, self.context,
                                                 self.territory_field)
        return self._table

    def table_given(self) -> bool:
        """Whether a TERRITORIES table is given (its colours then spare reading the units' neighbours)."""
        return self.algorithm.parameterAsSource(self.parameters, shared.TERRITORIES, self.context) is not None

    def rows(self, codes: list[str] | None = None, labels=None, reps=None) -> list[TerritoryRow]:
        """A territory row per code (the alignment's unless given): the table's names, reps and colours,
        colours chosen on the units' adjacency where the table has none; ``reps`` override the reps."""
        codes = self.codes if codes is None else codes
        labels = self.labels if labels is None else labels
        return plan_rows(codes, labels, self.neighbours(), self.territory_table(), reps)

    def neighbours(self):
        """The units' adjacency; units read without their neighbours count as touching none."""
        if self.units.adjacency is not None:
            return self.units.adjacency
        return sparse.csr_matrix((self.units.count, self.units.count))

    def count_accounts(self, codes: list[str] | None = None) -> Units:
        """The units' workloads with the accounts counted where they are aligned, for a plan of ``codes``
        (the alignment's unless given); ``book`` then holds the accounts (None without). An override
        naming no territory of ``codes`` stops the run here, before anything is written."""
        run = self.accounts()
        self.book = run.book(self.codes if codes is None else codes)
        self.units = run.with_accounts(self.units, self.book)
        return self.units

    def with_index(self, weights, territory_count: int) -> Units:
        """The units with the workload index of ``weights`` as one more measure, scaled for
        ``territory_count`` territories (unchanged when ``weights`` is None)."""
        self.units = self.algorithm.with_index(self.source, self.units, weights, territory_count, self.feedback)
        return self.units

    def fixed_loads(self, territory_count: int):
        """(p, m) the overridden accounts' workload per territory (None when none is overridden)."""
        return self.accounts().fixed_loads(self.book, territory_count, self.units.workloads.shape[1])

    def unit_names(self) -> list[str] | None:
        """Each unit's name from UNIT_NAME_FIELD (engine order); None when no field is given."""
        return shared.unit_names(self.algorithm, self.parameters, self.context, self.source, self.units)

    @property
    def measures(self) -> list[str]:
        """The measures as the figures name them (``units`` without balance fields)."""
        return measure_columns(self.units)
