"""What the benchmark's runner and workers share: paths, the engine's Problem for an instance,
and the figures every method is judged by (``core.metrics.plan_figures``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
INSTANCES = OUT / "instances"
RUNS = OUT / "runs"


def code_dir() -> Path:
    """The plugin code being measured: a snapshot of a commit named by BENCH_CODE (a folder called
    ``territory_planner``, see run.py), or the working tree."""
    return Path(os.environ["BENCH_CODE"]) if os.environ.get("BENCH_CODE") else ROOT


def make_importable() -> None:
    """Put the code being measured on sys.path as the package ``territory_planner``."""
    if os.environ.get("BENCH_CODE"):
        parent = str(code_dir().parent)
        if parent not in sys.path:
            sys.path.insert(0, parent)
        return
    scripts = str(ROOT / "scripts")
    if scripts not in sys.path:
        sys.path.insert(0, scripts)
    from plugin_path import make_importable as link

    link()


def problem_for(instance, workloads: np.ndarray | None = None, initial: np.ndarray | None = None,
                random_seed: int = 0):
    """The engine's Problem for an instance, as the Build territories algorithm would pose it."""
    make_importable()
    from territory_planner.core.problem import Problem

    return Problem(
        positions=np.asarray(instance.positions, dtype=float),
        workloads=np.asarray(instance.workloads if workloads is None else workloads, dtype=float),
        adjacency=instance.adjacency(), territory_count=int(instance.territories),
        measure_names=list(instance.measures), tolerance=float(instance.tolerance), contiguous=True,
        initial=initial, random_seed=random_seed)


def figures_record(labels: np.ndarray, problem) -> dict:
    """Balance, contiguity and compactness of a plan, from ``core.metrics.plan_figures``."""
    make_importable()
    from territory_planner.core.metrics import plan_figures

    labels = np.asarray(labels, dtype=np.int64)
    figures = plan_figures(labels, problem)
    deviation = np.abs(figures.deviation)
    return {
        "unassigned": int(np.sum((labels < 0) | (labels >= problem.territory_count))),
        "empty": int(np.sum(figures.unit_count == 0)),
        "max_deviation_pct": [float(100.0 * v) for v in deviation.max(axis=0)],
        "noncontiguous": int(figures.noncontiguous),
        "inertia_km2": float(np.nansum(figures.inertia) / 1e6),
        "within_tolerance": bool(figures.balanced),
    }


def granularity_allows(instance) -> bool:
    """Whether the data allow every territory within tolerance at all: no unit outweighs
    (1 + tolerance) of a territory's target on any measure. (Necessary, not sufficient.)"""
    w = np.asarray(instance.workloads, dtype=float)
    targets = w.sum(axis=0) / instance.territories
    return bool(np.all(w.max(axis=0) <= (1.0 + instance.tolerance) * targets))


def write_gpkg(path, layer_name: str, fields, wkb_type, crs: str, rows, batch: int = 20_000) -> None:
    """Write ``rows`` (pairs of a QgsGeometry and its attribute list) as the GeoPackage layer
    ``layer_name`` at ``path``, in batches; the file is written under a temporary name and renamed
    at the end, so an interrupted run never leaves a half-written layer under the real name."""
    from qgis.core import (
        QgsCoordinateReferenceSystem,
        QgsCoordinateTransformContext,
        QgsFeature,
        QgsVectorFileWriter,
    )

    path = Path(path)
    partial = path.with_name(path.name + ".partial.gpkg")
    if partial.exists():
        partial.unlink()
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName, options.layerName = "GPKG", layer_name
    writer = QgsVectorFileWriter.create(str(partial), fields, wkb_type, QgsCoordinateReferenceSystem(crs),
                                        QgsCoordinateTransformContext(), options)
    if writer.hasError():
        raise RuntimeError(writer.errorMessage())
    pending = []
    for geometry, attributes in rows:
        feature = QgsFeature(fields)
        feature.setGeometry(geometry)
        feature.setAttributes(attributes)
        pending.append(feature)
        if len(pending) == batch:
            writer.addFeatures(pending)
            pending = []
    writer.addFeatures(pending)
    del writer  # closes the file
    os.replace(partial, path)


def replace_section(results: Path, start: str, end: str, block: str) -> None:
    """Put ``block`` (which begins with ``start`` and ends with ``end``) in place of the section between
    those markers in ``results``, or at its end when there is none yet."""
    text = results.read_text() if results.exists() else ""
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    results.write_text(text)
