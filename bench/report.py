"""Write bench/RESULTS.md from the results kept under bench/out/runs (only those whose code stamp
matches the code as it is now)."""

from __future__ import annotations

import datetime
import statistics
from pathlib import Path

import numpy as np
from instances import CLUSTERED_SEEDS, REAL, SIZES, TOLERANCE, benchmark_plan

COMPARED = ["engine", "e2e", "kmeans", "gerrychain"]
NAMES = {
    "engine": "ours, engine alone",
    "e2e": "ours, processing.run",
    "kmeans": "QGIS k-means",
    "gerrychain": "GerryChain",
}
TIME_TARGETS = {2000: 5.0, 10000: 30.0, 50000: 180.0}
MEMORY_TARGET_MB = 2048.0
LP_GAP_TARGET = 3.0


TIMEOUTS = {"engine": 1200.0}


def current(name: str, method: str) -> dict | None:
    from run import code_stamp, load_result

    return load_result(name, method, code_stamp(method))


def lp_gap(record: dict | None, lp: dict | None) -> float | None:
    if not record or not lp or not lp.get("ok") or record.get("cost") is None:
        return None
    bound = lp["bound"]
    return 100.0 * (record["cost"] - bound) / bound if bound > 0 else None


def fmt(value, digits: int = 1, missing: str = "–") -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return missing
    if isinstance(value, (int, np.integer)):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def seconds_of(record: dict | None) -> float | None:
    return record.get("seconds") if record and record.get("ok") else None


def ok_plan(record: dict | None) -> bool:
    """The plan is complete, within tolerance on every measure and every territory contiguous."""
    if not record or not record.get("ok") or "figures" not in record:
        return False
    f = record["figures"]
    return f["unassigned"] == 0 and f["within_tolerance"] and f["noncontiguous"] == 0


def data_allow(name: str, engine: dict | None) -> bool:
    """Synthetic instances always allow balance; a real one when the engine's lower bounds on the
    worst deviation of every measure are within tolerance."""
    if name not in REAL:
        return True
    bounds = (engine or {}).get("lower_bounds_pct")
    return bounds is None or all(b <= 100 * TOLERANCE + 1e-9 for b in bounds)


