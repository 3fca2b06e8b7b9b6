"""The Territory Planner benchmark (`make bench`): our engine against QGIS's k-means and
GerryChain's recursive_tree_part on Ríos-Mercado & Fernández style instances and real counties.

    python bench/run.py [--sizes 500,2000] [--seeds 1,4] [--methods engine,e2e,...] [--fresh]

Every job runs in its own process (``bench/worker.py``, or ``bench/gerrychain_worker.py`` in
GerryChain's venv) and its result is kept under ``bench/out/runs``, stamped with a hash of the
code it measured: a second run skips what is still valid, so the long run can be resumed or
done size by size. ``bench/RESULTS.md`` is written at the end from every valid result.
Environment variables BENCH_SIZES, BENCH_SEEDS, BENCH_METHODS stand for the options.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    BENCH,
    INSTANCES,
    ROOT,
    RUNS,
    code_dir,
    figures_record,
    make_importable,
    problem_for,
)
from instances import (  # noqa: E402
    GENERATOR_VERSION,
    REAL,
    SEEDS,
    SIZES,
    Instance,
    benchmark_plan,
    synthetic_instance,
)

METHODS = ["engine", "e2e", "kmeans", "gerrychain", "lp", "rebalance"]
LABELS = {
    "engine": "Territory Planner, engine alone",
    "e2e": "Territory Planner, processing.run",
    "kmeans": "QGIS native:kmeansclustering",
    "gerrychain": "GerryChain recursive_tree_part",
}
LP_MAX_UNITS = 500
GERRYCHAIN_MEASURE = {"georgia": "population", "nc": "births_1974"}  # synthetic: "workload"
TIMEOUTS = {"engine": 1200, "e2e": 1500, "kmeans": 600, "gerrychain": 600, "lp": 900, "rebalance": 1800,
            "gpkg": 600, "real": 300}


# --- code stamps: a result stays valid while the code it measured is unchanged ------------------

def _hash_files(paths: list[Path]) -> str:
    digest = hashlib.sha1()
    for path in sorted(paths, key=lambda p: (p.parent.name, p.name)):
        if not path.exists():
            continue
        digest.update(f"{path.parent.name}/{path.name}".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def code_stamp(method: str) -> str:
    code = code_dir()
    worker = [BENCH / "worker.py", BENCH / "common.py", BENCH / "instances.py"]
    core = list((code / "core").glob("*.py"))
    plugin = core + list((code / "algorithms").glob("*.py")) + list((code / "layers").glob("*.py"))
    if method == "lp":  # the bound depends only on these, and takes long: keep it across engine changes
        return _hash_files(worker + [code / "core" / f for f in ("bounds.py", "metrics.py", "problem.py", "graph.py")])
    if method in ("engine", "rebalance"):
        return _hash_files(worker + core)
    if method == "e2e":
        return _hash_files(worker + plugin)
    if method == "kmeans":
        return _hash_files(worker) + "-" + qgis_version()
    if method == "gerrychain":
        return _hash_files([BENCH / "gerrychain_worker.py", BENCH / "instances.py", ROOT / "requirements-bench.txt"])
    raise ValueError(method)


def qgis_version() -> str:
    try:
        from qgis.core import Qgis

        return Qgis.QGIS_VERSION
    except ImportError:
        return "unknown"


# --- running jobs -------------------------------------------------------------------------------

def run_job(command: list[str], timeout: float, log: Path) -> dict:
    """Run one job process; returns {"ok", "dnf", "wall_seconds", "load", "error"}; ``load`` is the
    machine's 1-minute load average as the job starts (other sessions share these 2 cores)."""
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env.setdefault("XDG_RUNTIME_DIR", f"/tmp/runtime-{os.getuid()}")
    load = os.getloadavg()[0]
    start = time.perf_counter()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()
            return {"ok": False, "dnf": True, "wall_seconds": time.perf_counter() - start, "load": load,
                    "error": f"did not finish within {timeout:.0f} s"}
    wall = time.perf_counter() - start
    if code != 0:
        lines = log.read_text(errors="replace").strip().splitlines()
        last = lines[-1].strip() if lines else ""
        return {"ok": False, "dnf": False, "wall_seconds": wall, "load": load,
                "error": f"failed (exit {code}): {last[-200:]}"}
    return {"ok": True, "wall_seconds": wall, "load": load}


