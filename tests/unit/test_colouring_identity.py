"""Territory colours on the adjacency graph, and territory identity by overlap."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from territory_planner.core.plan.colouring import (
    MIN_DISTANCE,
    PALETTE,
    assign_colours,
    closest_pair,
    distance,
    territory_neighbours,
)
from territory_planner.core.plan.identity import match_by_overlap


def grid_neighbours(rows: int, cols: int) -> list[set[int]]:
    """Territories on a grid, touching along edges and corners (king moves): 8 neighbours inside."""
    out = [set() for _ in range(rows * cols)]
    for r, c in itertools.product(range(rows), range(cols)):
        for dr, dc in itertools.product((-1, 0, 1), repeat=2):
            if (dr or dc) and 0 <= r + dr < rows and 0 <= c + dc < cols:
                out[r * cols + c].add((r + dr) * cols + c + dc)
    return out


def test_the_palette_is_well_separated():
    assert min(distance(a, b) for a, b in itertools.combinations(PALETTE, 2)) >= MIN_DISTANCE


@pytest.mark.parametrize("rows, cols", [(4, 5), (5, 8), (10, 10)])
def test_neighbours_are_at_least_min_distance_apart(rows, cols):
    neighbours = grid_neighbours(rows, cols)
    colours = assign_colours(neighbours)
    assert closest_pair(colours, neighbours) >= MIN_DISTANCE
    assert all(colour in PALETTE for colour in colours)


def test_twelve_or_fewer_territories_all_get_their_own_colour():
    colours = assign_colours(grid_neighbours(3, 4))
    assert len(set(colours)) == 12


def test_kept_colours_stay_unless_a_neighbour_has_a_near_one():
    neighbours = grid_neighbours(4, 5)
    first = assign_colours(neighbours)
    again = assign_colours(neighbours, keep=dict(enumerate(first)))
    assert again == first  # a reload or a rename recolours nothing
    clash = dict(enumerate(first))
    clash[1] = first[0]  # territory 1 now asks for its neighbour's colour
    fixed = assign_colours(neighbours, keep=clash)
    assert fixed[0] == first[0] and fixed[1] != first[0]
    assert closest_pair(fixed, neighbours) >= MIN_DISTANCE
    assert all(fixed[k] == first[k] for k in range(len(first)) if k != 1)  # only the clash is recoloured


def test_territory_neighbours_from_unit_pairs():
    labels = np.array([0, 0, 1, 1, 2, -1])
    pairs = [(0, 1), (1, 2), (3, 4), (4, 5)]
    assert territory_neighbours(labels, pairs, 3) == [{1}, {0, 2}, {1}]


def test_new_territories_continue_the_old_ones_they_overlap_most():
    old = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    # the same plan with shuffled indices and one unit moved
    new = np.array([2, 2, 1, 0, 0, 0, 1, 1, 1, 1])
    assert match_by_overlap(old, new, 3, 3).tolist() == [1, 2, 0]
    # a new territory that overlaps nothing old gets -1; a lost old one is simply not used
    newer = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 3])
    match = match_by_overlap(old, newer, 3, 4)
    assert match[0] in (0, 1) and match[1] == 2 and match[2] == -1 and match[3] == -1
    assert len({m for m in match if m >= 0}) == len([m for m in match if m >= 0])