def write_report(path: Path) -> None:
    from run import machine

    plan = benchmark_plan()
    rows = {}
    for name, *_ in plan:
        rows[name] = {m: current(name, m) for m in COMPARED + ["lp", "rebalance"]}
    info = machine()
    gerrychain_version = next((r["gerrychain"].get("version") for r in rows.values()
                               if r["gerrychain"] and r["gerrychain"].get("version")), None)
    gerrychain_numpy = next((r["gerrychain"].get("numpy") for r in rows.values()
                             if r["gerrychain"] and r["gerrychain"].get("numpy")), None)
    from run import describe_code
    lines: list[str] = []
    add = lines.append
    add("# Benchmark results")
    add("")
    add(f"Written by `make bench` on {datetime.date.today().isoformat()} from the results kept in "
        f"`bench/out/runs` that measured the plugin as in {describe_code()}. "
        "What each column means, how the instances are made and how to run: [README.md](README.md).")
    add("")
    add(f"Machine: {info['nproc']} cores ({info['cpu'] or 'unknown CPU'}), {info['ram_gb']:.1f} GB RAM, "
        f"{info['os']}. Python {info['python']}, numpy {info['numpy']}, scipy {info['scipy']}, "
        f"QGIS {info['qgis']}; GerryChain {gerrychain_version or '–'} on numpy {gerrychain_numpy or '–'} "
        "in its own venv.")
    add("")
    loads = [r.get("load") for row in rows.values() for r in row.values() if r and r.get("load") is not None]
    if loads:
        add(f"Load: the machine's 1-minute load average as each job started was {min(loads):.1f}–{max(loads):.1f} "
            f"(median {statistics.median(loads):.1f}) on {info['nproc']} cores; other work shared the machine, "
            "so seconds are upper bounds of what an idle machine gives.")
        add("")
    add("Instances: n units in a 100 km square, Voronoi polygons, three activities (customers, demand, "
        f"workload), tolerance {100 * TOLERANCE:.0f} %; seeds {', '.join(str(s) for s in (1, 2, 3))} uniform "
        f"(`-u`), seeds {', '.join(str(s) for s in sorted(CLUSTERED_SEEDS))} clustered (`-c`). "
        "Real: `georgia` (159 counties; population, elderly), `nc` (100 counties; births 1974, 1979), "
        "10 territories each. GerryChain balances one measure (workload; population; births 1974) "
        "with epsilon 0.05; the other methods are judged on every measure.")
    add("")
    _targets(lines, plan, rows)
    _summary(lines, plan, rows)
    _details(lines, plan, rows)
    _rebalance(lines, plan, rows)
    _reader_notes(lines, plan)
    dock = path.parent / "RESULTS-dock.md"
    if dock.exists():  # `make bench-dock` writes its own figures; they belong in the one report too
        add("")
        add("## The dock (issue 5), from `make bench-dock`")
        add("")
        body = dock.read_text().splitlines()
        add("\n".join(line for line in body if not line.startswith("# ")).strip())
    old = path.read_text() if path.exists() else ""
    if "<!-- travel -->" in old and "<!-- /travel -->" in old:  # `make bench-travel` keeps its own section
        add("")
        add("<!-- travel -->" + old.split("<!-- travel -->", 1)[1].split("<!-- /travel -->", 1)[0] + "<!-- /travel -->")
    soak = path.parent / "RESULTS-soak.md"
    if soak.exists():  # `make soak` results, recorded by hand after each run (issue 13)
        add("")
        add(soak.read_text().strip())
    path.write_text("\n".join(lines) + "\n")
    from scale import write_section  # the large layers' section (bench/scale.py) stays in the report

    write_section(path)