def python_main() -> str:
    return sys.executable


def instance_paths(name: str) -> tuple[Path, Path]:
    folder = INSTANCES / f"v{GENERATOR_VERSION}"
    return folder / f"{name}.npz", folder / f"{name}.gpkg"


def ensure_instance(name: str, size: int, territories: int, seed: int, need_gpkg: bool) -> Instance:
    npz, gpkg = instance_paths(name)
    if not npz.exists():
        start = time.perf_counter()
        npz.parent.mkdir(parents=True, exist_ok=True)
        if size == 0:
            result = run_job([python_main(), str(BENCH / "worker.py"), "real", name, str(npz), str(gpkg)],
                             TIMEOUTS["real"], RUNS / name / "real.log")
            if not result["ok"]:
                raise RuntimeError(f"reading {name} failed: {result['error']}")
        else:
            synthetic_instance(size, territories, seed).save(npz)
        say(f"  made instance {name} in {time.perf_counter() - start:.1f} s")
    instance = Instance.load(npz)
    checked = RUNS / name / "gpkg.json"
    current = gpkg.exists() and checked.exists() and "longest_missing_m" in json.loads(checked.read_text())
    if need_gpkg and size and not current:
        start = time.perf_counter()
        result = run_job([python_main(), str(BENCH / "worker.py"), "gpkg", str(npz), str(RUNS / name / "gpkg"),
                          str(gpkg)], TIMEOUTS["gpkg"], RUNS / name / "gpkg.log")
        if not result["ok"]:
            raise RuntimeError(f"writing {gpkg} failed: {result['error']}")
        say(f"  wrote {gpkg.name} in {time.perf_counter() - start:.1f} s")
    return instance


def result_path(name: str, method: str, stamp: str) -> Path:
    """Results are kept per code stamp, so runs measuring different commits never overwrite each other."""
    return RUNS / name / f"{method}.{stamp}.result.json"


def load_result(name: str, method: str, stamp: str) -> dict | None:
    for path in (result_path(name, method, stamp), RUNS / name / f"{method}.result.json"):  # then the old name
        if path.exists():
            record = json.loads(path.read_text())
            if record.get("stamp") == stamp:
                return record
    return None


def save_result(name: str, method: str, record: dict) -> None:
    path = result_path(name, method, record["stamp"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1))


def run_method(instance: Instance, method: str, gerrychain_python: str, gerrychain_timeout: float) -> dict:
    npz, gpkg = instance_paths(instance.name)
    prefix = RUNS / instance.name / f"{method}.{code_stamp(method)}"
    for suffix in (".json", ".npy"):
        Path(str(prefix) + suffix).unlink(missing_ok=True)
    if method == "gerrychain":
        measure = GERRYCHAIN_MEASURE.get(instance.name, "workload")
        command = [gerrychain_python, str(BENCH / "gerrychain_worker.py"), str(npz), measure, "0.05", "1",
                   str(prefix)]
        timeout = gerrychain_timeout
    else:
        command = [python_main(), str(BENCH / "worker.py"), method, str(npz), str(prefix)]
        if method in ("e2e", "kmeans"):
            command.append(str(gpkg))
        timeout = TIMEOUTS[method]
    outcome = run_job(command, timeout, Path(str(prefix) + ".log"))
    record = {"method": method, "instance": instance.name, "stamp": code_stamp(method),
              "date": datetime.datetime.now().isoformat(timespec="seconds"), **outcome}
    if method == "gerrychain":
        record["measure"] = measure
        record["timeout"] = timeout
    if outcome["ok"]:
        record.update(json.loads(Path(str(prefix) + ".json").read_text()))
        labels_file = Path(str(prefix) + ".npy")
        if labels_file.exists():
            record["figures"] = figures_record(np.load(labels_file), problem_for(instance))
            if instance.size <= LP_MAX_UNITS:
                record["cost"] = best_unit_centre_cost(np.load(labels_file), instance)
    return record


