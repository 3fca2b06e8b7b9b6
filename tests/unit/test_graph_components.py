"""core.graph.components: SciPy's connected components of an undirected graph, found block by
block so that a worker thread never holds the interpreter for a whole large graph. The count and
every label must equal SciPy's (components numbered by their first unit), whatever the blocks;
and the joined-island graph of a large scattered layer must be the one SciPy's search gives."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from territory_planner.core.graph import components, join_islands, undirected


def _random_graph(rng, n: int, m: int, symmetric: bool):
    rows, cols = rng.integers(0, n, m), rng.integers(0, n, m)
    graph = sp.csr_matrix((np.ones(m), (rows, cols)), shape=(n, n))
    return graph + graph.T if symmetric else graph


@pytest.mark.parametrize("seed", range(40))
def test_blocks_give_scipys_components(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 500))
    graph = _random_graph(rng, n, int(rng.integers(0, 2 * n)), symmetric=bool(seed % 2))
    expected_count, expected = connected_components(graph, directed=False)
    order = rng.permutation(n) if seed % 3 else None
    count, labels = components(graph, order, block=int(rng.integers(1, 60)))
    assert count == expected_count
    assert np.array_equal(labels, expected)


@pytest.mark.slow(12)
def test_large_layer_of_islands_is_joined_as_before():
    """Clustered points with a short-range graph: hundreds of islands; the blocks (x order) must
    not change which units join."""
    rng = np.random.default_rng(5)
    centres = rng.uniform(0, 1000, (400, 2))
    pos = centres[rng.integers(0, 400, 120_000)] + rng.normal(0, 2.0, (120_000, 2))
    from scipy.spatial import cKDTree

    pairs = cKDTree(pos).query_pairs(1.0, output_type="ndarray")
    n = len(pos)
    raw = undirected(sp.csr_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n)), n)
    count, labels = components(raw, np.argsort(pos[:, 0], kind="stable"), block=10_000)
    expected_count, expected = connected_components(raw, directed=False)
    assert count == expected_count > 100
    assert np.array_equal(labels, expected)
    joined = join_islands(raw, pos, in_blocks=True)
    assert connected_components(joined.adjacency, directed=False)[0] == 1
    assert joined.detached_groups == expected_count - 1
    plain = join_islands(raw, pos)
    assert joined.joins == plain.joins
    assert (joined.adjacency != plain.adjacency).nnz == 0

