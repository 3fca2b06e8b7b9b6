"""Same seed, same plan: the engine gives identical labels under another NumPy/SciPy release.

The instances are built here (the bundled Georgia counties at 6, 8 and 10 territories and the
North Carolina counties at 10, read with GDAL when it is available, plus random point layers),
saved to a file, and built twice: in this interpreter and in a second one named by the
environment variable ``SAME_EVERYWHERE_PYTHON``. ``make test`` points it at the NumPy 2 venv
(build/numpy2-venv), so every ``make test`` compares NumPy 1.24 / SciPy 1.10 with NumPy 2.x / SciPy
1.17 (the same code that runs on Debian 13's NumPy 2.2 / SciPy 1.15). Without the variable the test
is skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy
from scipy.spatial import Delaunay

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import same_everywhere_worker as worker  # noqa: E402

OTHER = os.environ.get("SAME_EVERYWHERE_PYTHON", "")
COUNTIES = {
    "georgia_counties": (["population", "elderly"], (6, 8, 10)),
    "nc_counties": (["births_1974", "births_1979"], (10,)),
    # measures that pull apart: the border-move annealing reaches the tolerance
    "ohio_valley_counties": (["population", "accounts"], (5,)),
}


def _county_cases() -> dict:
    """Counties as the plugin sees them: centroids in metres and shared-boundary neighbours."""
    try:
        from osgeo import ogr, osr
    except ImportError:  # a plain venv without GDAL: the random layers still run
        return {}
    cases = {}
    for layer_name, (fields, counts) in COUNTIES.items():
        source = ogr.Open(str(ROOT / "resources" / "data" / f"{layer_name}.gpkg"))
        layer = source.GetLayer(0)
        target = osr.SpatialReference()
        target.ImportFromEPSG(5070)  # NAD83 / Conus Albers: metres
        target.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        layer_srs = layer.GetSpatialRef()
        layer_srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        transform = osr.CoordinateTransformation(layer_srs, target)
        geometries, positions, workloads = [], [], []
        for feature in layer:
            geometry = feature.GetGeometryRef().Clone()
            geometry.Transform(transform)
            geometries.append(geometry)
            centroid = geometry.Centroid()
            positions.append((centroid.GetX(), centroid.GetY()))
            workloads.append([float(feature.GetField(name)) for name in fields])
        edges = [(i, j) for i in range(len(geometries)) for j in range(i + 1, len(geometries))
                 if geometries[i].Intersects(geometries[j])]
        for count in counts:
            cases[f"{layer_name}-{count}"] = (np.array(positions), np.array(workloads), np.array(edges), count)
    return cases


def _random_cases() -> dict:
    """Random points with Delaunay neighbours: uniform with two measures, clustered with one."""
    rng = np.random.default_rng(20261130)
    cases = {}
    uniform = rng.uniform(0.0, 50_000.0, (400, 2))
    work = np.column_stack([rng.integers(1, 30, 400), rng.lognormal(3.0, 0.8, 400)]).astype(float)
    cases["uniform-400"] = (uniform, work, uniform, 8)
    centres = rng.uniform(0.0, 80_000.0, (6, 2))
    clustered = centres[rng.integers(0, 6, 600)] + rng.normal(0.0, 6_000.0, (600, 2))
    cases["clustered-600"] = (clustered, rng.lognormal(2.0, 1.0, (600, 1)), clustered, 12)
    out = {}
    for name, (positions, workloads, points, count) in cases.items():
        simplices = Delaunay(points).simplices
        edges = np.concatenate([simplices[:, [0, 1]], simplices[:, [1, 2]], simplices[:, [0, 2]]])
        edges = np.unique(np.sort(edges, axis=1), axis=0)
        out[name] = (positions, workloads, edges, count)
    return out


@pytest.fixture(scope="module")
def cases_file(tmp_path_factory) -> Path:
    cases = {**_county_cases(), **_random_cases()}
    arrays = {}
    for name, (positions, workloads, edges, count) in cases.items():
        arrays[f"{name}/positions"] = positions
        arrays[f"{name}/workloads"] = workloads
        arrays[f"{name}/edges"] = edges
        arrays[f"{name}/territories"] = np.array(count)
    path = tmp_path_factory.mktemp("same-everywhere") / "cases.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.skipif(not OTHER, reason="SAME_EVERYWHERE_PYTHON names no second interpreter to compare with "
                    "(make test sets it to build/numpy2-venv/bin/python)")
@pytest.mark.slow(40)
def test_same_seed_same_plan_in_another_numpy(cases_file, tmp_path):
    out = tmp_path / "labels.npz"
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    # the other interpreter builds while this one does: the test takes the longer of the two, not the sum
    other_run = subprocess.Popen([OTHER, str(HERE / "same_everywhere_worker.py"), str(cases_file), str(out)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        with np.load(cases_file) as data:
            names = worker.case_names(data)
            labels = {name: worker.build(data, name) for name in names}
        _, errors = other_run.communicate(timeout=900)
    finally:
        if other_run.poll() is None:
            other_run.kill()
            other_run.communicate()
    assert other_run.returncode == 0, f"the engine failed in {OTHER}:\n{errors[-3000:]}"
    here = f"NumPy {np.__version__}, SciPy {scipy.__version__}"
    with np.load(out) as other:
        there = str(other["versions"])
        assert len(names) >= 2 and set(names) <= set(other.files)
        differ = []
        for name in names:
            mine = labels[name]
            theirs = other[name]
            assert mine.shape == theirs.shape and mine.min() >= 0
            if not np.array_equal(mine, theirs):
                differ.append(f"{name}: {int((mine != theirs).sum())} of {mine.size} units differ")
    assert not differ, f"same seed, different plans with {here} and {there}: " + "; ".join(differ)