def _targets(lines, plan, rows) -> None:
    add = lines.append
    add("## Targets")
    add("")
    add("| target | met? | measured |")
    add("|---|---|---|")

    # 1. balance and contiguity
    for method in ("engine", "e2e"):
        judged, passed, failures, excluded, missing = 0, 0, [], [], []
        for name, *_ in plan:
            record = rows[name][method]
            if not record:
                missing.append(name)
                continue
            if not data_allow(name, rows[name]["engine"]):
                excluded.append(name)
                continue
            judged += 1
            if ok_plan(record):
                passed += 1
            else:
                failures.append(_failure(name, record))
        met = _met(judged > 0 and passed == judged and not missing, judged == 0)
        text = f"{passed} of {judged} instances"
        if failures:
            text += "; not: " + "; ".join(failures[:12]) + (" …" if len(failures) > 12 else "")
        if excluded:
            text += f"; data do not allow it: {', '.join(excluded)}"
        if missing:
            text += f"; not run: {len(missing)}"
        add(f"| every measure within {100 * TOLERANCE:.0f} % and every territory contiguous ({NAMES[method]}) "
            f"| {met} | {text} |")

    # 2. LP gap at (500, 10)
    gaps = []
    for name, size, *_ in plan:
        if size == 500:
            gaps.append((name, lp_gap(rows[name]["engine"], rows[name]["lp"])))
    measured = [(n, g) for n, g in gaps if g is not None]
    if measured:
        worst = max(measured, key=lambda item: item[1])
        met = _met(len(measured) == len(gaps) and worst[1] <= LP_GAP_TARGET, False)
        text = (f"worst gap {worst[1]:.2f} % ({worst[0]}); all: "
                + ", ".join(f"{n} {g:.2f} %" for n, g in measured))
        if len(measured) < len(gaps):
            text += f"; not measured on {len(gaps) - len(measured)}"
    else:
        met, text = "not measured", "no LP bound or engine result at 500 units"
    add(f"| within {LP_GAP_TARGET:.0f} % of the LP lower bound at (500, 10) (engine alone, cost the bound bounds) "
        f"| {met} | {text} |")

    # 3. faster than GerryChain, lower inertia
    by_size: dict[int, list[str]] = {}
    all_ok, any_compared = True, False
    for name, size, *_ in plan:
        ours, theirs = rows[name]["engine"], rows[name]["gerrychain"]
        if not (ours and ours.get("ok") and theirs and theirs.get("ok")):
            continue
        any_compared = True
        faster = ours["seconds"] < theirs["seconds"]
        rounder = ours["figures"]["inertia_km2"] < theirs["figures"]["inertia_km2"]
        all_ok &= faster and rounder
        if not (faster and rounder):
            by_size.setdefault(size, []).append(
                f"{name}: {ours['seconds']:.1f} s vs {theirs['seconds']:.1f} s, inertia "
                f"{ours['figures']['inertia_km2'] / theirs['figures']['inertia_km2']:.2f}× GerryChain's")
    dnf = [name for name, *_ in plan if rows[name]["gerrychain"] and rows[name]["gerrychain"].get("dnf")]
    if not any_compared:
        text = "no instance with results of both"
    elif all_ok:
        text = "faster with lower inertia on every instance GerryChain finished"
    else:
        text = "not on: " + "; ".join(x for v in by_size.values() for x in v)
    if dnf:
        text += f"; GerryChain did not finish: {', '.join(dnf)}"
    add(f"| faster than GerryChain (engine alone vs recursive_tree_part alone) with lower moment of inertia "
        f"| {_met(all_ok and any_compared, not any_compared)} | {text} |")

    # 4. time and memory end to end
    for size, limit in TIME_TARGETS.items():
        times = [(name, seconds_of(rows[name]["e2e"])) for name, s, *_ in plan if s == size]
        measured = [(n, t) for n, t in times if t is not None]
        territories = dict(SIZES)[size]
        if not measured:
            add(f"| ({size:,}, {territories}) within {limit:.0f} s end to end | not measured | – |")
            continue
        worst = max(measured, key=lambda item: item[1])
        # an instance where processing.run or the engine alone ran out of time is over the limit too
        over = [name for name, s, *_ in plan if s == size and any(
            rows[name][m] and rows[name][m].get("dnf") for m in ("e2e", "engine"))]
        met = _met(worst[1] <= limit and not over, False)
        extra = f" ({len(measured)} of {len(times)} seeds run)" if len(measured) < len(times) else ""
        if over:
            extra += "; did not finish (engine alone or end to end, over " + \
                f"{TIMEOUTS['engine']:.0f} s): {', '.join(over)}"
        add(f"| ({size:,}, {territories}) within {limit:.0f} s end to end | {met} | worst {worst[1]:.1f} s "
            f"({worst[0]}), median {statistics.median(t for _, t in measured):.1f} s{extra} |")
    peaks = [(name, rows[name]["e2e"]["peak_rss_mb"]) for name, *_ in plan
             if rows[name]["e2e"] and rows[name]["e2e"].get("ok")]
    if peaks:
        worst = max(peaks, key=lambda item: item[1])
        add(f"| peak memory under 2 GB end to end | {_met(worst[1] < MEMORY_TARGET_MB, False)} | worst "
            f"{worst[1]:,.0f} MB peak RSS of the QGIS process ({worst[0]}) |")
    else:
        add("| peak memory under 2 GB end to end | not measured | – |")
    add("")


def _failure(name: str, record: dict) -> str:
    if not record.get("ok"):
        return f"{name} ({record.get('error', 'failed')[:80]})"
    f = record["figures"]
    return (f"{name} (worst {max(f['max_deviation_pct']):.1f} %, {f['noncontiguous']} non-contiguous"
            + (f", {f['unassigned']} unassigned" if f["unassigned"] else "") + ")")