def best_unit_centre_cost(labels: np.ndarray, instance: Instance) -> float | None:
    make_importable()
    try:
        from territory_planner.core.solve.bounds import plan_cost_best_unit_centres
    except ImportError:
        return None
    return float(plan_cost_best_unit_centres(np.asarray(labels, dtype=np.int64), problem_for(instance)))


def available(method: str) -> str | None:
    """None when the method can run, else why not."""
    make_importable()
    if method in ("engine", "e2e", "rebalance"):
        try:
            from territory_planner.core import engine
        except ImportError as error:
            return f"core.engine not importable ({error})"
        if method == "rebalance" and not hasattr(engine, "rebalance_territories"):
            return "core.engine.rebalance_territories does not exist yet"
    if method == "lp":
        try:
            from territory_planner.core import bounds  # noqa: F401
        except ImportError as error:
            return f"core.solve.bounds not importable ({error})"
    return None


def say(text: str) -> None:
    print(text, flush=True)


def summary_line(record: dict) -> str:
    if not record.get("ok"):
        return record.get("error", "failed")
    parts = []
    if "seconds" in record:
        parts.append(f"{record['seconds']:.2f} s")
    if "peak_rss_mb" in record:
        parts.append(f"{record['peak_rss_mb']:.0f} MB")
    figures = record.get("figures")
    if figures:
        parts.append("dev " + "/".join(f"{v:.1f}" for v in figures["max_deviation_pct"]) + " %")
        parts.append(f"{figures['noncontiguous']} non-contiguous")
        parts.append(f"inertia {figures['inertia_km2']:.4g} km²")
    if "bound" in record:
        parts.append(f"bound {record['bound']:.6g}")
    if "rebalance" in record:
        a, b = record["rebalance"], record["rebuild"]
        parts.append(f"rebalance {a['seconds']:.2f} s, {a['changed_units']} changed; "
                     f"rebuild {b['seconds']:.2f} s, {b['changed_units']} changed")
    return ", ".join(parts)


def parse_list(text: str | None, kind=int) -> list | None:
    if not text:
        return None
    return [kind(v) for v in text.replace(" ", ",").split(",") if v]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=os.environ.get("BENCH_SIZES"),
                        help="unit counts to run, e.g. 500,2000 (default: all); 0 = only the real datasets")
    parser.add_argument("--seeds", default=os.environ.get("BENCH_SEEDS"),
                        help=f"seeds to run (default: {','.join(map(str, SEEDS))}; 1-3 uniform, 4-5 clustered)")
    parser.add_argument("--methods", default=os.environ.get("BENCH_METHODS"),
                        help=f"methods to run (default: all of {','.join(METHODS)})")
    parser.add_argument("--no-real", action="store_true", help="skip the Georgia and North Carolina counties")
    parser.add_argument("--fresh", action="store_true", help="run again even where a valid result is kept")
    parser.add_argument("--report-only", action="store_true", help="only write RESULTS.md from kept results")
    parser.add_argument("--gerrychain-python", default=os.environ.get(
        "GERRYCHAIN_PYTHON", str(ROOT / "build" / "gerrychain-venv" / "bin" / "python")))
    parser.add_argument("--gerrychain-timeout", type=float,
                        default=float(os.environ.get("BENCH_GERRYCHAIN_TIMEOUT", 600)))
    parser.add_argument("--results", default=str(BENCH / "RESULTS.md"))
    parser.add_argument("--code", default=os.environ.get("BENCH_CODE_FROM", "head"),
                        help="head: measure the last commit (default; a snapshot in build/bench-code); a commit: "
                             "measure that one (to complete a run after HEAD moved on); worktree: the working "
                             "tree with whatever is uncommitted in it")
    args = parser.parse_args(argv)
    if args.code != "worktree":
        os.environ["BENCH_CODE"] = str(snapshot("HEAD" if args.code == "head" else args.code))
    else:
        os.environ.pop("BENCH_CODE", None)
    say(f"measuring {describe_code()}")

    sizes = parse_list(args.sizes)
    only_real = sizes == [0]
    methods = parse_list(args.methods, str) or METHODS
    unknown = set(methods) - set(METHODS)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}; choose from {METHODS}")
    plan = benchmark_plan(None if only_real else sizes, parse_list(args.seeds), real=not args.no_real)
    if only_real:
        plan = [entry for entry in plan if entry[1] == 0]

    if not args.report_only:
        run_plan(plan, methods, args)
    from report import write_report

    write_report(Path(args.results))
    say(f"wrote {args.results}")
    return 0


