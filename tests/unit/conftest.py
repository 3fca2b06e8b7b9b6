"""Unit tests import the checkout as ``territory_planner`` without QGIS."""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[2]


def _make_importable() -> None:
    if importlib.util.find_spec("territory_planner") is not None:
        return
    folder = Path(tempfile.gettempdir()) / f"territory_planner_pkg_{os.getuid()}"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "territory_planner"
    if not (link.is_symlink() and link.resolve() == ROOT):
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(ROOT, link, target_is_directory=True)
    sys.path.insert(0, str(folder))


_make_importable()


def delaunay_adjacency(points: np.ndarray) -> sp.csr_matrix:
    """Symmetric adjacency of the Delaunay triangulation of the points."""
    from scipy.spatial import Delaunay

    tri = Delaunay(points)
    s = tri.simplices
    rows = np.concatenate([s[:, 0], s[:, 1], s[:, 2]])
    cols = np.concatenate([s[:, 1], s[:, 2], s[:, 0]])
    n = points.shape[0]
    a = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n))
    a = ((a + a.T) > 0).astype(float)
    return sp.csr_matrix(a)


def grid_adjacency(rows: int, cols: int) -> sp.csr_matrix:
    """Rook adjacency of a rows x cols grid, units numbered row by row."""
    n = rows * cols
    idx = np.arange(n).reshape(rows, cols)
    right = (idx[:, :-1].ravel(), idx[:, 1:].ravel())
    down = (idx[:-1, :].ravel(), idx[1:, :].ravel())
    r = np.concatenate([right[0], down[0]])
    c = np.concatenate([right[1], down[1]])
    a = sp.csr_matrix((np.ones(r.size), (r, c)), shape=(n, n))
    return sp.csr_matrix(a + a.T)


def grid_positions(rows: int, cols: int, spacing: float = 1000.0) -> np.ndarray:
    yy, xx = np.mgrid[0:rows, 0:cols]
    return np.column_stack([xx.ravel(), yy.ravel()]).astype(float) * spacing


@pytest.fixture(scope="session")
def random_instance():
    """Factory: uniform random points in a 100 km square with Delaunay adjacency and 3 measures."""

    def make(n=400, seed=0, measures=3):
        rng = np.random.default_rng(seed)
        points = rng.random((n, 2)) * 100_000.0
        columns = [rng.uniform(4, 20, n), rng.uniform(15, 400, n), rng.uniform(15, 100, n)]
        workloads = np.column_stack(columns[:measures]) if measures else np.zeros((n, 0))
        return points, workloads, delaunay_adjacency(points)

    return make


@pytest.fixture(scope="session")
def grid_instance():
    """Factory: a rows x cols grid of 1 km cells with rook adjacency."""

    def make(rows=12, cols=12):
        return grid_positions(rows, cols), grid_adjacency(rows, cols)

    return make


@pytest.fixture
def adjacency_of():
    """The Delaunay adjacency builder, for tests that make their own points."""
    return delaunay_adjacency


# Hypothesis profiles for the property tests (tests/unit/test_properties.py): "default" for
# `make test` (about 100 instances, derandomized: every run checks the same ones), "soak" for
# `make soak` (2,000 new instances). Choose with HYPOTHESIS_PROFILE.
try:
    from hypothesis import settings as _hypothesis_settings
except ImportError:  # pragma: no cover - hypothesis comes with requirements-dev.txt
    _hypothesis_settings = None

if _hypothesis_settings is not None:
    _hypothesis_settings.register_profile("default", max_examples=50, deadline=None, derandomize=True,
                                          database=None, print_blob=True)
    _hypothesis_settings.register_profile("soak", max_examples=1000, deadline=None, database=None,
                                          print_blob=True)
    _hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