def _met(ok: bool, unmeasured: bool) -> str:
    if unmeasured:
        return "not measured"
    return "**met**" if ok else "**NOT MET**"


def _summary(lines, plan, rows) -> None:
    add = lines.append
    add("## Summary by size")
    add("")
    add("Seconds: median and worst over the instances of that size. Deviation: the worst over instances, "
        "territories and measures. Balanced & contiguous: instances where every territory is within "
        "tolerance on every measure and in one piece. Inertia: mean ratio to ours (engine alone) on the same "
        "instances.")
    add("")
    add("| size | method | instances run | seconds, median / worst | peak RSS MB, worst | worst deviation % "
        "| balanced & contiguous | non-contiguous territories, total | inertia vs ours |")
    add("|---|---|---|---|---|---|---|---|---|")
    groups = [(f"{size:,} × {p}", [name for name, s, *_ in plan if s == size]) for size, p in SIZES]
    groups += [(name, [name]) for name in REAL]
    for label, names in groups:
        for method in COMPARED:
            records = [rows[n][method] for n in names]
            done = [r for r in records if r and r.get("ok")]
            dnf = sum(1 for r in records if r and r.get("dnf"))
            failed = sum(1 for r in records if r and not r.get("ok") and not r.get("dnf"))
            if not done and not dnf and not failed:
                continue
            run_text = f"{len(done)}/{len(names)}" + (f", {dnf} did not finish" if dnf else "") + \
                (f", {failed} failed" if failed else "")
            seconds = [r["seconds"] for r in done]
            peak = max((r["peak_rss_mb"] for r in done), default=None)
            devs = [max(r["figures"]["max_deviation_pct"]) for r in done if "figures" in r]
            good = sum(1 for r in done if ok_plan(r))
            noncontig = sum(r["figures"]["noncontiguous"] for r in done if "figures" in r)
            ratios = []
            for n in names:
                r, ours = rows[n][method], rows[n]["engine"]
                if r and r.get("ok") and ours and ours.get("ok"):
                    ratios.append(r["figures"]["inertia_km2"] / ours["figures"]["inertia_km2"])
            median = statistics.median(seconds) if seconds else None
            add(f"| {label} | {NAMES[method]} | {run_text} | "
                f"{fmt(median, 2)} / {fmt(max(seconds) if seconds else None, 2)} | "
                f"{fmt(peak, 0)} | {fmt(max(devs) if devs else None)} | {good}/{len(done)} | {noncontig} | "
                f"{fmt(float(np.mean(ratios)) if ratios else None, 2)} |")
    add("")


def _details(lines, plan, rows) -> None:
    add = lines.append
    add("## Every instance")
    add("")
    add("Deviation: the worst |deviation| over territories, per measure in the instance's order (customers / "
        "demand / workload; population / elderly; births 1974 / 1979). LP gap: (cost − LP lower bound) / bound on "
        "the objective that bound bounds (`plan_cost_best_unit_centres`), for instances of at most 500 units; the "
        "bound holds for plans within tolerance only, so k-means' far-from-balanced plans can fall below it.")
    add("")
    add("| instance | method | seconds | peak RSS MB | worst deviation % per measure | non-contiguous | "
        "inertia km² | vs ours | LP gap % |")
    add("|---|---|---|---|---|---|---|---|---|")
    for name, *_ in plan:
        ours = rows[name]["engine"]
        for method in COMPARED:
            record = rows[name][method]
            if record is None:
                continue
            if not record.get("ok"):
                add(f"| {name} | {NAMES[method]} | {record.get('error', 'failed')} | | | | | | |")
                continue
            f = record.get("figures", {})
            ratio = None
            if ours and ours.get("ok") and f:
                ratio = f["inertia_km2"] / ours["figures"]["inertia_km2"]
            seconds = fmt(record["seconds"], 2)
            if method == "gerrychain":
                seconds += f" ({fmt(record['wall_seconds'], 1)} wall)"
            add(f"| {name} | {NAMES[method]} | {seconds} | {fmt(record['peak_rss_mb'], 0)} | "
                f"{' / '.join(fmt(v, 2) for v in f.get('max_deviation_pct', []))} | {f.get('noncontiguous', '–')} | "
                f"{fmt(f.get('inertia_km2'), 0)} | {fmt(ratio, 2)} | {fmt(lp_gap(record, rows[name]['lp']), 2)} |")
        lp = rows[name]["lp"]
        if lp is not None:
            text = (f"bound {lp['bound']:.6g} in {lp['seconds']:.1f} s" if lp.get("ok") else lp.get("error"))
            add(f"| {name} | LP lower bound (`core.solve.bounds`) | {text} | | | | | | |")
    add("")