def run_plan(plan, methods, args) -> None:
    reasons = {m: available(m) for m in methods}
    for method, reason in reasons.items():
        if reason:
            say(f"skipping {method}: {reason}")
    if "gerrychain" in methods and not Path(args.gerrychain_python).exists():
        reasons["gerrychain"] = f"{args.gerrychain_python} missing (make bench creates it)"
        say(f"skipping gerrychain: {reasons['gerrychain']}")
    todo = [m for m in methods if not reasons[m]]
    say(f"benchmark: {len(plan)} instances × {len(todo)} methods ({', '.join(todo)}); results kept in "
        f"{RUNS.relative_to(ROOT)}")
    gerrychain_dnf_size: dict[int, str] = {}
    started = time.perf_counter()
    for number, (name, size, territories, seed) in enumerate(plan, 1):
        say(f"[{number}/{len(plan)}] {name}: {size or 'real'} units, {territories} territories "
            f"({time.perf_counter() - started:.0f} s so far)")
        instance = ensure_instance(name, size, territories, seed, need_gpkg=bool({"e2e", "kmeans"} & set(todo)))
        for method in todo:
            if method == "lp" and instance.size > LP_MAX_UNITS:
                continue
            stamp = code_stamp(method)
            kept = None if args.fresh else load_result(name, method, stamp)
            if kept is not None:
                say(f"  {method:10s} kept: {summary_line(kept)}")
                continue
            if method == "gerrychain" and size in gerrychain_dnf_size:
                record = {"method": method, "instance": name, "stamp": stamp, "ok": False, "dnf": True,
                          "skipped": True, "error": f"not run: did not finish on {gerrychain_dnf_size[size]}"}
                save_result(name, method, record)
                say(f"  {method:10s} {record['error']}")
                continue
            record = run_method(instance, method, args.gerrychain_python, args.gerrychain_timeout)
            save_result(name, method, record)
            if method == "gerrychain" and record.get("dnf"):
                gerrychain_dnf_size[size] = name
            say(f"  {method:10s} {summary_line(record)} (wall {record['wall_seconds']:.1f} s)")
    say(f"done in {time.perf_counter() - started:.0f} s")


def snapshot(revision: str) -> Path:
    """The plugin as committed at ``revision``, extracted to build/bench-code/<commit>/territory_planner,
    so a run measures one consistent commit while colleagues keep editing the working tree."""
    commit = git("rev-parse", revision)
    folder = ROOT / "build" / "bench-code" / commit / "territory_planner"
    if not folder.exists():
        tmp = folder.with_name("territory_planner.tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
        tmp.rename(folder)
    return folder


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout.strip()


def describe_code() -> str:
    """Which code the results measure, for RESULTS.md."""
    if os.environ.get("BENCH_CODE"):
        commit = code_dir().parent.name
        return f"commit `{commit[:7]}` ({git('log', '-1', '--format=%cd', '--date=iso', commit)})"
    dirty = git("status", "--porcelain", "--", "core", "algorithms", "layers")
    return f"the working tree at `{git('rev-parse', '--short', 'HEAD')}`" + (
        " with uncommitted changes in core/algorithms/layers" if dirty else "")


def machine() -> dict:
    meminfo = Path("/proc/meminfo").read_text().split("\n")
    total_kb = next((int(line.split()[1]) for line in meminfo if line.startswith("MemTotal")), 0)
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().split("\n")
                   if line.startswith("model name"))
    except StopIteration:
        pass
    import scipy

    return {"nproc": os.cpu_count(), "ram_gb": total_kb / 1024 / 1024, "cpu": cpu,
            "python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
            "qgis": qgis_version(), "os": platform.platform()}


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["REAL", "SIZES", "machine", "load_result", "code_stamp"]
