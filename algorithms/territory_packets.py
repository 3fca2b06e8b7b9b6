"""Territory packets: one printable PDF per territory for its rep, plus an overview for the manager.

Each packet is one page of a QGIS print layout atlas over the territories: the territory on a map
with its neighbours greyed, names and the rep's home, the workload against target, and the list of
units by name; with a previous alignment, the units gained and lost, highlighted on the map.
"""

from __future__ import annotations

import os

import numpy as np
from qgis.core import (
    QgsLayoutExporter,
    QgsProcessingException,
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFolderDestination,
    QgsProject,
)

from ..core.metrics import plan_figures
from ..core.plan.accounts import override_lists
from ..core.plan.checks import reach
from ..layers.alignment import read_alignment
from ..layers.reps import home_outside_km, no_home_warning, outside_note, read_reps
from ..layers.shapes import TerritoryShapes, read_unit_geometries
from ..layers.territory_table import TerritoryRow
from . import parameters as shared
from .base import TerritoryAlgorithm, removes_partial_outputs
from .engine_run import check_cancelled
from .network_params import NETWORK, add_travel_parameters, rep_travel_minutes
from .packet_layers import packet_layers
from .packet_layouts import map_crs, overview_layout, packet_layout, pdf_settings
from .parameters import FIELD_BEFORE, OUTPUT_FOLDER, OUTPUT_OVERVIEW, PACKETS, REP_NAME_FIELD, REPS, TERRITORY_FIELD
from .plan_inputs import PlanInputs

HELP = (
    "Writes one PDF per territory for its rep, and overview.pdf for the sales manager, through a "
    "QGIS print layout atlas.\n\n"
    "Each packet shows the territory on a map with its neighbours greyed and its units labelled, the "
    "rep and the rep's home, the workload against the target on every balance field, and the list of "
    "units by name. With a previous alignment, the units gained and lost are listed with their "
    "workload and outlined on the map (gained in green, lost in red).\n\n"
    "<b>Units layer</b> and <b>territory field</b>: the plan (the field holds territory codes).\n"
    "<b>Territory table</b>: optional, names, reps and colours by code (the Territories output of "
    "Build or Rebalance territories); without it names are the codes and colours are chosen here.\n"
    "<b>Balance fields</b>: the workloads shown against their targets (none: unit counts).\n"
    "<b>Unit name field</b>: how units are named (feature ids otherwise).\n"
    "<b>Previous territory field</b>: optional, the alignment before, for gains and losses.\n"
    "<b>Reps</b> / <b>rep name field</b>: optional rep homes (points). A rep belongs to the territory "
    "whose code is in the reps' field named like the territory field (as Assign reps writes it), "
    "else to the territory whose rep in the table has the rep's name; never to the territory their "
    "home lies in. A rep whose home lies outside their territory is named on the packet with the "
    "distance.\n"
    "<b>Road network</b> (optional, with its speed, direction and tolerance settings as in Build "
    "territories): each packet adds the drive from the rep's home to the territory's units (mean and "
    "longest, in minutes by road).\n"
    "<b>Output folder</b>: receives territory_<code>.pdf per territory and overview.pdf.\n\n"
    "Results: PACKETS (the number of territory PDFs) and OUTPUT_OVERVIEW (the overview's path)."
)


ACCOUNTS_HELP = (
    "With accounts, the workload counts every account where it is aligned (an overridden account for its "
    "override territory), and each packet gets a page of its overrides both ways, with their workload: the "
    "accounts outside the territory that its rep keeps, and the accounts in it served by another rep."
)


