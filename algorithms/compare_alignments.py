"""Compare alignments: which units and how much workload change territory between two plans."""

from __future__ import annotations

import numpy as np
from qgis.core import (
    QgsCoordinateTransform,
    QgsFeature,
    QgsFeatureRequest,
    QgsField,
    QgsFields,
    QgsGeometry,
    QgsMemoryProviderUtils,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsSymbol,
    QgsWkbTypes,
)
from qgis.PyQt.QtGui import QColor
from scipy import sparse

from ..compat import DOUBLE, INT, STRING, make_field, parameter_as_fields
from ..i18n import tr
from ..layers.style import apply_territory_style
from ..layers.territory_table import plan_rows, read_territory_table
from ..layers.units import ScaledFeedback
from . import report
from .common import (
    TerritoryAlgorithm,
    TerritoryStyler,
    _ids,
    add_feature,
    destination_of,
    measure_columns,
    natural_key,
    read_unit_names,
    removes_partial_outputs,
)
from .territory_statistics import _unique, territory_name

FROM = "from_territory"
TO = "to_territory"


class CompareAlignmentsAlgorithm(TerritoryAlgorithm):
    INPUT = "INPUT"
    FIELD_BEFORE = "FIELD_BEFORE"
    FIELD_AFTER = "FIELD_AFTER"
    INPUT_AFTER = "INPUT_AFTER"
    UNIT_ID_FIELD = "UNIT_ID_FIELD"
    BALANCE_FIELDS = "BALANCE_FIELDS"
    TERRITORIES = "TERRITORIES"
    UNIT_NAME_FIELD = "UNIT_NAME_FIELD"
    OUTPUT = "OUTPUT"
    OUTPUT_SUMMARY = "OUTPUT_SUMMARY"
    OUTPUT_HTML = "OUTPUT_HTML"
    CHANGED_UNITS = "CHANGED_UNITS"
    CHANGED_WORKLOAD = "CHANGED_WORKLOAD"
    TERRITORIES_CHANGED = "TERRITORIES_CHANGED"

    def name(self) -> str:
        return "comparealignments"

    def displayName(self) -> str:
        return self.tr("Compare alignments")

    def shortHelpString(self) -> str:
        return self.tr(
            "Compares two alignments of the same units (say, last year's territories and a proposal) and "
            "tells who gains what from whom.\n\n"
            "<b>Units layer</b>: the units, with the alignment before (and, in one-layer mode, after).\n"
            "<b>Territory field before</b>: each unit's territory before.\n"
            "<b>Territory field after</b>: each unit's territory after: a different field of the units "
            "layer, or, when a second layer is given, the field of that layer.\n"
            "<b>Layer after</b> (optional): a second layer with the alignment after, e.g. an edited copy. "
            "Its units are matched to the units layer by <b>unit id field</b>, a field both layers have "
            "(fips, ZIP code…); every id must be present once in each layer.\n"
            "<b>Balance fields</b>: numeric workload fields of the units layer; workloads are always "
            "read from the units layer. None chosen: units are counted.\n"
            "<b>Territory table</b> (optional): names and colours by territory code, for the report. "
            "<b>Unit name field</b> (optional): names the units each territory gains and loses in the "
            "report (feature ids otherwise).\n\n"
            "NULL or blank territories are <i>unassigned</i>; a unit that becomes assigned or "
            "unassigned counts as changed, and the summary has a row with an empty territory for "
            "the unassigned units, so that gains and losses balance.\n"
            "<b>Changed units</b> (output): only the units whose territory changed, with all their "
            "attributes and from_territory / to_territory.\n"
            "<b>Summary</b> (output table, no geometry; CSV and XLSX work): per territory the units and "
            "the workload of every measure before, after, gained, lost and net. A shapefile or dBase "
            "destination gets field names cut to 10 characters.\n"
            "<b>Report</b>: a self-contained HTML file with a map of the changes, a gain/loss chart per "
            "measure and, per territory, what it gains from and loses to whom.\n\n"
            "Results: CHANGED_UNITS, CHANGED_WORKLOAD (percent of the first measure's total, or of the "
            "unit count without measures) and TERRITORIES_CHANGED."
        )

    def initAlgorithm(self, config=None):
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                self.INPUT, self.tr("Units layer"), [QgsProcessing.SourceType.TypeVectorPolygon,
                                                     QgsProcessing.SourceType.TypeVectorPoint]
            )
        )
        self.addParameter(
            QgsProcessingParameterField(
                self.FIELD_BEFORE, self.tr("Territory field before"), parentLayerParameterName=self.INPUT
            )
        )
        self.addParameter(
            QgsProcessingParameterField(
                self.FIELD_AFTER,
                self.tr("Territory field after (on the units layer, or on the layer after)"),
                parentLayerParameterName=self.INPUT,
            )
        )
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                self.INPUT_AFTER,
                self.tr("Layer after (optional, joined by unit id)"),
                [QgsProcessing.SourceType.TypeVector],
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterField(
                self.UNIT_ID_FIELD,
                self.tr("Unit id field (in both layers)"),
                parentLayerParameterName=self.INPUT,
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterField(
                self.BALANCE_FIELDS,
                self.tr("Balance fields (workload measures)"),
                parentLayerParameterName=self.INPUT,
                type=QgsProcessingParameterField.DataType.Numeric,
                allowMultiple=True,
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                self.TERRITORIES, self.tr("Territory table (names, reps, colours by code)"),
                [QgsProcessing.SourceType.TypeVector], optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterField(
                self.UNIT_NAME_FIELD, self.tr("Unit name field (for the report)"),
                parentLayerParameterName=self.INPUT, optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterFeatureSink(
                self.OUTPUT, self.tr("Changed units"), QgsProcessing.SourceType.TypeVectorAnyGeometry
            )
        )
        self.addParameter(
            QgsProcessingParameterFeatureSink(
                self.OUTPUT_SUMMARY, self.tr("Summary per territory"), QgsProcessing.SourceType.TypeVector
            )
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(
                self.OUTPUT_HTML, self.tr("Realignment report"), self.tr("HTML files (*.html)")
            )
        )
        self.addOutput(QgsProcessingOutputNumber(self.CHANGED_UNITS, self.tr("Changed units")))
        self.addOutput(QgsProcessingOutputNumber(self.CHANGED_WORKLOAD, self.tr("Changed workload (%)")))
        self.addOutput(QgsProcessingOutputNumber(self.TERRITORIES_CHANGED, self.tr("Territories that change")))

    # -- run -----------------------------------------------------------------------------------
    @removes_partial_outputs
    def processAlgorithm(self, parameters, context, feedback):
        source = self.parameterAsSource(parameters, self.INPUT, context)
        if source is None:
            raise QgsProcessingException(self.invalidSourceError(parameters, self.INPUT))
        after_source = self.parameterAsSource(parameters, self.INPUT_AFTER, context)
        field_before = self.parameterAsString(parameters, self.FIELD_BEFORE, context)
        field_after = self.parameterAsString(parameters, self.FIELD_AFTER, context)
        id_field = self.parameterAsString(parameters, self.UNIT_ID_FIELD, context)
        balance_fields = parameter_as_fields(self, parameters, self.BALANCE_FIELDS, context)
        html_path = self.parameterAsFileOutput(parameters, self.OUTPUT_HTML, context)
        self._check_fields(source, after_source, field_before, field_after, id_field)

        table_source = self.parameterAsSource(parameters, self.TERRITORIES, context)
        known = read_territory_table(table_source, [field_after, field_before])
        feedback.setProgressText(self.tr("Reading units…"))
        # without a territory table, colours are chosen on the territories' adjacency, as Build does
        units = self.read_units(source, balance_fields, context, ScaledFeedback(feedback, 0, 30),
                                with_adjacency=table_source is None)
        unit_names = read_unit_names(source, self.parameterAsString(parameters, self.UNIT_NAME_FIELD, context), units)
        before, ids = self._read_column(
            source, field_before, id_field if after_source is not None else None, units, feedback
        )
        if after_source is not None:
            after = self._join_after(after_source, field_after, id_field, ids, feedback)
        else:
            after, _ = self._read_column(source, field_after, None, units, feedback)

        measures = measure_columns(units)
        weights = units.workloads
        names = sorted({v for v in before + after if v is not None}, key=natural_key)
        rows: list[str | None] = list(names)
        if any(v is None for v in before + after):
            rows.append(None)
        row_of = {name: r for r, name in enumerate(rows)}
        b = np.array([row_of[v] for v in before], dtype=np.int64)
        a = np.array([row_of[v] for v in after], dtype=np.int64)
        changed = b != a
        adjacency = units.adjacency if units.adjacency is not None else sparse.csr_matrix((units.count, units.count))
        table = plan_rows(names, np.where(a < len(names), a, -1), adjacency, known)
        flows = _flows(b, a, weights, len(rows))
        summary = _summary(b, a, weights, len(rows))

        feedback.setProgressText(self.tr("Writing changed units…"))
        out_id = self._write_changed(parameters, context, source, units, before, after, changed, names, feedback,
                                     table)
        summary_id = self._write_summary(parameters, context, rows, measures, summary)

        changed_units = int(np.count_nonzero(changed))
        first = weights[:, 0] if weights.shape[1] else np.ones(units.count)
        total = float(first.sum())
        changed_workload = round(100.0 * float(first[changed].sum()) / total, 3) if total > 0 else 0.0
        moved = (summary[:, 0, 2] > 0) | (summary[:, 0, 3] > 0)
        territories_changed = int(sum(bool(moved[r]) for r, name in enumerate(rows) if name is not None))

        feedback.setProgressText(self.tr("Writing the realignment report…"))
        feedback.setProgress(85)
        if feedback.isCanceled():
            raise QgsProcessingException(self.tr("Cancelled."))
        image = self._map_image(source, units, after, changed, names, context, table)
        info = {
            "layer": source.sourceName(),
            "after_layer": after_source.sourceName() if after_source else None,
            "before": field_before,
            "after": field_after,
            "id": id_field,
            "units": units.count,
            "changed_units": changed_units,
            "changed_workload": changed_workload,
            "territories_changed": territories_changed,
        }
        moves = _unit_moves(b, a, changed, weights, unit_names, units, len(rows))
        report.write_document(html_path, self._report_html(rows, measures, summary, flows, info, image, table, moves))
        feedback.setProgress(100)
        feedback.pushInfo(
            self.tr("{} of {} units change territory ({:.2f} % of {}).").format(
                changed_units, units.count, changed_workload, measures[0]
            )
        )
        return {
            self.OUTPUT: out_id,
            self.OUTPUT_SUMMARY: summary_id,
            self.OUTPUT_HTML: html_path,
            self.CHANGED_UNITS: changed_units,
            self.CHANGED_WORKLOAD: changed_workload,
            self.TERRITORIES_CHANGED: territories_changed,
        }

    # -- inputs --------------------------------------------------------------------------------
    def _check_fields(self, source, after_source, field_before, field_after, id_field) -> None:
        fields = source.fields()
        if not field_before or fields.lookupField(field_before) < 0:
            raise QgsProcessingException(
                self.tr(
                    "The territory field before, “{}”, is not in the units layer. Choose the field with the "
                    "alignment before."
                ).format(field_before)
            )
        if after_source is None:
            if not field_after or fields.lookupField(field_after) < 0:
                raise QgsProcessingException(
                    self.tr(
                        "The territory field after, “{}”, is not in the units layer. Choose the field with the "
                        "alignment after, or give the layer after."
                    ).format(field_after)
                )
            if field_after == field_before:
                raise QgsProcessingException(
                    self.tr(
                        "The fields before and after are the same field (“{}”), so nothing can change. Choose "
                        "the field with the other alignment, or give the layer after and a unit id field."
                    ).format(field_before)
                )
            return
        if not id_field:
            raise QgsProcessingException(
                self.tr(
                    "A layer after was given without a unit id field. Choose the field that identifies each unit "
                    "in both layers (fips, ZIP code…)."
                )
            )
        if fields.lookupField(id_field) < 0:
            raise QgsProcessingException(
                self.tr("The unit id field “{}” is not in the units layer. Choose a field both layers have.").format(
                    id_field
                )
            )
        if after_source.fields().lookupField(id_field) < 0:
            raise QgsProcessingException(
                self.tr("The unit id field “{}” is not in the layer after. Choose a field both layers have.").format(
                    id_field
                )
            )
        if not field_after or after_source.fields().lookupField(field_after) < 0:
            raise QgsProcessingException(
                self.tr(
                    "The territory field after, “{}”, is not in the layer after. Choose the field of the layer "
                    "after that holds the new alignment."
                ).format(field_after)
            )

    def _read_column(self, source, field_name, id_field, units, feedback):
        """Territory per unit (None = unassigned) and, with ``id_field``, each unit's id key."""
        fields = source.fields()
        index = fields.lookupField(field_name)
        wanted = [index]
        id_index = fields.lookupField(id_field) if id_field else -1
        if id_index >= 0:
            wanted.append(id_index)
        request = QgsFeatureRequest().setFlags(QgsFeatureRequest.Flag.NoGeometry).setSubsetOfAttributes(wanted)
        values: list[str | None] = [None] * units.count
        ids: list = [None] * units.count
        for count, feature in enumerate(source.getFeatures(request)):
            if count % 1000 == 0 and feedback.isCanceled():
                raise QgsProcessingException(self.tr("Cancelled."))
            i = units.index_of_fid.get(feature.id())
            if i is None:
                continue
            value = feature.attribute(index)
            values[i] = territory_name(value)
            if id_index >= 0:
                ids[i] = _id_key(feature.attribute(id_index))
        if id_index >= 0:
            _check_ids(ids, [int(f) for f in units.fids], id_field, self.tr("the units layer"))
        return values, ids

    def _join_after(self, after_source, field_after, id_field, ids, feedback) -> list[str | None]:
        fields = after_source.fields()
        index, id_index = fields.lookupField(field_after), fields.lookupField(id_field)
        request = QgsFeatureRequest().setFlags(QgsFeatureRequest.Flag.NoGeometry).setSubsetOfAttributes([index,
                                                                                                         id_index])
        keys, values, fids = [], [], []
        for count, feature in enumerate(after_source.getFeatures(request)):
            if count % 1000 == 0 and feedback.isCanceled():
                raise QgsProcessingException(self.tr("Cancelled."))
            keys.append(_id_key(feature.attribute(id_index)))
            value = feature.attribute(index)
            values.append(territory_name(value))
            fids.append(feature.id())
        _check_ids(keys, fids, id_field, self.tr("the layer after"))
        by_key = dict(zip(keys, values))
        missing = [k for k in ids if k not in by_key]
        if missing:
            raise QgsProcessingException(
                self.tr(
                    "{} units of the units layer are missing from the layer after (ids in “{}”: {}). Both layers "
                    "must hold the same units."
                ).format(len(missing), id_field, _ids(missing))
            )
        extra = sorted(set(keys) - set(ids), key=str)
        if extra:
            raise QgsProcessingException(
                self.tr(
                    "{} units of the layer after are not in the units layer (ids in “{}”: {}). Both layers must "
                    "hold the same units."
                ).format(len(extra), id_field, _ids(extra))
            )
        return [by_key[k] for k in ids]

    # -- outputs -------------------------------------------------------------------------------
    def _write_changed(self, parameters, context, source, units, before, after, changed, names, feedback, table):
        destination = destination_of(parameters, self.OUTPUT)
        input_names = [f.name() for f in source.fields()]
        field_names = _unique(input_names + [FROM, TO])
        if report.is_dbf_destination(destination):
            field_names = report.short_field_names(field_names)
        fields = QgsFields()
        for name, qfield in zip(field_names, list(source.fields())):
            copy = QgsField(qfield)
            copy.setName(name)
            fields.append(copy)
        for name, alias in zip(field_names[-2:], (self.tr("Territory before"), self.tr("Territory after"))):
            qfield = make_field(name, STRING, 254)
            qfield.setAlias(alias)
            fields.append(qfield)
        sink, out_id = self.parameterAsSink(
            parameters, self.OUTPUT, context, fields, source.wkbType(), source.sourceCrs()
        )
        if sink is None:
            raise QgsProcessingException(self.invalidSinkError(parameters, self.OUTPUT))
        changed_fids = [int(units.fids[i]) for i in np.flatnonzero(changed)]
        total = max(len(changed_fids), 1)
        request = QgsFeatureRequest().setFilterFids(changed_fids)
        for count, feature in enumerate(source.getFeatures(request)):
            if count % 500 == 0:
                if feedback.isCanceled():
                    raise QgsProcessingException(self.tr("Cancelled."))
                feedback.setProgress(35 + 40 * count / total)
            i = units.index_of_fid[feature.id()]
            out = QgsFeature(fields)
            out.setGeometry(feature.geometry())
            out.setAttributes(list(feature.attributes()) + [before[i], after[i]])
            add_feature(sink, out)
        TerritoryStyler.attach(out_id, field_names[-1], names, context, table)
        return out_id

    def _summary_fields(self, measures: list[str], shapefile: bool) -> QgsFields:
        spec = [("territory", STRING, self.tr("Territory"))]
        stages = [
            ("before", self.tr("{} before")),
            ("after", self.tr("{} after")),
            ("gained", self.tr("{} gained")),
            ("lost", self.tr("{} lost")),
            ("net", self.tr("{} net change")),
        ]
        blocks = ["units"] + [m for m in measures if m != "units"]
        for block in blocks:
            kind = INT if block == "units" else DOUBLE
            for stage, alias in stages:
                spec.append((f"{block}_{stage}", kind, alias.format(block)))
        names = _unique([s[0] for s in spec])
        if shapefile:
            names = report.short_field_names(names)
        fields = QgsFields()
        for name, (_, kind, alias) in zip(names, spec):
            qfield = make_field(name, kind, 254 if kind == STRING else 0)
            qfield.setAlias(alias)
            fields.append(qfield)
        return fields

    def _write_summary(self, parameters, context, rows, measures, summary) -> str | None:
        destination = destination_of(parameters, self.OUTPUT_SUMMARY)
        fields = self._summary_fields(measures, report.is_dbf_destination(destination))
        sink, summary_id = self.parameterAsSink(
            parameters, self.OUTPUT_SUMMARY, context, fields, QgsWkbTypes.Type.NoGeometry
        )
        if sink is None:
            raise QgsProcessingException(self.invalidSinkError(parameters, self.OUTPUT_SUMMARY))
        with_measures = measures != ["units"]
        for r, name in enumerate(rows):
            values: list = [name]
            values += [int(v) for v in summary[r, 0]]
            if with_measures:
                for m in range(len(measures)):
                    values += [float(v) for v in summary[r, m + 1]]
            feature = QgsFeature(fields)
            feature.setAttributes(values)
            add_feature(sink, feature)
        return summary_id

    def _map_image(self, source, units, after, changed, names, context, table):
        """Units in their new territory's colour; units that change are outlined in red."""
        from .territory_statistics import _feature, _no_brush

        crs = source.sourceCrs()
        fields = QgsFields()
        fields.append(make_field("territory", STRING))
        layer = QgsMemoryProviderUtils.createMemoryLayer("units", fields, source.wkbType(), crs)
        changes = QgsMemoryProviderUtils.createMemoryLayer("changes", fields, source.wkbType(), crs)
        everything, moved = [], []
        for feature in source.getFeatures(QgsFeatureRequest().setNoAttributes()):
            i = units.index_of_fid.get(feature.id())
            if i is None:
                continue
            out = _feature(fields, QgsGeometry(feature.geometry()), [after[i]])
            everything.append(out)
            if changed[i]:
                moved.append(out)
        layer.dataProvider().addFeatures(everything)
        changes.dataProvider().addFeatures(moved)
        apply_territory_style(layer, "territory", names, {row.code: row.colour for row in table})
        symbol = QgsSymbol.defaultSymbol(changes.geometryType())
        if units.is_polygon:
            symbol.symbolLayer(0).setBrushStyle(_no_brush())
            symbol.symbolLayer(0).setStrokeColor(QColor(200, 0, 0))
            symbol.symbolLayer(0).setStrokeWidth(0.7)
        else:
            symbol.setColor(QColor(200, 0, 0))
        changes.renderer().setSymbol(symbol)
        # Geographic layers are drawn in the local metric projection so shapes are not stretched.
        map_crs = units.metric_crs if crs.isGeographic() else crs
        extent = source.sourceExtent()
        if map_crs != crs:
            extent = QgsCoordinateTransform(crs, map_crs, context.transformContext()).transformBoundingBox(extent)
        return report.render_map([changes, layer], map_crs, extent, transform_context=context.transformContext())

    def _report_html(self, rows, measures, summary, flows, info, image, table, moves) -> str:
        esc, fmt = report.esc, report.fmt
        unassigned = self.tr("Unassigned")
        labels = [report.display_name(table[r]) if name is not None else unassigned for r, name in enumerate(rows)]
        table_colours = report.colours_of(table)
        colours = [table_colours[r] if name is not None else QColor(200, 200, 200) for r, name in enumerate(rows)]
        blocks = ["units"] + [m for m in measures if m != "units"]
        after_text = (
            f"{esc(info['after'])} ({esc(self.tr('layer'))} {esc(info['after_layer'])}, "
            f"{esc(self.tr('joined on'))} {esc(info['id'])})"
            if info["after_layer"]
            else esc(info["after"])
        )
        body = [
            f'<p class="meta">{esc(self.tr("Layer"))}: <b>{esc(info["layer"])}</b> · '
            f"{esc(self.tr('before'))}: <b>{esc(info['before'])}</b> · {esc(self.tr('after'))}: <b>{after_text}</b>"
            f" · {esc(self.tr('measures'))}: <b>{esc(', '.join(measures))}</b></p>"
        ]
        body.append(
            report.cards(
                [
                    (f"{info['changed_units']} / {info['units']}", self.tr("units change territory"), ""),
                    (
                        f"{fmt(info['changed_workload'], 2)} %",
                        self.tr("of {} changes territory").format(measures[0]),
                        "",
                    ),
                    (str(info["territories_changed"]), self.tr("territories gain or lose units"), ""),
                ]
            )
        )
        body.append(f"<h2>{esc(self.tr('Map of the changes'))}</h2>")
        legend = self.tr("Units in their new territory colour; units that change territory are outlined in red.")
        body.append(f'<p class="meta">{esc(legend)}</p>')
        body.append(report.image_tag(image, self.tr("Map of the units that change territory")))

        body.append(f"<h2>{esc(self.tr('Gains and losses'))}</h2>")
        for m, block in enumerate(blocks):
            body.append(
                "<div>" + report.gain_loss_chart(block, labels, summary[:, m, 2], summary[:, m, 3], colours) + "</div>"
            )

        body.append(f"<h2>{esc(self.tr('Summary'))}</h2>")
        headers = [self.tr("Territory")]
        for block in blocks:
            headers += [
                self.tr("{} before").format(block),
                self.tr("{} after").format(block),
                self.tr("{} gained").format(block),
                self.tr("{} lost").format(block),
                self.tr("{} net").format(block),
            ]
        table_rows = []
        for r in range(len(rows)):
            row = [report.swatch(colours[r]) + esc(labels[r])]
            for m in range(len(blocks)):
                before, after, gained, lost, net = summary[r, m]
                row += [fmt(before), fmt(after), fmt(gained), fmt(lost), f"{'+' if net > 0 else ''}{fmt(net)}"]
            table_rows.append(row)
        body.append(report.table(headers, table_rows, [False] + [True] * (len(headers) - 1)))

        body.append(f"<h2>{esc(self.tr('Per territory'))}</h2>")
        for r in range(len(rows)):
            gains = [s for s in range(len(rows)) if s != r and flows[s, r, 0] > 0]
            losses = [s for s in range(len(rows)) if s != r and flows[r, s, 0] > 0]
            body.append(f"<h3>{report.swatch(colours[r])}{esc(labels[r])}</h3>")
            if not gains and not losses:
                body.append(f"<p>{esc(self.tr('No change.'))}</p>")
                continue
            items = []
            for s in gains:
                items.append(esc(self.tr("gains from {}: {}").format(labels[s], self._amounts(flows[s, r], blocks))))
            for s in losses:
                items.append(esc(self.tr("loses to {}: {}").format(labels[s], self._amounts(flows[r, s], blocks))))
            net = ", ".join(
                f"{'+' if summary[r, m, 4] > 0 else ''}{fmt(summary[r, m, 4])} {block}"
                for m, block in enumerate(blocks)
            )
            items.append(f"<b>{esc(self.tr('net'))}</b>: {esc(net)}")
            body.append("<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>")
            for title, listed in ((self.tr("Units gained"), moves[r][0]), (self.tr("Units lost"), moves[r][1])):
                if not listed:
                    continue
                cells = [[esc(name), esc(labels[other])] + [fmt(v) for v in values] for name, other, values in listed]
                headers = [title, self.tr("from") if listed is moves[r][0] else self.tr("to")]
                headers += [m for m in measures if m != "units"]
                body.append(report.table(headers, cells, [False, False] + [True] * (len(headers) - 2)))
        return report.document(self.tr("Realignment report"), "\n".join(body))

    @staticmethod
    def _amounts(flow, blocks) -> str:
        return ", ".join(
            f"{report.fmt(flow[m])} {'unit' if block == 'units' and flow[m] == 1 else block}"
            for m, block in enumerate(blocks)
        )


# --- helpers ----------------------------------------------------------------------------------


def _id_key(value):
    """A unit id comparable across layers and field types (13001, 13001.0 and "13001" differ
    only when the text differs)."""
    if value is None or (hasattr(value, "isNull") and value.isNull()):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _check_ids(keys, fids, id_field, where) -> None:

    empty = [fid for fid, key in zip(fids, keys) if key is None or key == ""]
    if empty:
        raise QgsProcessingException(
            tr(
                "{} features of {} have no unit id in “{}” (feature ids {}). Every unit needs an id to be matched."
            ).format(len(empty), where, id_field, _ids(empty))
        )
    seen: dict = {}
    duplicated = []
    for key in keys:
        seen[key] = seen.get(key, 0) + 1
    duplicated = [key for key, count in seen.items() if count > 1]
    if duplicated:
        raise QgsProcessingException(
            tr(
                "Unit ids in “{}” are repeated in {}: {}. Each id must identify one unit; choose a unique id field."
            ).format(id_field, where, _ids(duplicated))
        )


def _unit_moves(before: np.ndarray, after: np.ndarray, changed: np.ndarray, weights: np.ndarray,
                unit_names: list[str] | None, units, rows: int) -> list[tuple[list, list]]:
    """Per territory row: (units gained, units lost), each a list of (unit name, the other
    territory's row, workloads), by name (feature id when no unit name field is given)."""

    out: list[tuple[list, list]] = [([], []) for _ in range(rows)]
    for i in np.flatnonzero(changed):
        name = unit_names[i] if unit_names is not None else tr("feature {}").format(int(units.fids[i]))
        values = [float(v) for v in weights[i]]
        out[int(after[i])][0].append((name, int(before[i]), values))
        out[int(before[i])][1].append((name, int(after[i]), values))
    for gained, lost in out:
        gained.sort(key=lambda item: natural_key(item[0]))
        lost.sort(key=lambda item: natural_key(item[0]))
    return out


def _flows(before: np.ndarray, after: np.ndarray, weights: np.ndarray, rows: int) -> np.ndarray:
    """(rows, rows, 1 + m): units and workload moving from row r (before) to row s (after)."""
    values = np.concatenate([np.ones((len(before), 1)), weights.reshape(len(before), -1)], axis=1)
    out = np.zeros((rows, rows, values.shape[1]))
    np.add.at(out, (before, after), values)
    return out


def _summary(before: np.ndarray, after: np.ndarray, weights: np.ndarray, rows: int) -> np.ndarray:
    """(rows, 1 + m, 5): per territory, for the unit count then every measure: before, after,
    gained, lost, net."""
    flows = _flows(before, after, weights, rows)
    stay = np.stack([flows[r, r] for r in range(rows)]) if rows else np.zeros((0, flows.shape[2]))
    before_total = flows.sum(axis=1)
    after_total = flows.sum(axis=0)
    gained = after_total - stay
    lost = before_total - stay
    return np.stack([before_total, after_total, gained, lost, gained - lost], axis=2)
