"""Territory packets: one printable PDF per territory for its rep, plus an overview for the manager.

Each packet is one page of a QGIS print layout atlas over the territories: the territory on a map
with its neighbours greyed, names and the rep's home, the workload against target, and the list of
units by name; with a previous alignment, the units gained and lost, highlighted on the map.
"""

from __future__ import annotations

import os
import re

import numpy as np
from qgis.core import (
    QgsCoordinateTransform,
    QgsFeature,
    QgsFields,
    QgsFillSymbol,
    QgsGeometry,
    QgsLayoutExporter,
    QgsLayoutItemAttributeTable,
    QgsLayoutItemLabel,
    QgsLayoutItemMap,
    QgsLayoutItemShape,
    QgsLayoutMultiFrame,
    QgsLayoutPoint,
    QgsLayoutSize,
    QgsLayoutTableColumn,
    QgsMemoryProviderUtils,
    QgsPrintLayout,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFolderDestination,
    QgsProject,
    QgsProperty,
    QgsSimpleMarkerSymbolLayerBase,
    QgsSymbol,
    QgsSymbolLayer,
    QgsUnitTypes,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QColor, QFont

from ..compat import STRING, make_field, parameter_as_fields
from ..core.metrics import plan_figures
from ..layers.style import label_territories
from ..layers.territory_table import TerritoryRow, plan_rows, read_territory_table
from ..layers.units import ScaledFeedback
from . import report
from .common import (
    TerritoryAlgorithm,
    is_empty_value,
    measure_columns,
    natural_key,
    read_alignment,
    read_unit_names,
    removes_partial_outputs,
)
from .network_params import NETWORK, add_travel_parameters, rep_travel_minutes

GREY = "#e3e3e3"
GAINED = "#1a7f37"
LOST = "#b42318"
INK = QColor(30, 30, 30)
MUTED = QColor(95, 95, 95)


class TerritoryPacketsAlgorithm(TerritoryAlgorithm):
    INPUT = "INPUT"
    TERRITORY_FIELD = "TERRITORY_FIELD"
    TERRITORIES = "TERRITORIES"
    BALANCE_FIELDS = "BALANCE_FIELDS"
    UNIT_NAME_FIELD = "UNIT_NAME_FIELD"
    FIELD_BEFORE = "FIELD_BEFORE"
    REPS = "REPS"
    REP_NAME_FIELD = "REP_NAME_FIELD"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    PACKETS = "PACKETS"
    OUTPUT_OVERVIEW = "OUTPUT_OVERVIEW"

    def name(self) -> str:
        return "territorypackets"

    def displayName(self) -> str:
        return self.tr("Territory packets (PDF per rep)")

    def flags(self):
        # print layouts and their fonts are used on the thread that made them: run on the main thread
        return super().flags() | self.FlagNoThreading

    def shortHelpString(self) -> str:
        return self.tr(
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
            "else to the territory whose rep in the table has the rep's name, else to the territory the home "
            "lies in.\n"
            "<b>Road network</b> (optional, with its speed, direction and tolerance settings as in Build "
            "territories): each packet adds the drive from the rep's home to the territory's units (mean and "
            "longest, in minutes by road).\n"
            "<b>Output folder</b>: receives territory_<code>.pdf per territory and overview.pdf.\n\n"
            "Results: PACKETS (the number of territory PDFs) and OUTPUT_OVERVIEW (the overview's path)."
        )

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.INPUT, self.tr("Units layer with an alignment"),
            [QgsProcessing.SourceType.TypeVectorPolygon, QgsProcessing.SourceType.TypeVectorPoint]))
        self.addParameter(QgsProcessingParameterField(
            self.TERRITORY_FIELD, self.tr("Territory field"), parentLayerParameterName=self.INPUT))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.TERRITORIES, self.tr("Territory table (names, reps, colours by code)"),
            [QgsProcessing.SourceType.TypeVector],
            optional=True))
        self.addParameter(QgsProcessingParameterField(
            self.BALANCE_FIELDS, self.tr("Balance fields (workload measures)"), parentLayerParameterName=self.INPUT,
            type=QgsProcessingParameterField.DataType.Numeric, allowMultiple=True, optional=True))
        self.addParameter(QgsProcessingParameterField(
            self.UNIT_NAME_FIELD, self.tr("Unit name field"), parentLayerParameterName=self.INPUT, optional=True))
        self.addParameter(QgsProcessingParameterField(
            self.FIELD_BEFORE, self.tr("Previous territory field (for gains and losses)"),
            parentLayerParameterName=self.INPUT, optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.REPS, self.tr("Reps (home points)"), [QgsProcessing.SourceType.TypeVectorPoint], optional=True))
        self.addParameter(QgsProcessingParameterField(
            self.REP_NAME_FIELD, self.tr("Rep name field"), parentLayerParameterName=self.REPS, optional=True))
        add_travel_parameters(self, network_only=True)
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT_FOLDER, self.tr("Output folder")))
        self.addOutput(QgsProcessingOutputNumber(self.PACKETS, self.tr("Territory packets written")))
        self.addOutput(QgsProcessingOutputFile(self.OUTPUT_OVERVIEW, self.tr("Overview PDF")))

    # -- run -----------------------------------------------------------------------------------
    @removes_partial_outputs
    def processAlgorithm(self, parameters, context, feedback):
        source = self.parameterAsSource(parameters, self.INPUT, context)
        if source is None:
            raise QgsProcessingException(self.invalidSourceError(parameters, self.INPUT))
        territory_field = self.parameterAsString(parameters, self.TERRITORY_FIELD, context)
        balance_fields = parameter_as_fields(self, parameters, self.BALANCE_FIELDS, context)
        field_before = self.parameterAsString(parameters, self.FIELD_BEFORE, context)
        folder = self.parameterAsString(parameters, self.OUTPUT_FOLDER, context)
        os.makedirs(folder, exist_ok=True)

        feedback.setProgressText(self.tr("Reading units…"))
        units = self.read_units(source, balance_fields, context, ScaledFeedback(feedback, 0, 20))
        alignment = read_alignment(source, territory_field, units, feedback)
        codes = alignment.names
        if not codes:
            raise QgsProcessingException(self.tr(
                "No unit has a territory in “{}”. Choose the field that holds the plan, or build territories "
                "first.").format(territory_field))
        labels = alignment.labels
        before_codes: list[str | None] = [None] * units.count
        if field_before:
            before = read_alignment(source, field_before, units, feedback)
            before_codes = [before.names[k] if k >= 0 else None for k in before.labels]
        unit_names = read_unit_names(source, self.parameterAsString(parameters, self.UNIT_NAME_FIELD, context),
                                     units) or [self.tr("Unit {}").format(int(fid)) for fid in units.fids]
        known = read_territory_table(self.parameterAsSource(parameters, self.TERRITORIES, context), territory_field)
        rows = plan_rows(codes, labels, units.adjacency, known)
        homes = self._read_reps(parameters, context, source, units, labels, rows, territory_field, feedback)
        self._drives = self._home_drives(parameters, context, feedback, units, labels, homes, len(codes))
        figures = plan_figures(labels, units.workloads, None, None, territory_count=len(codes))
        measures = measure_columns(units)

        feedback.setProgressText(self.tr("Preparing the maps…"))
        project = QgsProject()
        crs = source.sourceCrs()
        project.setCrs(_map_crs(source, crs, context))
        layers = self._layers(source, units, labels, codes, rows, before_codes, unit_names, figures, measures,
                              homes, crs, feedback)
        for key in ("units", "territories", "workload", "homes", "changes"):
            project.addMapLayer(layers[key], False)
        feedback.setProgress(40)

        feedback.setProgressText(self.tr("Writing {} territory packets…").format(len(codes)))
        settings = QgsLayoutExporter.PdfExportSettings()
        settings.dpi = 150
        settings.rasterizeWholeImage = False
        settings.forceVectorOutput = True
        settings.textRenderFormat = _always_text()
        packet = self._packet_layout(project, layers, measures, bool(field_before))
        project.layoutManager().addLayout(packet)  # the project owns its layouts and deletes them first
        atlas = packet.atlas()
        result, error = QgsLayoutExporter.exportToPdfs(atlas, os.path.join(folder, "territory.pdf"), settings)
        if result != QgsLayoutExporter.ExportResult.Success:
            raise QgsProcessingException(self.tr("The territory packets could not be written: {}").format(error))
        if feedback.isCanceled():
            raise QgsProcessingException(self.tr("Cancelled."))
        feedback.setProgress(85)

        feedback.setProgressText(self.tr("Writing the overview…"))
        overview_path = os.path.join(folder, "overview.pdf")
        overview = self._overview_layout(project, layers, measures, bool(field_before), len(codes))
        project.layoutManager().addLayout(overview)
        result = QgsLayoutExporter(overview).exportToPdf(overview_path, settings)
        project.layoutManager().clear()
        project.removeAllMapLayers()
        if result != QgsLayoutExporter.ExportResult.Success:
            raise QgsProcessingException(self.tr("The overview could not be written to {}.").format(overview_path))
        feedback.setProgress(100)
        feedback.pushInfo(self.tr("{} territory packets and overview.pdf written to {}.").format(len(codes), folder))
        return {self.PACKETS: len(codes), self.OUTPUT_OVERVIEW: overview_path, self.OUTPUT_FOLDER: folder}

    # -- inputs --------------------------------------------------------------------------------
    def _home_drives(self, parameters, context, feedback, units, labels, homes, count) -> dict:
        """{territory: (mean, longest) minutes by road from its rep's home}, with a road network."""
        first = {}
        for k, _name, point in homes:
            if k >= 0:
                first.setdefault(k, point)
        if not first or self.parameterAsSource(parameters, NETWORK, context) is None:
            return {}
        from ..layers.units import points_to_metric

        order = sorted(first)
        positions = points_to_metric([first[k].centroid().asPoint() for k in order], self.parameterAsSource(
            parameters, self.INPUT, context).sourceCrs(), units, context.transformContext())
        minutes = rep_travel_minutes(self, parameters, context, feedback, units, positions)
        drives = {}
        for row, k in enumerate(order):
            time = minutes[row, labels == k]
            time = time[np.isfinite(time)]
            if len(time):
                drives[k] = (float(time.mean()), float(time.max()))
        return drives

    def _read_reps(self, parameters, context, source, units, labels, rows: list[TerritoryRow], territory_field,
                   feedback):
        """Rep homes as (territory index, rep name, point in the units' CRS); fills rows' reps."""
        reps = self.parameterAsSource(parameters, self.REPS, context)
        if reps is None:
            return []
        name_field = self.parameterAsString(parameters, self.REP_NAME_FIELD, context)
        code_index = reps.fields().lookupField(territory_field)
        index_of_code = {row.code: k for k, row in enumerate(rows)}
        index_of_rep = {row.rep: k for k, row in enumerate(rows) if row.rep}
        to_units = QgsCoordinateTransform(reps.sourceCrs(), source.sourceCrs(), context.transformContext())
        to_metric = QgsCoordinateTransform(reps.sourceCrs(), units.metric_crs, context.transformContext())

        homes = []
        for feature in reps.getFeatures():
            geometry = feature.geometry()
            if geometry.isNull() or geometry.isEmpty():
                feedback.pushWarning(self.tr("Rep feature {} has no location; it is left out.").format(feature.id()))
                continue
            point = QgsGeometry(geometry)
            point.transform(to_units)
            name = str(feature[name_field]).strip() if name_field and not is_empty_value(feature[name_field]) \
                else self.tr("Rep {}").format(feature.id())
            k = -1
            if code_index >= 0 and not is_empty_value(feature.attribute(code_index)):
                k = index_of_code.get(str(feature.attribute(code_index)).strip(), -1)
            if k < 0:
                k = index_of_rep.get(name, -1)
            if k < 0:
                metric = QgsGeometry(geometry)
                metric.transform(to_metric)
                i = _unit_at(units, metric.centroid().asPoint())
                k = int(labels[i]) if i >= 0 else -1
            if k >= 0:
                if not rows[k].rep or rows[k].rep != name:
                    rows[k].rep = name
            homes.append((k, name, point))
        return homes

    # -- layers --------------------------------------------------------------------------------
    def _layers(self, source, units, labels, codes, rows, before_codes, unit_names, figures, measures, homes, crs,
                feedback) -> dict:
        is_polygon = units.is_polygon
        name_of = {row.code: row.label for row in rows}
        shown = [m for m in measures if m != "units"]

        # units: code, colour, name, before, gained/lost flags and formatted workloads
        fields = QgsFields()
        for name in ("code", "colour", "unit", "before", "terr_name", "before_name", "change"):
            fields.append(make_field(name, STRING, 120))
        for a, _m in enumerate(shown):
            fields.append(make_field(f"w{a}", STRING, 40))
        unit_layer = QgsMemoryProviderUtils.createMemoryLayer(
            "units", fields, QgsWkbTypes.Type.MultiPolygon if is_polygon else QgsWkbTypes.Type.MultiPoint, crs)
        features, members = [], [[] for _ in codes]
        geometry_of = {}
        order = sorted(range(units.count), key=lambda i: natural_key(unit_names[i]))
        from qgis.core import QgsFeatureRequest

        for feature in source.getFeatures(QgsFeatureRequest().setNoAttributes()):
            geometry_of[feature.id()] = QgsGeometry(feature.geometry())
        for i in order:
            k = int(labels[i])
            code = codes[k] if k >= 0 else None
            before = before_codes[i]
            change = ""
            if before is not None and code is not None and before != code:
                change = "moved"
            geometry = QgsGeometry(geometry_of[int(units.fids[i])])
            geometry.convertToMultiType()
            feature = QgsFeature(fields)
            feature.setGeometry(geometry)
            values = [code, rows[k].colour if k >= 0 else None, unit_names[i], before,
                      name_of.get(code, code), name_of.get(before, before), change]
            values += [report.fmt(units.workloads[i, a], 0) for a in range(len(shown))]
            feature.setAttributes(values)
            features.append(feature)
            if k >= 0:
                members[k].append(geometry)
        unit_layer.dataProvider().addFeatures(features)
        self._style_units(unit_layer)
        # the units that changed territory again, outlines only, drawn above every unit
        changes_layer = QgsMemoryProviderUtils.createMemoryLayer(
            "changes", fields, QgsWkbTypes.Type.MultiPolygon if is_polygon else QgsWkbTypes.Type.MultiPoint, crs)
        changes_layer.dataProvider().addFeatures([f for f in features if f["change"] == "moved"])
        self._style_changes(changes_layer)

        # territories: the atlas coverage, one feature per code with its header figures
        t_fields = QgsFields()
        for name in ("code", "name", "rep", "colour", "file", "units", "gained", "lost", "summary"):
            t_fields.append(make_field(name, STRING, 254))
        for a, _m in enumerate(measures):
            for part in ("sum", "tgt", "dev"):
                t_fields.append(make_field(f"{part}{a}", STRING, 40))
        territory_layer = QgsMemoryProviderUtils.createMemoryLayer(
            "territories", t_fields, QgsWkbTypes.Type.MultiPolygon, crs)
        # point units: a territory is drawn as the hull around its points, a little widened
        extent = source.sourceExtent()
        pad = 0.015 * max(extent.width(), extent.height(), 1e-9)
        gained = {code: 0 for code in codes}
        lost = {code: 0 for code in codes}
        for i in range(units.count):
            k, before = int(labels[i]), before_codes[i]
            if k >= 0 and before is not None and before != codes[k]:
                gained[codes[k]] += 1
                if before in lost:
                    lost[before] += 1
        t_features = []
        used_files: set[str] = set()
        for k in sorted(range(len(rows)), key=lambda t: natural_key(rows[t].label)):  # packets in name order
            row = rows[k]
            geometry = QgsGeometry.unaryUnion(members[k]) if members[k] else QgsGeometry()
            if not is_polygon and not geometry.isNull():
                geometry = geometry.convexHull().buffer(pad, 8)
            if not geometry.isNull():
                geometry.convertToMultiType()
            feature = QgsFeature(t_fields)
            feature.setGeometry(geometry)
            file_name = _file_name(row.code, used_files)
            summary = self.tr("{} units").format(int(figures.unit_count[k]))
            values = [row.code, row.label, row.rep or "", row.colour, file_name, str(int(figures.unit_count[k])),
                      str(gained[row.code]), str(lost[row.code]), summary]
            for a in range(len(measures)):
                values += [report.fmt(figures.sums[k, a], 0), report.fmt(figures.targets[k, a], 0),
                           f"{100 * float(figures.deviation[k, a]):+.1f} %"]
            feature.setAttributes(values)
            t_features.append(feature)
        territory_layer.dataProvider().addFeatures(t_features)
        self._style_territories(territory_layer)

        # workload against target, one row per territory and measure
        w_fields = QgsFields()
        for name in ("code", "measure", "workload", "target", "deviation", "status"):
            w_fields.append(make_field(name, STRING, 80))
        workload_layer = QgsMemoryProviderUtils.createMemoryLayer("workload", w_fields, QgsWkbTypes.Type.NoGeometry,
                                                                  crs)
        w_features = []
        for k, row in enumerate(rows):
            for a, measure in enumerate(measures):
                feature = QgsFeature(w_fields)
                deviation = 100 * float(figures.deviation[k, a])
                feature.setAttributes([row.code, measure, report.fmt(figures.sums[k, a], 0),
                                       report.fmt(figures.targets[k, a], 0), f"{deviation:+.1f} %",
                                       self.tr("over") if deviation > 0.05 else self.tr("under")
                                       if deviation < -0.05 else self.tr("on target")])
                w_features.append(feature)
            drive = self._drives.get(k)
            if drive is not None:  # with a road network: the drive from the rep's home
                feature = QgsFeature(w_fields)
                feature.setAttributes([row.code, self.tr("drive from home (min)"),
                                       self.tr("mean {:.1f}").format(drive[0]),
                                       self.tr("longest {:.1f}").format(drive[1]), "", ""])
                w_features.append(feature)
        workload_layer.dataProvider().addFeatures(w_features)

        # rep homes
        h_fields = QgsFields()
        h_fields.append(make_field("code", STRING, 120))
        h_fields.append(make_field("rep", STRING, 120))
        home_layer = QgsMemoryProviderUtils.createMemoryLayer("homes", h_fields, QgsWkbTypes.Type.Point, crs)
        h_features = []
        for k, name, point in homes:
            feature = QgsFeature(h_fields)
            feature.setGeometry(QgsGeometry.fromPointXY(point.centroid().asPoint()))
            feature.setAttributes([codes[k] if k >= 0 else None, name])
            h_features.append(feature)
        home_layer.dataProvider().addFeatures(h_features)
        self._style_homes(home_layer)
        return {"units": unit_layer, "territories": territory_layer, "workload": workload_layer,
                "homes": home_layer, "changes": changes_layer, "measures": shown}

    @staticmethod
    def _style_units(layer) -> None:
        current = "attribute(@atlas_feature, 'code')"
        if layer.geometryType() == QgsWkbTypes.GeometryType.PolygonGeometry:
            symbol = QgsFillSymbol.createSimple({"color": GREY, "outline_color": "#8a8a8a", "outline_width": "0.12"})
        else:
            symbol = QgsSymbol.defaultSymbol(layer.geometryType())
            symbol.setSize(3.0)
        symbol_layer = symbol.symbolLayer(0)
        # the territory in its colour, neighbours grey; in the overview (no atlas) every territory in colour
        symbol_layer.setDataDefinedProperty(QgsSymbolLayer.Property.PropertyFillColor, QgsProperty.fromExpression(
            f"CASE WHEN @atlas_feature IS NULL OR \"code\" = {current} THEN \"colour\" "
            f"WHEN \"before\" = {current} THEN '#f6d5d1' ELSE '{GREY}' END"))
        layer.renderer().setSymbol(symbol)
        # unit names on the packet's own units and on those it lost
        from qgis.core import QgsPalLayerSettings, QgsTextBufferSettings, QgsTextFormat, QgsVectorLayerSimpleLabeling

        settings = QgsPalLayerSettings()
        settings.isExpression = True
        settings.fieldName = (f"CASE WHEN @atlas_feature IS NOT NULL AND (\"code\" = {current} OR "
                              f"\"before\" = {current}) THEN \"unit\" END")
        text = QgsTextFormat()
        text.setFont(QFont("DejaVu Sans"))
        text.setSize(6.5)
        text.setColor(QColor(40, 40, 40))
        buffer = QgsTextBufferSettings()
        buffer.setEnabled(True)
        buffer.setSize(0.7)
        buffer.setColor(QColor(255, 255, 255))
        text.setBuffer(buffer)
        settings.setFormat(text)
        settings.priority = 3
        layer.setLabeling(QgsVectorLayerSimpleLabeling(settings))
        layer.setLabelsEnabled(True)

    @staticmethod
    def _style_changes(layer) -> None:
        """Units gained by the packet's territory outlined green, units it lost red; others not drawn."""
        current = "attribute(@atlas_feature, 'code')"
        if layer.geometryType() == QgsWkbTypes.GeometryType.PolygonGeometry:
            symbol = QgsFillSymbol.createSimple({"style": "no", "outline_color": GAINED, "outline_width": "1.0"})
        else:
            symbol = QgsSymbol.defaultSymbol(layer.geometryType())
            symbol.setSize(3.4)
            symbol.symbolLayer(0).setColor(QColor(0, 0, 0, 0))  # a ring: outline only
            symbol.symbolLayer(0).setStrokeWidth(0.8)
        symbol.symbolLayer(0).setDataDefinedProperty(QgsSymbolLayer.Property.PropertyStrokeColor,
                                                     QgsProperty.fromExpression(
            f"CASE WHEN \"code\" = {current} THEN '{GAINED}' WHEN \"before\" = {current} THEN '{LOST}' "
            "ELSE '#00000000' END"))
        layer.renderer().setSymbol(symbol)

    @staticmethod
    def _style_territories(layer) -> None:
        if layer.geometryType() == QgsWkbTypes.GeometryType.PolygonGeometry:
            symbol = QgsFillSymbol.createSimple({"style": "no", "outline_color": "#222222", "outline_width": "0.6"})
            symbol.symbolLayer(0).setDataDefinedProperty(QgsSymbolLayer.Property.PropertyStrokeWidth,
                                                         QgsProperty.fromExpression(
                "CASE WHEN \"code\" = attribute(@atlas_feature, 'code') THEN 1.1 ELSE 0.5 END"))
            layer.renderer().setSymbol(symbol)
        else:
            layer.renderer().setSymbol(QgsSymbol.defaultSymbol(layer.geometryType()))
            layer.renderer().symbol().setOpacity(0.0)
        label_territories(layer, "name", "rep", "code", size=8.5)
        labeling = layer.labeling().settings()
        labeling.priority = 10
        # a packet names its neighbours, the overview names every territory; the packet's own name is the title
        labeling.fieldName = (
            "CASE WHEN \"code\" = attribute(@atlas_feature, 'code') THEN NULL ELSE " + labeling.fieldName + " END")
        from qgis.core import QgsVectorLayerSimpleLabeling

        layer.setLabeling(QgsVectorLayerSimpleLabeling(labeling))

    @staticmethod
    def _style_homes(layer) -> None:
        symbol = QgsSymbol.defaultSymbol(layer.geometryType())
        symbol.setColor(QColor(20, 20, 20))
        symbol.setSize(4.2)
        symbol.symbolLayer(0).setShape(QgsSimpleMarkerSymbolLayerBase.Shape.Star)
        symbol.symbolLayer(0).setStrokeColor(QColor(255, 255, 255))
        layer.renderer().setSymbol(symbol)
        from qgis.core import QgsPalLayerSettings, QgsTextBufferSettings, QgsTextFormat, QgsVectorLayerSimpleLabeling

        settings = QgsPalLayerSettings()
        settings.isExpression = True
        settings.fieldName = "CASE WHEN @atlas_feature IS NULL THEN NULL ELSE \"rep\" END"  # overview: in the label
        settings.placement = QgsPalLayerSettings.Placement.OrderedPositionsAroundPoint
        settings.dist = 1.5
        text = QgsTextFormat()
        font = QFont("DejaVu Sans")
        font.setItalic(True)
        text.setFont(font)
        text.setSize(7.5)
        buffer = QgsTextBufferSettings()
        buffer.setEnabled(True)
        buffer.setSize(0.8)
        buffer.setColor(QColor(255, 255, 255))
        text.setBuffer(buffer)
        settings.setFormat(text)
        settings.priority = 10
        layer.setLabeling(QgsVectorLayerSimpleLabeling(settings))
        layer.setLabelsEnabled(True)

    # -- layouts -------------------------------------------------------------------------------
    def _packet_layout(self, project, layers, measures, with_changes: bool) -> QgsPrintLayout:
        layout = QgsPrintLayout(project)
        layout.setName("territory packets")
        layout.initializeDefaults()  # one A4 page
        page = layout.pageCollection().page(0)
        page.setPageSize("A4", page.Portrait)
        territories = layers["territories"]

        bar = QgsLayoutItemShape(layout)
        bar.setShapeType(QgsLayoutItemShape.Shape.Rectangle)
        bar_symbol = QgsFillSymbol.createSimple({"color": "#cccccc", "outline_style": "no"})
        bar_symbol.symbolLayer(0).setDataDefinedProperty(
            QgsSymbolLayer.Property.PropertyFillColor,
            QgsProperty.fromExpression("attribute(@atlas_feature, 'colour')"))
        bar.setSymbol(bar_symbol)
        layout.addLayoutItem(bar)
        _place(bar, 10, 10, 4, 20)

        _label(layout, "[% attribute(@atlas_feature, 'name') %]", 17, 9, 170, 10, 18, bold=True)
        rep_text = self.tr("Rep")
        code_text = self.tr("territory code")
        units_text = self.tr("units")
        unit_text = self.tr("unit")
        _label(layout, (
            f"{rep_text}: [% coalesce(nullif(attribute(@atlas_feature, 'rep'), ''), '–') %]   ·   "
            f"{code_text} [% attribute(@atlas_feature, 'code') %]   ·   "
            f"[% attribute(@atlas_feature, 'units') %] "
            f"[% if(attribute(@atlas_feature, 'units') = '1', '{unit_text}', '{units_text}') %]"),
            17, 20, 183, 7, 10.5, colour=MUTED)
        _label(layout, self.tr("Territory packet"), 150, 9, 50, 6, 8.5, colour=MUTED, align_right=True)

        map_item = QgsLayoutItemMap(layout)
        map_item.setLayers([layers["homes"], territories, layers["changes"], layers["units"]])
        map_item.setCrs(project.crs())
        map_item.setFrameEnabled(True)
        map_item.setFrameStrokeColor(QColor(170, 170, 170))
        layout.addLayoutItem(map_item)
        _place_map(map_item, _extent_in(territories, project), 10, 32, 190, 125)
        map_item.setAtlasDriven(True)
        map_item.setAtlasScalingMode(QgsLayoutItemMap.AtlasScalingMode.Auto)
        map_item.setAtlasMargin(0.08)

        legend = self.tr("Neighbouring territories in grey. Stars: rep homes.")
        if with_changes:
            legend += " " + self.tr("Outlined green: units gained; outlined red (pink fill): units lost.")
        _label(layout, legend, 10, 158, 190, 6, 7.5, colour=MUTED)

        y = 167
        _label(layout, self.tr("Workload against target"), 10, y, 90, 6, 11, bold=True)
        workload = _table(layout, layers["workload"], [
            ("measure", self.tr("Measure")), ("workload", self.tr("Workload")), ("target", self.tr("Target")),
            ("deviation", self.tr("Deviation"))], "\"code\" = attribute(@atlas_feature, 'code')", 10, y + 7, 92, 30,
            numeric={"workload", "target", "deviation"})
        workload.setResizeMode(QgsLayoutMultiFrame.ResizeMode.UseExistingFrames)

        shown = layers["measures"]
        unit_columns = [("unit", self.tr("Unit"))] + [(f"w{a}", m) for a, m in enumerate(shown)]
        if with_changes:
            _label(layout, self.tr("Units gained"), 10, 205, 92, 6, 11, bold=True, colour=QColor(GAINED))
            _table(layout, layers["units"], [("unit", self.tr("Unit")), ("before_name", self.tr("From"))]
                   + [(f"w{a}", m) for a, m in enumerate(shown)],
                   "\"change\" = 'moved' AND \"code\" = attribute(@atlas_feature, 'code')", 10, 212, 92, 32,
                   numeric={f"w{a}" for a in range(len(shown))}, empty=self.tr("none"))
            _label(layout, self.tr("Units lost"), 10, 247, 92, 6, 11, bold=True, colour=QColor(LOST))
            _table(layout, layers["units"], [("unit", self.tr("Unit")), ("terr_name", self.tr("To"))]
                   + [(f"w{a}", m) for a, m in enumerate(shown)],
                   "\"change\" = 'moved' AND \"before\" = attribute(@atlas_feature, 'code')", 10, 254, 92, 32,
                   numeric={f"w{a}" for a in range(len(shown))}, empty=self.tr("none"))

        _label(layout, self.tr("Units in the territory"), 108, y, 92, 6, 11, bold=True)
        units_table = _table(layout, layers["units"], unit_columns, "\"code\" = attribute(@atlas_feature, 'code')",
                             108, y + 7, 92, 287 - y - 7, numeric={f"w{a}" for a in range(len(shown))})
        units_table.setResizeMode(QgsLayoutMultiFrame.ResizeMode.ExtendToNextPage)

        atlas = layout.atlas()
        atlas.setCoverageLayer(territories)
        atlas.setEnabled(True)
        atlas.setPageNameExpression("\"name\"")
        atlas.setFilenameExpression("'territory_' || \"file\"")
        return layout

    def _overview_layout(self, project, layers, measures, with_changes: bool, count: int) -> QgsPrintLayout:
        layout = QgsPrintLayout(project)
        layout.setName("overview")
        layout.initializeDefaults()
        page = layout.pageCollection().page(0)
        page.setPageSize("A4", page.Landscape)
        territories = layers["territories"]
        _label(layout, self.tr("Territory plan: overview"), 10, 8, 200, 10, 18, bold=True)
        _label(layout, self.tr("{} territories").format(count), 10, 19, 200, 6, 10.5, colour=MUTED)
        map_item = QgsLayoutItemMap(layout)
        map_item.setLayers([layers["homes"], territories, layers["changes"], layers["units"]])
        map_item.setCrs(project.crs())
        map_item.setFrameEnabled(True)
        map_item.setFrameStrokeColor(QColor(170, 170, 170))
        layout.addLayoutItem(map_item)
        extent = _extent_in(territories, project)
        extent.scale(1.04)
        _place_map(map_item, extent, 10, 27, 130, 175)

        columns = [("name", self.tr("Territory")), ("rep", self.tr("Rep")), ("units", self.tr("Units"))]
        for a, measure in enumerate(measures):
            if measure != "units":
                columns.append((f"sum{a}", measure))
            columns.append((f"dev{a}", self.tr("± target")))
        if with_changes:
            columns += [("gained", self.tr("Gained")), ("lost", self.tr("Lost"))]
        numeric = {c for c, _ in columns if c not in ("name", "rep")}
        table = _table(layout, territories, columns, None, 145, 27, 142, 175, numeric=numeric,
                       shares=[0.15, 0.12, 0.06])
        table.setResizeMode(QgsLayoutMultiFrame.ResizeMode.ExtendToNextPage)
        return layout


