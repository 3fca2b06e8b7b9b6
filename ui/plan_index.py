"""The workload index of the plan in the panel: the fields it is made of and the one column it adds
to the plan's workloads, scaled so the average of the plan's territories scores 1,000.

Its values depend on every unit (each field counts as a share of its total), so an edit of one of
its fields has the plan read again rather than one unit's figure changed; and when the number of
territories changes, the column is rescaled (:meth:`PlanIndex.rescale`).
"""

from __future__ import annotations

import numpy as np

from ..core.plan.index import INDEX_NAME, IndexWeightsError, parse_index_weights, unit_index
from ..i18n import tr
from ..layers.unit_values import check_index_weights


class PlanIndex:
    """The index of ``text`` (``field:weight,…``) on ``layer``; :attr:`weights` is None when the
    plan has none, or when it cannot be made (:attr:`problem` then says why and how to fix it)."""

    def __init__(self, text: str, layer) -> None:
        self.weights = None
        self.problem: str | None = None
        #: the number of territories the column is scaled for
        self.count = 0
        try:
            weights = parse_index_weights(text)
            if weights is not None:
                check_index_weights(layer, weights)
        except IndexWeightsError as error:
            self.problem = tr("The index was left out: {}").format(error)
            return
        self.weights = weights

    @property
    def fields(self) -> list[str]:
        """The fields the index is made of (none without an index)."""
        return list(self.weights.fields) if self.weights is not None else []

    def measures(self, balance_fields: list[str]) -> list[str]:
        """The plan's balanced measures: the balance fields, then the index."""
        return [*balance_fields, INDEX_NAME] if self.weights is not None else list(balance_fields)

    def workloads(self, read: np.ndarray, balance_count: int, count: int) -> np.ndarray:
        """The plan's workloads from the columns read (the balance fields, then the index's fields):
        the balance fields and the index column for ``count`` territories. The index is left out
        (:attr:`problem` says why) when one of its fields is 0 everywhere."""
        if self.weights is None:
            return read
        self.count = max(int(count), 1)
        try:
            index = unit_index(read[:, balance_count:], self.weights, self.count)
        except IndexWeightsError as error:  # a field 0 everywhere: the plan goes on without the index
            self.problem = tr("The index was left out: {}").format(error)
            self.weights = None
            return read[:, :balance_count] if balance_count else np.ones((read.shape[0], 1))
        return np.column_stack([read[:, :balance_count], index])

    def rescale(self, ledger, count: int) -> bool:
        """Keep the average territory at 1,000 now that the plan has ``count`` territories."""
        count = max(int(count), 1)
        if self.weights is None or count == self.count or not self.count:
            return False
        ledger.rescale(ledger.workloads.shape[1] - 1, count / self.count)
        self.count = count
        return True
