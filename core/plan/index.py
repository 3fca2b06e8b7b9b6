"""The workload index: a weighted mix of measures, scaled so the average territory scores 1,000.

A sales manager balances one figure instead of three: e.g. ``accounts:0.6,sales:0.1,potential:0.3``
takes each field as a share of its layer total, weights those shares and scales the sum so that
every unit's index adds up to 1,000 per territory on average. The index is a derived measure: the
engine balances it like any workload column, with its own target (1,000 for an equal share) and
tolerance.

Pure numpy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..problem import ProblemError

#: the name of the index wherever it appears as a measure (outputs ``index``, ``index_dev``)
INDEX_NAME = "index"
#: what the average territory scores on the index
INDEX_AVERAGE = 1000.0

_EXAMPLE = "accounts:0.6,sales:0.1,potential:0.3"


class IndexWeightsError(ProblemError):
    """The index weights cannot be used as given; the message names the field and the fix."""


@dataclass(frozen=True)
class IndexWeights:
    """The index's recipe: a field name and a weight per ingredient, in the order given."""

    fields: tuple[str, ...]
    weights: tuple[float, ...]

    @property
    def shares(self) -> np.ndarray:
        """The weights normalised to add up to 1 (0.6/0.1/0.3 and 6/1/3 are the same index)."""
        weights = np.asarray(self.weights, dtype=float)
        return weights / weights.sum()

    @property
    def used_fields(self) -> list[str]:
        """The fields with a weight above 0: the ones whose values matter."""
        return [name for name, weight in zip(self.fields, self.weights) if weight > 0]

    def text(self) -> str:
        """The weights as the parameter text they came from (``field:weight,…``)."""
        return ",".join(f"{name}:{weight:g}" for name, weight in zip(self.fields, self.weights))


def parse_index_weights(text: str | None) -> IndexWeights | None:
    """Read ``field:weight,…`` (e.g. ``accounts:0.6,sales:0.1,potential:0.3``); None when empty.

    Weights are numbers of zero or more, at least one above zero; each field is named once.
    Semicolons separate like commas. Raises :class:`IndexWeightsError` naming the entry and the fix.
    """
    text = (text or "").strip()
    if not text:
        return None
    fields: list[str] = []
    weights: list[float] = []
    for entry in (part.strip() for part in text.replace(";", ",").split(",")):
        if not entry:
            continue
        # a field name may hold a colon; the weight is what follows the last one
        name, colon, number = entry.rpartition(":")
        name = name.strip()
        if not colon or not name:
            raise IndexWeightsError(
                f"The index weight “{entry}” has no field name and weight. Write each as field:weight, "
                f"separated by commas, e.g. {_EXAMPLE}.")
        try:
            weight = float(number.strip().replace("%", ""))
        except ValueError:
            raise IndexWeightsError(
                f"The index weight of “{name}” is “{number.strip()}”, which is not a number. Give a number "
                f"such as 0.3 (weights are shares: 0.6, 0.1 and 0.3, or 60, 10 and 30), e.g. {_EXAMPLE}."
            ) from None
        if not math.isfinite(weight):
            raise IndexWeightsError(
                f"The index weight of “{name}” is not a finite number ({number.strip()}). Give a number such as "
                f"0.3.")
        if weight < 0:
            raise IndexWeightsError(
                f"The index weight of “{name}” is negative ({weight:g}). Weights are zero or more; leave the "
                f"field out to give it no weight.")
        if name in fields:
            raise IndexWeightsError(
                f"The field “{name}” is named twice in the index weights. Name each field once, with its "
                f"total weight.")
        fields.append(name)
        weights.append(weight)
    if not fields:
        raise IndexWeightsError(f"The index weights “{text}” name no field. Write field:weight, e.g. {_EXAMPLE}.")
    if not any(weight > 0 for weight in weights):
        raise IndexWeightsError(
            f"Every index weight is 0 ({text}), so the index would be 0 everywhere. Give at least one field a "
            f"weight above 0, e.g. {_EXAMPLE}.")
    return IndexWeights(tuple(fields), tuple(weights))