# --- layout helpers ---------------------------------------------------------------------------


def _place(item, x: float, y: float, width: float, height: float) -> None:
    item.attemptMove(QgsLayoutPoint(x, y, QgsUnitTypes.LayoutUnit.LayoutMillimeters))
    item.attemptResize(QgsLayoutSize(width, height, QgsUnitTypes.LayoutUnit.LayoutMillimeters))


def _map_crs(source, crs, context):
    """The packets' map CRS: the layer's own when projected; for longitude/latitude layers the UTM
    zone of the layer's centre, so territories are not stretched."""
    from qgis.core import QgsCoordinateReferenceSystem

    if not crs.isGeographic():
        return crs
    wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")
    centre = QgsCoordinateTransform(crs, wgs84, context.transformContext()).transform(
        source.sourceExtent().center())
    zone = min(max(int((centre.x() + 180.0) // 6.0) + 1, 1), 60)
    utm = QgsCoordinateReferenceSystem(f"EPSG:{32600 + zone if centre.y() >= 0 else 32700 + zone}")
    return utm if utm.isValid() else crs


def _extent_in(layer, project):
    """The layer's extent in the project's (map) CRS."""
    transform = QgsCoordinateTransform(layer.crs(), project.crs(), project.transformContext())
    return transform.transformBoundingBox(layer.extent())


def _place_map(item, extent, x: float, y: float, width: float, height: float) -> None:
    """Place a map item and show ``extent`` in it at that size. A new map item has no extent, and
    setting one changes its height, so: size, set the extent, size again, then fit the extent."""
    _place(item, x, y, width, height)
    item.setExtent(extent)
    _place(item, x, y, width, height)
    item.zoomToExtent(extent)


def _label(layout, text: str, x, y, width, height, size: float, bold: bool = False, colour: QColor = INK,
           align_right: bool = False) -> QgsLayoutItemLabel:
    label = QgsLayoutItemLabel(layout)
    label.setText(text)
    font = QFont("DejaVu Sans")
    font.setBold(bold)
    font.setPointSizeF(size)
    if hasattr(label, "setTextFormat"):  # QGIS >= 3.24; setFont and setFontColor are deprecated there
        from qgis.core import QgsTextFormat

        text_format = QgsTextFormat()
        text_format.setFont(font)
        text_format.setSize(size)
        text_format.setSizeUnit(QgsUnitTypes.RenderUnit.RenderPoints)
        text_format.setColor(colour)
        label.setTextFormat(text_format)
    else:
        label.setFont(font)
        label.setFontColor(colour)
    label.setVAlign(Qt.AlignmentFlag.AlignVCenter)
    if align_right:
        label.setHAlign(Qt.AlignmentFlag.AlignRight)
    layout.addLayoutItem(label)
    _place(label, x, y, width, height)
    return label


def _table(layout, layer, columns, expression: str | None, x, y, width, height, numeric=(),
           empty: str = "", shares: list[float] | None = None) -> QgsLayoutItemAttributeTable:
    """An attribute table of ``layer`` (in its feature order) with ``columns`` (field, heading),
    features filtered by ``expression``, in one frame at the given place (mm)."""
    from qgis.core import QgsLayoutFrame

    table = QgsLayoutItemAttributeTable(layout)
    table.setVectorLayer(layer)
    table.setMaximumNumberOfFeatures(100000)
    table.setDisplayOnlyVisibleFeatures(False)
    if expression:
        table.setFilterFeatures(True)
        table.setFeatureFilter(expression)
    table_columns = []
    # column widths fill the frame: the first columns get ``shares`` of it, the others share the rest
    shares = list(shares or [0.34 if len(columns) > 2 else 0.5])[:len(columns)]
    rest = (1.0 - sum(shares)) / max(len(columns) - len(shares), 1)
    for n, (field, heading) in enumerate(columns):
        column = QgsLayoutTableColumn(heading)
        column.setAttribute(field)
        share = shares[n] if n < len(shares) else rest
        column.setWidth(max(width * share - 2.0, 6.0))  # cell margins: 1 mm a side
        if field in numeric:
            column.setHAlignment(Qt.AlignmentFlag.AlignRight)
        table_columns.append(column)
    table.setColumns(table_columns)
    # QGIS 3.22 measures rows with the new columns against contents fetched for the old ones
    # (out-of-bounds writes) until the contents are refreshed: refresh before anything recalculates.
    table.refreshAttributes()
    from qgis.core import QgsTextFormat

    for bold, setter in ((True, table.setHeaderTextFormat), (False, table.setContentTextFormat)):
        font = QFont("DejaVu Sans")
        font.setBold(bold)
        text_format = QgsTextFormat()
        text_format.setFont(font)
        text_format.setSize(7.5)
        text_format.setSizeUnit(QgsUnitTypes.RenderUnit.RenderPoints)
        text_format.setColor(INK)
        setter(text_format)
    table.setCellMargin(1.0)
    table.setGridStrokeWidth(0.15)
    table.setGridColor(QColor(190, 190, 190))
    table.setHorizontalGrid(True)
    table.setVerticalGrid(False)
    table.setHeaderHAlignment(QgsLayoutItemAttributeTable.HeaderHAlignment.FollowColumn)
    if empty:
        table.setEmptyTableBehavior(QgsLayoutItemAttributeTable.EmptyTableMode.ShowMessage)
        table.setEmptyTableMessage(empty)
    layout.addMultiFrame(table)
    frame = QgsLayoutFrame(layout, table)
    _place(frame, x, y, width, height)
    table.addFrame(frame)
    return table


def _always_text():
    """Text stays text in the PDFs (searchable, and readable by pdftotext)."""
    from qgis.core import QgsRenderContext

    scope = getattr(QgsRenderContext, "TextFormatAlwaysText", None)
    if scope is None:
        from qgis.core import Qgis

        scope = Qgis.TextRenderFormat.AlwaysText
    return scope


def _unit_at(units, point) -> int:
    """The unit a point (in the units' metric CRS) lies in; the nearest unit when it lies in none."""
    x, y = point.x() * units.unit_factor, point.y() * units.unit_factor
    if units.is_polygon:
        from qgis.core import QgsPointXY

        inside = QgsGeometry.fromPointXY(QgsPointXY(x, y))
        for i, geometry in enumerate(units.geometries):
            if geometry.boundingBox().contains(inside.boundingBox()) and geometry.contains(inside):
                return i
    if units.count == 0:
        return -1
    return int(np.argmin(np.hypot(units.positions[:, 0] - x, units.positions[:, 1] - y)))


def _file_name(code: str, used: set[str]) -> str:
    """A file-system-safe, unique name part for a territory code."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", code).strip("._") or "territory"
    name, number = base, 2
    while name.lower() in used:
        name = f"{base}_{number}"
        number += 1
    used.add(name.lower())
    return name
