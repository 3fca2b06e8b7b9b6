"""What the save checks cost on PostGIS (issue 13): a units table of N squares on a throw-away
PostgreSQL/PostGIS server (tests/integration/postgis_server.py), bound in the panel's service.

Measured, in real QGIS (offscreen), wall and CPU time of this process (the server's own CPU time
is not included):

- binding the layer (the baseline of loaded territories is part of it) and the baseline alone;
- saving one painted unit, and saving a plan where every unit changed (as after Build), each
  with the conflict check (``SaveGuard``) and without it (the guard detached), and the check
  alone (``find_conflicts``) on the full buffer.

Writes bench/RESULTS-postgis.md.

    python bench/bench_postgis_save.py [--units 50000]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from plugin_path import make_importable  # noqa: E402

make_importable()


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Timer:
    def __init__(self):
        self.wall = self.cpu = 0.0

    def __enter__(self):
        self._wall, self._cpu = time.perf_counter(), cpu()
        return self

    def __exit__(self, *_):
        self.wall = time.perf_counter() - self._wall
        self.cpu = cpu() - self._cpu


def make_table(server, name: str, units: int) -> None:
    side = int(units ** 0.5) + 1
    server.sql(f"CREATE TABLE {name} AS SELECT g AS fid, "
               f"ST_Multi(ST_MakeEnvelope((g % {side}) * 1000, (g / {side}) * 1000, "
               f"(g % {side}) * 1000 + 1000, (g / {side}) * 1000 + 1000, 3857))::geometry(MultiPolygon, 3857) AS geom, "
               f"(4 + g % 17)::double precision AS accounts, "
               f"'Territory ' || (1 + (g % {side}) * 5 / {side} + 5 * ((g / {side}) * 4 / {side})) AS territory "
               f"FROM generate_series(1, {units}) AS g")
    server.sql(f"ALTER TABLE {name} ADD PRIMARY KEY (fid); CREATE INDEX ON {name} USING gist (geom); ANALYZE {name}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--units", type=int, default=50000)
    args = parser.parse_args()

    from qgis.core import QgsApplication, QgsDataSourceUri, QgsProject, QgsVectorLayer, QgsWkbTypes

    app = QgsApplication([], False)
    app.initQgis()
    from postgis_server import PostgisServer
    from territory_planner.layers.save_guard import KEEP_MINE, Baseline
    from territory_planner.ui.assignment_service import AssignmentService
    from territory_planner.ui.settings import PlanSettings

    load = os.getloadavg()
    server = PostgisServer().start()
    rows = []
    try:
        make_table(server, "units", args.units)
        uri = QgsDataSourceUri()
        uri.setConnection(server.socket_dir, str(server.port), server.dbname, server.user, "")
        uri.setDataSource("public", "units", "geom", "", "fid")
        uri.setSrid("3857")
        uri.setWkbType(QgsWkbTypes.Type.MultiPolygon)
        layer = QgsVectorLayer(uri.uri(False), "units", "postgres")
        assert layer.isValid()
        QgsProject.instance().addMapLayer(layer)
        service = AssignmentService(QgsProject.instance())
        service.conflict_chooser = lambda conflicts, can_cancel: KEEP_MINE
        plan = PlanSettings(territory_field="territory", measures=["accounts"])
        with Timer() as t:
            assert service.bind(layer, plan)
        rows.append(("bind the layer (attributes, baseline included)", t))
        values = [f"Territory {k % 20}" for k in range(len(service.fids))]
        with Timer() as t:
            Baseline().reset(service.fids, values)
        rows.append(("the baseline alone", t))

        def save(label: str, fids, guarded: bool) -> None:
            names = service.territory_names
            territory_of = service.ledger.territory_of_fid
            target = {int(f): names[(names.index(territory_of(int(f))) + 1) % len(names)] for f in fids}
            by_name: dict = {}
            for fid, name in target.items():
                by_name.setdefault(name, []).append(fid)
            for name, chosen in by_name.items():
                service.assign(chosen, name, action="build")
            if not guarded:
                service.saving.guard.detach()
            elif len(fids) > 1:
                with Timer() as t:
                    conflicts = service.saving.guard.find_conflicts()
                assert conflicts == []
                rows.append((f"the conflict check alone, {len(fids):,} changed units", t))
            with Timer() as t:
                assert layer.commitChanges(), layer.commitErrors()
            rows.append((label, t))
            if not guarded:  # bind again: a fresh guard
                assert service.bind(layer, plan)

        fids = service.fids.tolist()
        save("warm-up: a first save (opens the connections)", fids[2:3], True)
        rows.pop()
        save("save one painted unit, with the check", fids[:1], True)
        save("save one painted unit, without the check", fids[1:2], False)
        save(f"save all {len(fids):,} units changed, with the check", fids, True)
        save(f"save all {len(fids):,} units changed, without the check", fids, False)
        service.unbind()
    finally:
        server.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = [f"# Saving on PostGIS: the cost of the checks ({args.units:,} units)", "",
             f"`python bench/bench_postgis_save.py --units {args.units}`; {platform.node()}, "
             f"load average before {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; peak RSS of QGIS's process "
             f"{peak:.0f} MB. CPU = user + system time of QGIS's process (the server's CPU is not counted).", "",
             "| step | wall s | CPU s |", "|---|---:|---:|"]
    lines += [f"| {label} | {t.wall:.3f} | {t.cpu:.3f} |" for label, t in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    (ROOT / "bench" / "RESULTS-postgis.md").write_text(text, encoding="utf-8")
    app.exitQgis()


if __name__ == "__main__":
    main()
