"""Handing single units back: the cheap fix after a few units were painted by hand.

When a user paints a few heavy units into a neighbouring territory, the receiver ends far above
its band and the donor below it. The flows and the search then spread the fix over many
territories; what balance asks for is mostly to hand those units on, one at a time, to the
neighbouring territory that needs them. :func:`hand_back_units` does only that: every step moves
the one unit, out of or into a territory outside its band, that lowers the rebalance's ranking
cost the most (``rebalance.out_of_band_cost``: worst deviation, load beyond the bands and
workload moved), and it stops once the plan is within tolerance or no single move pays. Every
step ranks the plan strictly higher (worst deviation, then total excess), so the result never
ranks below its input; locks, heavy pairs, contiguity and the cap on changed units hold.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .heavy_pairs import heavy_pairs
from .model import Model
from .quality import better, plan_key, within
from .rebalance import MOVE_RATE, WORST_WEIGHT, unit_load

#: Costs that differ by less than this rank as equal (float noise), so NumPy 1 and 2 pick alike.
COST_DIGITS = 12
#: Per step, at most this many of the best moves are checked for contiguity, locks and heavy pairs
#: (a cheap candidate: when they all fail, the flows and the search take over).
TRIES = 64


def _three_largest(values: np.ndarray) -> np.ndarray:
    """Indices of the three largest values (fewer when there are fewer), largest first."""
    order = np.argsort(-values, kind="stable")
    return order[:3]


def _largest_without(values: np.ndarray, top: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Per pair (first[i], second[i]): the largest of ``values`` over the other rows
    (``top`` holds the indices of the three largest values, largest first)."""
    out = np.zeros(first.size)
    taken = np.zeros(first.size, dtype=bool)
    for index in top.tolist():
        free = ~taken & (first != index) & (second != index)
        out[free] = values[index]
        taken |= free
    return out


def _row_figures(ratios: np.ndarray, share: np.ndarray, active: np.ndarray, tolerance: np.ndarray) -> tuple:
    """Per territory row: (worst |deviation| / tolerance, worst |deviation|, excess beyond the band
    in ratio units, the same as load share of the total, mean over the active measures)."""
    deviation = np.abs(ratios[..., active] - 1.0)
    band = tolerance[active]
    over = np.maximum(deviation - band, 0.0)
    return ((deviation / np.maximum(band, 1e-6)).max(axis=-1), deviation.max(axis=-1), over.sum(axis=-1),
            over.sum(axis=-1) * share / active.sum())


def hand_back_units(model: Model, labels: np.ndarray, initial: np.ndarray, tolerance: np.ndarray,
                    cap: Optional[int] = None, max_steps: Optional[int] = None, check=None) -> np.ndarray:
    """Move single units between neighbouring territories, one of them outside its band, the move
    that lowers ``out_of_band_cost`` most first, until the plan is within tolerance or no move pays.

    A move is considered when its unit is movable and borders the receiver (any unit, when the
    receiver is empty), and the donor or the receiver is outside its band; it is made when the
    plan then ranks strictly higher (worst deviation, then total excess), its cost falls, the
    donor stays connected (when contiguity is asked) and non-empty, no heavy pair meets and the
    cap on changed units (against ``initial``) holds. ``max_steps`` bounds the moves; ``check()``
    is called every step (it raises when the user cancels).
    """
    labels = np.asarray(labels, dtype=np.int64).copy()
    initial = np.asarray(initial, dtype=np.int64)
    active = np.flatnonzero(model.active)
    if active.size == 0:
        return labels
    p = model.p
    load = unit_load(model)
    movable = model.locked < 0
    heavy = heavy_pairs(model)
    neighbours = model.neighbours
    row_of, col_of = model.edges
    valid = initial >= 0
    changed = int(np.sum(valid & (labels != initial)))
    count = np.bincount(labels, minlength=p)
    ratios = model.ratios(labels)
    key = plan_key(ratios, model.active, tolerance)
    steps = 0
    while not within(key) and (max_steps is None or steps < max_steps):
        if check is not None:
            check()
        rel, dev, over, over_load = _row_figures(ratios, model.share, model.active, tolerance)
        outside = rel > 1.0 + 1e-9
        donor, receiver = labels[row_of], labels[col_of]
        pick = (donor != receiver) & movable[row_of] & (outside[donor] | outside[receiver]) & (count[donor] > 1)
        unit, receiver = row_of[pick], receiver[pick]
        empty = np.flatnonzero(count == 0)
        if empty.size:
            # an emptied territory borders no unit: any unit may seed it (the one painted away
            # from it restores the most balance)
            seeds = np.flatnonzero(movable & (count[labels] > 1))
            unit = np.concatenate([unit, np.repeat(seeds, empty.size)])
            receiver = np.concatenate([receiver, np.tile(empty, seeds.size)])
        if unit.size == 0:
            break
        # one candidate per (unit, receiver), however many borders they share
        key_pairs = np.unique(unit * p + receiver)
        unit, receiver = key_pairs // p, key_pairs % p
        donor = labels[unit]
        frac = model.frac[unit]
        ratios_donor = ratios[donor] - frac / model.share[donor][:, None]
        ratios_receiver = ratios[receiver] + frac / model.share[receiver][:, None]
        rel_d, dev_d, over_d, load_d = _row_figures(ratios_donor, model.share[donor], model.active, tolerance)
        rel_r, dev_r, over_r, load_r = _row_figures(ratios_receiver, model.share[receiver], model.active, tolerance)
        new_rel = np.maximum(_largest_without(rel, _three_largest(rel), donor, receiver), np.maximum(rel_d, rel_r))
        new_dev = np.maximum(_largest_without(dev, _three_largest(dev), donor, receiver), np.maximum(dev_d, dev_r))
        new_over = (over_d - over[donor]) + (over_r - over[receiver])
        # the change in out_of_band_cost; a unit handed back to its initial territory costs less
        away = np.where(valid[unit] & (receiver != initial[unit]), 1.0, 0.0) - np.where(
            valid[unit] & (donor != initial[unit]), 1.0, 0.0)
        gain = (WORST_WEIGHT * (key.worst_deviation - new_dev) - (load_d - over_load[donor])
                - (load_r - over_load[receiver]) - MOVE_RATE * away * load[unit])
        ranks_higher = (new_rel < key.worst - 1e-9) | ((new_rel <= key.worst + 1e-9) & (new_over < -1e-9))
        good = np.flatnonzero(ranks_higher & (gain > 10.0 ** -COST_DIGITS))
        if good.size == 0:
            break
        order = good[np.lexsort((receiver[good], unit[good], -np.round(gain[good], COST_DIGITS)))][:TRIES]
        moved = False
        for i in order.tolist():
            u, a, b = int(unit[i]), int(donor[i]), int(receiver[i])
            step = (int(b != initial[u]) - int(a != initial[u])) if valid[u] else 0
            if cap is not None and changed + step > cap:
                continue
            if heavy and heavy.blocked(u, labels, b):
                continue
            if model.contiguous and not neighbours.removal_keeps_connected(u, labels):
                continue
            trial = ratios.copy()
            trial[a] -= model.frac[u] / model.share[a]
            trial[b] += model.frac[u] / model.share[b]
            trial_key = plan_key(trial, model.active, tolerance)
            if not better(trial_key, key):  # the exact ranking has the last word over the estimate
                continue
            labels[u] = b
            ratios, key = trial, trial_key
            count[a] -= 1
            count[b] += 1
            changed += step
            moved = True
            break
        if not moved:
            break
        steps += 1
    return labels