def check_index_fields(weights: IndexWeights, available: Sequence[str], numeric: Sequence[str] | None = None,
                       where: str = "the units layer") -> None:
    """Raise :class:`IndexWeightsError` when a weighted field is not in ``available`` (or not in
    ``numeric``, when given), naming the field and the fields that could be used."""
    available = list(available)
    for name in weights.fields:
        if name not in available:
            close = [f for f in available if f.lower() == name.lower()]
            hint = f" Did you mean “{close[0]}”? Field names are case-sensitive." if close else ""
            offer = list(numeric) if numeric is not None else available
            raise IndexWeightsError(
                f"The index weights name the field “{name}”, which is not in {where}.{hint} Use one of its "
                f"numeric fields: {', '.join(offer[:12]) or 'none'}.")
        if numeric is not None and name not in numeric:
            raise IndexWeightsError(
                f"The index weight field “{name}” is not numeric. Use a numeric field, or convert it with the "
                f"Field Calculator.")


def unit_index(values, weights: IndexWeights, territory_count: int) -> np.ndarray:
    """Each unit's index: Σ share_f × value_f / total_f, times 1,000 × ``territory_count``.

    ``values`` is (n, f), one column per field of ``weights`` in its order. The units' index adds
    up to 1,000 × ``territory_count``, so the average territory scores 1,000. Raises
    :class:`IndexWeightsError` when a weighted field is missing (NaN), negative or 0 on every unit.
    """
    values = _checked_values(values, weights)
    p = int(territory_count)
    if p < 1:
        raise IndexWeightsError(f"The index needs at least one territory, got {p}.")
    totals = values.sum(axis=0)
    shares = weights.shares
    used = shares > 0
    return INDEX_AVERAGE * p * (values[:, used] / totals[used]) @ shares[used]


def territory_index(sums, totals, weights: IndexWeights) -> np.ndarray:
    """The index of territories from their sums of the weighted fields (``sums`` (p, f), f in the
    order of ``weights``) and the layer's totals (f,): the same figure :func:`unit_index` adds up
    to, for when only per-territory sums are known (a territory table)."""
    sums = np.asarray(sums, dtype=float).reshape(-1, len(weights.fields))
    totals = np.asarray(totals, dtype=float).reshape(-1)
    shares = weights.shares
    used = shares > 0
    empty = np.flatnonzero(used & ~(totals > 0))
    if empty.size:
        raise _all_zero(weights.fields[int(empty[0])])
    p = sums.shape[0]
    return INDEX_AVERAGE * p * (sums[:, used] / totals[used]) @ shares[used]


def _checked_values(values, weights: IndexWeights) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values.reshape(-1, 1)
    if values.shape[1] != len(weights.fields):
        raise ValueError(f"{values.shape[1]} value columns for {len(weights.fields)} index fields")
    for f, name in enumerate(weights.fields):
        column = values[:, f]
        if not np.all(np.isfinite(column)):
            raise IndexWeightsError(
                f"The index field “{name}” has no value (NULL) for {int((~np.isfinite(column)).sum())} units. "
                f"Fill them in (0 where there is nothing) or filter those units out.")
        if np.any(column < 0):
            raise IndexWeightsError(
                f"The index field “{name}” is negative for {int((column < 0).sum())} units. Index fields are "
                f"zero or more; fix those values.")
        if weights.weights[f] > 0 and not column.sum() > 0:
            raise _all_zero(name)
    return values


def _all_zero(name: str) -> IndexWeightsError:
    return IndexWeightsError(
        f"The index field “{name}” is 0 for every unit, so its share of the total cannot be computed. Check that "
        f"it holds the figures (a failed join leaves zeros), or give it weight 0.")