class TerritoryPacketsAlgorithm(TerritoryAlgorithm):
    """Territory packets: a PDF per territory for its rep and an overview for the manager."""

    algorithm_id = "territorypackets"
    display_name = "Territory packets (PDF per rep)"
    help_text = (HELP, shared.ACCOUNTS_HELP, ACCOUNTS_HELP)

    def flags(self):
        # print layouts and their fonts are used on the thread that made them: run on the main thread
        return super().flags() | self.FlagNoThreading


    def initAlgorithm(self, config=None):
        shared.add_units_layer(self, self.tr("Units layer with an alignment"))
        shared.add_unit_field(self, TERRITORY_FIELD, self.tr("Territory field"))
        shared.add_territory_table(self, self.tr("Territory table (names, reps, colours by code)"))
        shared.add_balance_fields(self)
        shared.add_unit_field(self, shared.UNIT_NAME_FIELD, self.tr("Unit name field"), optional=True)
        shared.add_unit_field(self, FIELD_BEFORE, self.tr("Previous territory field (for gains and losses)"),
                              optional=True)
        shared.add_reps(self, self.tr("Reps (home points)"))
        add_travel_parameters(self, network_only=True)
        shared.add_accounts(self, with_name=True)
        self.addParameter(QgsProcessingParameterFolderDestination(OUTPUT_FOLDER, self.tr("Output folder")))
        self.addOutput(QgsProcessingOutputNumber(PACKETS, self.tr("Territory packets written")))
        self.addOutput(QgsProcessingOutputFile(OUTPUT_OVERVIEW, self.tr("Overview PDF")))

    # -- run -----------------------------------------------------------------------------------
    @removes_partial_outputs
    def processAlgorithm(self, parameters, context, feedback):
        inputs = PlanInputs.read(self, parameters, context, feedback)
        source, territory_field = inputs.source, inputs.territory_field
        field_before = self.parameterAsString(parameters, FIELD_BEFORE, context)
        folder = self.parameterAsString(parameters, OUTPUT_FOLDER, context)
        os.makedirs(folder, exist_ok=True)

        units = inputs.read_units(self.tr("Reading units…"), 15.0, accounts_until=20.0)
        inputs.read_alignment(self.tr("No unit has a territory in “{}”. Choose the field that holds the plan, or build "
                                    "territories first."))
        codes, labels = inputs.codes, inputs.labels
        before_codes: list[str | None] = [None] * units.count
        if field_before:
            before = read_alignment(source, field_before, units, feedback)
            before_codes = [before.names[k] if k >= 0 else None for k in before.labels]
        unit_names = inputs.unit_names() or [self.tr("Unit {}").format(int(fid)) for fid in units.fids]
        rows = inputs.rows()
        geometries = read_unit_geometries(source, units, feedback)
        homes, rep_flags = self._read_reps(parameters, context, source, units, labels, rows, territory_field,
                                           feedback)
        drives = self._home_drives(parameters, context, feedback, units, labels, homes)
        # the overrides may name the table's territories without units too; an unknown code stops here
        units = inputs.count_accounts(list(dict.fromkeys([*codes, *inputs.territory_table()])))
        account_run, book = inputs.account_run, inputs.book
        figures = plan_figures(labels, units.workloads, None, None, territory_count=len(codes),
                               fixed_loads=account_run.fixed_loads(book, len(codes)))
        measures = inputs.measures
        overrides = self._overrides(account_run, book, labels, rows) if book is not None else None

        feedback.setProgressText(self.tr("Preparing the maps…"))
        project = QgsProject()
        crs = source.sourceCrs()
        project.setCrs(map_crs(source, crs, context))
        shapes = TerritoryShapes.dissolve(units, geometries, labels, len(codes), crs, context.transformContext())
        layers = packet_layers(source, units, labels, codes, rows, before_codes, unit_names, figures, measures,
                               [(k, rep.name, point) for k, rep, point in homes], crs, drives, geometries, shapes,
                               overrides, rep_flags)
        for key in ("units", "territories", "workload", "homes", "changes", "overrides"):
            if key in layers:
                project.addMapLayer(layers[key], False)
        feedback.setProgress(40)

        feedback.setProgressText(self.tr("Writing {} territory packets…").format(len(codes)))
        settings = pdf_settings()
        packet = packet_layout(project, layers, bool(field_before))
        project.layoutManager().addLayout(packet)  # the project owns its layouts and deletes them first
        atlas = packet.atlas()
        result, error = QgsLayoutExporter.exportToPdfs(atlas, os.path.join(folder, "territory.pdf"), settings)
        if result != QgsLayoutExporter.ExportResult.Success:
            raise QgsProcessingException(self.tr("The territory packets could not be written: {}").format(error))
        check_cancelled(feedback)
        feedback.setProgress(85)

        feedback.setProgressText(self.tr("Writing the overview…"))
        overview_path = os.path.join(folder, "overview.pdf")
        overview = overview_layout(project, layers, measures, bool(field_before), len(codes))
        project.layoutManager().addLayout(overview)
        result = QgsLayoutExporter(overview).exportToPdf(overview_path, settings)
        project.layoutManager().clear()
        project.removeAllMapLayers()
        if result != QgsLayoutExporter.ExportResult.Success:
            raise QgsProcessingException(self.tr("The overview could not be written to {}.").format(overview_path))
        feedback.setProgress(100)
        feedback.pushInfo(self.tr("{} territory packets and overview.pdf written to {}.").format(len(codes), folder))
        return {PACKETS: len(codes), OUTPUT_OVERVIEW: overview_path, OUTPUT_FOLDER: folder}

    @staticmethod
    def _overrides(account_run, book, labels, rows) -> tuple[list[str], list[tuple]]:
        """The accounts page's rows: per territory, the accounts it keeps from outside ("kept", with
        the territory they stand in) and those in it another territory serves ("served", with it)."""
        accounts = account_run.accounts
        count = len(rows)
        out = []
        for k, lists in enumerate(override_lists(book, labels, count)[:count]):
            for i, other in zip(lists.kept.tolist(), lists.kept_from.tolist()):
                out.append((rows[k].code, "kept", accounts.label(i), rows[other].label if other >= 0 else "–",
                            accounts.workloads[i].tolist()))
            for i, other in zip(lists.served.tolist(), lists.served_by.tolist()):
                out.append((rows[k].code, "served", accounts.label(i),
                            rows[other].label if 0 <= other < count else "–", accounts.workloads[i].tolist()))
        return list(accounts.measure_names), out

    # -- inputs --------------------------------------------------------------------------------
    def _home_drives(self, parameters, context, feedback, units, labels, homes) -> dict:
        """{territory: (mean, longest) minutes by road from its rep's home}, with a road network."""
        first = {}
        for k, rep, _point in homes:
            if k >= 0:
                first.setdefault(k, rep)
        if not first or self.parameterAsSource(parameters, NETWORK, context) is None:
            return {}
        order = sorted(first)
        positions = np.array([first[k].position for k in order], dtype=float)
        minutes = rep_travel_minutes(self, parameters, context, feedback, units, positions)
        drives = {}
        for row, k in enumerate(order):
            members = np.flatnonzero(labels == k)
            figures = reach(minutes[row, members], np.ones(len(members)))
            if figures is not None:
                drives[k] = (figures[0], figures[2])
        return drives

    def _read_reps(self, parameters, context, source, units, labels, rows: list[TerritoryRow], territory_field,
                   feedback) -> tuple[list[tuple], dict[int, str]]:
        """Rep homes as (territory index, rep, home in the units' CRS), each territory's rep in
        ``rows``, and {territory index: why its rep is flagged}. A rep belongs to a territory by code
        only: the code in the reps' field named like the territory field (as Assign reps writes it),
        else the territory whose rep in the table has the rep's name; never by where they live. A rep
        whose home lies outside their territory is flagged with the distance."""
        source_of_reps = self.parameterAsSource(parameters, REPS, context)
        if source_of_reps is None:
            return [], {}
        code_field = territory_field if source_of_reps.fields().lookupField(territory_field) >= 0 else None
        reps = read_reps(source_of_reps, self.parameterAsString(parameters, REP_NAME_FIELD, context), code_field,
                         units, context.transformContext())
        index_of_code = {row.code: k for k, row in enumerate(rows)}
        index_of_rep = {row.rep: k for k, row in enumerate(rows) if row.rep}
        homes, flags = [], {}
        for rep in reps.reps:
            k = index_of_code.get(rep.territory, -1) if rep.territory is not None else -1
            if k < 0:
                k = index_of_rep.get(rep.name, -1)
            if k >= 0:
                rows[k].rep = rep.name
            elif rep.territory is not None or rep.named:
                feedback.pushWarning(self.tr(
                    "Rep “{}” is given no territory: neither the reps layer's field “{}” nor the territory table's "
                    "reps name them. Run Assign reps, or name the rep in the territory table.").format(
                    rep.name, territory_field))
            if not rep.has_home:
                feedback.pushWarning(no_home_warning(rep))
                continue
            homes.append((k, rep, reps.home_in(rep, source.sourceCrs(), context.transformContext())))
            km = home_outside_km(rep.position, k, labels, units.positions, units.is_polygon,
                                 lambda i: units.geometries[i]) if k >= 0 else None
            if km is not None:
                flags[k] = outside_note(km)
                feedback.pushWarning(self.tr("Rep “{}” of “{}” {}.").format(rep.name, rows[k].label, flags[k]))
        return homes, flags