def _rebalance(lines, plan, rows) -> None:
    add = lines.append
    add("## Rebalancing after a 10 % workload shift (issue 4)")
    add("")
    records = [(name, rows[name]["rebalance"]) for name, *_ in plan if rows[name]["rebalance"]]
    if not records:
        add("Not measured yet (`core.engine.rebalance_territories` was not available when the benchmark ran).")
        add("")
        return
    add("The plan built by the engine, then every unit's workloads scaled by (1 + 0.1·t)(1 + 0.1·u): t the "
        "unit's place along a random direction scaled to [−1, 1] (one side of the map grows, the other "
        "shrinks), u uniform in [−1, 1] per unit and measure. Changed units: units whose territory differs "
        "from the old plan (a rebuilt plan's territories matched to the old ones first).")
    add("")
    add("| instance | old plan after the shift: worst dev % | rebalance s | changed units | worst dev % | "
        "non-contiguous | rebuild s | changed units | worst dev % | non-contiguous |")
    add("|---|---|---|---|---|---|---|---|---|---|")
    for name, record in records:
        if not record.get("ok"):
            add(f"| {name} | {record.get('error', 'failed')} | | | | | | | | |")
            continue
        stale = max(record["stale"]["max_deviation_pct"])
        a, b = record["rebalance"], record["rebuild"]
        fa, fb = a["figures"], b["figures"]
        add(f"| {name} | {stale:.1f} | {a['seconds']:.2f} | {a['changed_units']:,} | "
            f"{max(fa['max_deviation_pct']):.2f} | {fa['noncontiguous']} | {b['seconds']:.2f} | "
            f"{b['changed_units']:,} | {max(fb['max_deviation_pct']):.2f} | {fb['noncontiguous']} |")
    add("")


def _reader_notes(lines, plan) -> None:
    """How the plugin's reading of each GeoPackage differs from the instance graph."""
    import json

    from common import RUNS

    found = []
    for name, size, *_ in plan:
        path = RUNS / name / "gpkg.json"
        if size and path.exists():
            found.append((name, json.loads(path.read_text())))
    if not found:
        return
    add = lines.append
    add("## The layer as the plugin reads it")
    add("")
    add("Each synthetic GeoPackage read back with `layers.units.read_units`: neighbour pairs of the instance "
        "graph that the reader does not see (cells touching along a short stretch; every method is judged "
        "on the instance graph, a superset of the reader's), pairs it adds, the largest offset of a unit's "
        "point, and the reading time.")
    add("")
    add("| instance | pairs missing | longest missing contact m | pairs added | point offset m | read s |")
    add("|---|---|---|---|---|---|")
    for name, record in found:
        add(f"| {name} | {record.get('edges_missing', '–')} | {fmt(record.get('longest_missing_m'), 1)} | "
            f"{record.get('edges_extra', '–')} | "
            f"{record.get('max_position_offset_m', float('nan')):.1e} | {fmt(record.get('read_seconds'), 1)} |")
    add("")
