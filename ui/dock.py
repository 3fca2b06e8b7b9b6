"""The Territory Planner dock panel: a view over the assignment service.

The dock shows the plan's setup (layer, territory field, measures, tolerance, rep and lock
fields), the territory table, the painting tools and the suggestions. Every change to the plan
goes through :class:`~.assignment_service.AssignmentService`; the table is a model over its
figures; background work runs as QgsTasks (see :mod:`.tasks`).
"""

from __future__ import annotations

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsCoordinateTransform,
    QgsExpression,
    QgsFieldProxyModel,
    QgsProject,
    QgsVectorLayer,
)
from qgis.gui import QgsCheckableComboBox, QgsDockWidget, QgsFieldComboBox, QgsMapLayerComboBox
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QRectF, QSortFilterProxyModel, Qt, QTimer
from qgis.PyQt.QtGui import QBrush, QColor

try:  # Qt6 (QGIS 4): QAction lives in QtGui
    from qgis.PyQt.QtGui import QAction
except ImportError:  # Qt5
    from qgis.PyQt.QtWidgets import QAction

from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QSpinBox,
    QSplitter,
    QStyledItemDelegate,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..compat import line_layers, polygon_and_point_layers, vector_layers
from ..core.engine import DEFAULT_TIME_LIMIT
from ..i18n import tr
from ..layers.style import has_own_style
from ..layers.values import default_names, likely_name_field, likely_workloads, measure_candidates
from ..resources import icon
from .assignment_service import AssignmentService, territory_field_problem
from .change_log_dialog import ChangeLogDialog
from .map_tools import EyedropperTool, LassoTool, PaintTool
from .preview import PreviewHighlight
from .preview_panel import PreviewPanel
from .scenario_dialog import ScenarioDialog
from .scenarios import Scenarios
from .settings import PlanSettings, Preferences
from .tasks import EngineTask, UnitsTask, engine_job
from .territory_list_model import (
    DEVIATION_ROLE,
    OUT_OF_TOLERANCE_ROLE,
    SORT_ROLE,
    TERRITORY_ROLE,
    TOLERANCE_ROLE,
    TerritoryListModel,
)

SUGGESTION_ROLE = Qt.ItemDataRole.UserRole + 10


class DeviationBarDelegate(QStyledItemDelegate):
    """Draws a deviation as a bar from the cell's centre: green inside the tolerance, red outside.
    The full half-width of the cell stands for twice the tolerance."""

    def paint(self, painter, option, index):
        deviation = index.data(DEVIATION_ROLE)
        if deviation is None:
            return super().paint(painter, option, index)
        tolerance = index.data(TOLERANCE_ROLE) or 0.05
        outside = bool(index.data(OUT_OF_TOLERANCE_ROLE))
        rect = option.rect.adjusted(2, 3, -2, -3)
        centre = rect.center().x()
        share = max(-1.0, min(1.0, float(deviation) / (2.0 * max(tolerance, 1e-6))))
        width = share * rect.width() / 2.0
        painter.save()
        colour = QColor(214, 60, 50, 170) if outside else QColor(70, 160, 80, 150)
        bar = QRectF(min(centre, centre + width), rect.top(), abs(width), rect.height())
        painter.fillRect(bar, QBrush(colour))
        painter.setPen(QColor(120, 120, 120))
        painter.drawLine(centre, rect.top(), centre, rect.bottom())
        painter.restore()
        super().paint(painter, option, index)


class TerritoryDock(QgsDockWidget):
    """Panel for painting units into territories, with live balance, locks and rebalancing."""

    def __init__(self, iface, parent=None, service: AssignmentService | None = None):
        super().__init__(tr("Territory Planner"), parent)
        self.iface = iface
        self.canvas = iface.mapCanvas()
        self.project = QgsProject.instance()
        self.setObjectName("TerritoryPlannerDock")
        self.preferences = Preferences()
        #: the plan being edited; plugin.py creates it, the panel only shows and drives it
        self.service = service if service is not None else AssignmentService(self.project, self)
        self.scenarios = Scenarios(self.service)
        #: asks the user a yes/no question; tests replace it
        self.confirm = self._confirm
        self._style_answers: dict = {}
        self._scenario_dialog = None
        self._log_dialog = None
        self._packets_dialog = None
        self.model = TerritoryListModel(self.service, self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.proxy.setDynamicSortFilter(True)
        #: how tasks are started; tests replace it to run tasks synchronously
        self.run_task = self._run_in_task_manager
        self._tasks: list = []
        self._reading_neighbours: set[str] = set()
        self._updating = False
        self._selecting = False
        self._suggestions_timer = QTimer(self)
        self._suggestions_timer.setSingleShot(True)
        self._suggestions_timer.setInterval(150)
        self._suggestions_timer.timeout.connect(self.refresh_suggestions)

        self._build_ui()
        self._build_tools()
        self._connect()
        self.restore_from_project()

    # -- layout ----------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        body = QWidget(self)
        outer = QVBoxLayout(body)
        outer.setContentsMargins(4, 4, 4, 4)

        form = QFormLayout()
        self.layer_combo = QgsMapLayerComboBox(body)
        self.layer_combo.setFilters(polygon_and_point_layers())
        self.layer_combo.setAllowEmptyLayer(True)
        self.layer_combo.setLayer(None)
        self.layer_combo.setObjectName("territoryLayerCombo")
        form.addRow(tr("Units layer"), self.layer_combo)

        field_row = QHBoxLayout()
        self.field_combo = QgsFieldComboBox(body)
        kinds = QgsFieldProxyModel.Filter
        self.field_combo.setFilters(kinds.String | kinds.Int | kinds.LongLong)
        self.field_combo.setAllowEmptyFieldName(True)
        self.field_combo.setObjectName("territoryFieldCombo")
        self.new_field_button = QToolButton(body)
        self.new_field_button.setIcon(QgsApplication.getThemeIcon("/mActionNewAttribute.svg"))
        self.new_field_button.setToolTip(
            tr("Create a new territory field on the layer (saved with the layer's edits)"))
        field_row.addWidget(self.field_combo, 1)
        field_row.addWidget(self.new_field_button)
        form.addRow(tr("Territory field"), field_row)

        scenario_row = QHBoxLayout()
        self.scenario_combo = QComboBox(body)
        self.scenario_combo.setObjectName("territoryScenarioCombo")
        self.scenario_combo.setToolTip(tr("Scenarios: alternative alignments, each a territory field of the "
                                               "layer; choose one to work on it"))
        self.new_scenario_button = QToolButton(body)
        self.new_scenario_button.setObjectName("territoryNewScenario")
        self.new_scenario_button.setIcon(QgsApplication.getThemeIcon("/mActionDuplicateLayer.svg"))
        self.new_scenario_button.setToolTip(tr("New scenario: a copy of the current alignment in a new field"))
        self.scenario_menu_button = QToolButton(body)
        self.scenario_menu_button.setObjectName("territoryScenarioMenu")
        self.scenario_menu_button.setText("…")
        self.scenario_menu_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.scenario_menu_button)
        self.compare_scenarios_action = menu.addAction(tr("Compare scenarios…"), self.compare_scenarios)
        self.promote_scenario_action = menu.addAction(tr("Make this scenario the baseline"),
                                                      self.promote_scenario)
        self.filter_scenario_action = menu.addAction(tr("Segment filter of this scenario…"),
                                                     lambda: self.set_scenario_filter())
        self.rename_scenario_action = menu.addAction(tr("Rename scenario…"), lambda: self.rename_scenario())
        self.delete_scenario_action = menu.addAction(tr("Delete scenario…"), lambda: self.delete_scenario())
        self.scenario_menu_button.setMenu(menu)
        scenario_row.addWidget(self.scenario_combo, 1)
        scenario_row.addWidget(self.new_scenario_button)
        scenario_row.addWidget(self.scenario_menu_button)
        form.addRow(tr("Scenario"), scenario_row)

        self.measures_combo = QgsCheckableComboBox(body)
        self.measures_combo.setDefaultText(tr("unit count"))
        self.measures_combo.setObjectName("territoryMeasures")
        self.measures_combo.setToolTip(tr("Numeric fields to balance; none: balance the number of units"))
        form.addRow(tr("Balance"), self.measures_combo)

        self.tolerance_spin = QDoubleSpinBox(body)
        self.tolerance_spin.setRange(0.0, 99.0)
        self.tolerance_spin.setDecimals(1)
        self.tolerance_spin.setSingleStep(0.5)
        self.tolerance_spin.setSuffix(" %")
        self.tolerance_spin.setValue(self.preferences.default_tolerance)
        form.addRow(tr("Tolerance"), self.tolerance_spin)

        # TOLERANCES: a tolerance of its own per balance field (empty: the plan's tolerance above)
        self.tolerances_table = QTableWidget(0, 2, body)
        self.tolerances_table.setObjectName("territoryTolerances")
        self.tolerances_table.setHorizontalHeaderLabels([tr("Balance field"), tr("Tolerance %")])
        self.tolerances_table.verticalHeader().setVisible(False)
        self.tolerances_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.tolerances_table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.tolerances_table.setToolTip(tr(
            "A tolerance of its own per balance field (e.g. visits 5 %, sales 10 %): Build, Rebalance and the "
            "table judge each field by it. Empty: the tolerance above."))
        self.tolerances_table.setVisible(False)
        self.tolerances_label = QLabel(tr("Per field"), body)
        self.tolerances_label.setVisible(False)
        form.addRow(self.tolerances_label, self.tolerances_table)

        self.rep_combo = QgsFieldComboBox(body)
        self.rep_combo.setAllowEmptyFieldName(True)
        self.rep_combo.setToolTip(tr("Optional field naming each unit's rep"))
        form.addRow(tr("Rep field"), self.rep_combo)

        self.lock_field_combo = QgsFieldComboBox(body)
        self.lock_field_combo.setAllowEmptyFieldName(True)
        self.lock_field_combo.setToolTip(tr("Optional field: units with a non-empty, non-zero value are locked"))
        form.addRow(tr("Lock field"), self.lock_field_combo)

        self.table_combo = QgsMapLayerComboBox(body)
        self.table_combo.setObjectName("territoryTableCombo")
        self.table_combo.setFilters(vector_layers())
        self.table_combo.setAllowEmptyLayer(True)
        self.table_combo.setLayer(None)
        self.table_combo.setToolTip(tr("Optional territory table (the Territories output of Build or Rebalance): "
                                            "names, reps, colours and locks by territory code; renaming then "
                                            "changes the name, never the code"))
        form.addRow(tr("Territory table"), self.table_combo)

        self.network_combo = QgsMapLayerComboBox(body)
        self.network_combo.setObjectName("territoryNetworkCombo")
        self.network_combo.setFilters(line_layers())
        self.network_combo.setAllowEmptyLayer(True)
        self.network_combo.setLayer(None)
        self.network_combo.setToolTip(tr("Optional road network (a line layer, 50 km/h unless Build is given "
                                              "speeds): the panel shows the active territory's travel times"))
        form.addRow(tr("Road network"), self.network_combo)

        self.unit_name_combo = QgsFieldComboBox(body)
        self.unit_name_combo.setObjectName("territoryUnitNameField")
        self.unit_name_combo.setAllowEmptyFieldName(True)
        self.unit_name_combo.setToolTip(tr("Optional field naming each unit (county, ZIP, account) in "
                                                "suggestions, previews and the change log; feature ids otherwise"))
        form.addRow(tr("Unit names"), self.unit_name_combo)
        outer.addLayout(form)

        self.toolbar = QToolBar(body)
        self.toolbar.setIconSize(self.toolbar.iconSize() * 0.8)
        outer.addWidget(self.toolbar)
        self.territory_toolbar = QToolBar(body)
        self.territory_toolbar.setIconSize(self.toolbar.iconSize())
        outer.addWidget(self.territory_toolbar)

        splitter = QSplitter(Qt.Orientation.Vertical, body)
        self.table = QTableView(splitter)
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        # sized once per reset, not on every change: painting must not make the view measure every cell
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        # columns are sized from the rows in view and 200 others, not from every territory's row
        self.table.horizontalHeader().setResizeContentsPrecision(200)
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        self.bar_delegate = DeviationBarDelegate(self.table)
        self.table.setObjectName("territoryTable")
        self.preview_panel = PreviewPanel(splitter)

        suggestions_box = QWidget(splitter)
        box_layout = QVBoxLayout(suggestions_box)
        box_layout.setContentsMargins(0, 0, 0, 0)
        self.suggestions_label = QLabel(tr("Suggestions"), suggestions_box)
        self.suggestions_list = QListWidget(suggestions_box)
        self.suggestions_list.setToolTip(tr("Single-unit moves that improve the balance of the active "
                                                 "territory; click one to preview it, then apply or discard it"))
        box_layout.addWidget(self.suggestions_label)
        box_layout.addWidget(self.suggestions_list)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setStretchFactor(2, 1)
        outer.addWidget(splitter, 1)

        self.highlight = PreviewHighlight(self.canvas)
        self.pieces_highlight = PreviewHighlight(self.canvas, QColor(220, 0, 0), dashed=True)
        self.status_label = QLabel(body)
        self.status_label.setWordWrap(True)
        outer.addWidget(self.status_label)
        self.travel_label = QLabel(body)
        self.travel_label.setObjectName("territoryTravel")
        self.travel_label.setWordWrap(True)
        self.travel_label.setVisible(False)
        outer.addWidget(self.travel_label)
        self.setWidget(body)

    def _action(self, toolbar: QToolBar, icon_, text: str, slot=None, checkable: bool = False,
                name: str = "") -> QAction:
        action = QAction(icon_, text, self)
        action.setObjectName(name)
        action.setToolTip(text)
        action.setCheckable(checkable)
        if slot is not None:
            (action.toggled if checkable else action.triggered).connect(slot)
        toolbar.addAction(action)
        return action

    def _build_tools(self) -> None:
        self.paint_tool = PaintTool(self.canvas)
        self.lasso_tool = LassoTool(self.canvas)
        self.eyedropper_tool = EyedropperTool(self.canvas)
        theme = QgsApplication.getThemeIcon
        bar = self.toolbar
        self.paint_action = self._action(bar, icon("paint.svg"), tr("Paint: click a unit or drag a rectangle"),
                                         checkable=True, name="paint")
        self.lasso_action = self._action(bar, icon("lasso.svg"), tr("Lasso: draw around units"),
                                         checkable=True, name="lasso")
        self.eyedropper_action = self._action(bar, icon("eyedropper.svg"),
                                              tr("Eyedropper: click a unit to make its territory active"),
                                              checkable=True, name="eyedropper")
        for tool, action in ((self.paint_tool, self.paint_action), (self.lasso_tool, self.lasso_action),
                             (self.eyedropper_tool, self.eyedropper_action)):
            tool.setAction(action)
            action.triggered.connect(lambda checked, t=tool: self._use_tool(t, checked))
        self.erase_action = self._action(bar, icon("eraser.svg"),
                                         tr("Unassign: painting removes units from their territory"),
                                         checkable=True, name="erase")
        self.assign_selected_action = self._action(bar, theme("/mActionSelectRectangle.svg"),
                                                   tr("Assign the selected features to the active territory"),
                                                   self.assign_selected, name="assign_selected")
        bar.addSeparator()
        self.lock_units_action = self._action(bar, theme("/locked.svg"), tr("Lock the selected units"),
                                              lambda: self.lock_selected_units(True), name="lock_units")
        self.unlock_units_action = self._action(bar, theme("/unlocked.svg"), tr("Unlock the selected units"),
                                                lambda: self.lock_selected_units(False), name="unlock_units")
        bar.addSeparator()
        self.undo_action = self._action(bar, theme("/mActionUndo.svg"), tr("Undo"), self.undo, name="undo")
        self.redo_action = self._action(bar, theme("/mActionRedo.svg"), tr("Redo"), self.redo, name="redo")

        tbar = self.territory_toolbar
        self.new_action = self._action(tbar, theme("/symbologyAdd.svg"), tr("New territory"),
                                       lambda: self.new_territory(), name="new")
        self.rename_action = self._action(tbar, theme("/mActionEditTable.svg"), tr("Rename the active territory"),
                                          lambda: self.rename_territory(), name="rename")
        self.merge_action = self._action(tbar, icon("merge.svg"), tr("Merge the active territory into another"),
                                         lambda: self.merge_territory(), name="merge")
        self.delete_action = self._action(tbar, theme("/symbologyRemove.svg"),
                                          tr("Delete the active territory (its units become unassigned)"),
                                          lambda: self.delete_territory(), name="delete")
        self.details_action = self._action(tbar, theme("/mActionOpenTable.svg"),
                                           tr("Show every figure in the table (sums and deviations per measure)"),
                                           lambda _checked: self._apply_compact(), checkable=True,
                                           name="territoryDetails")
        self.packets_action = self._action(tbar, theme("/mActionSaveAsPDF.svg"),
                                           tr("Territory packets: one PDF per territory for its rep, and an "
                                                   "overview"), lambda: self.make_packets(), name="territoryPackets")
        self.log_action = self._action(tbar, theme("/mIconHistory.svg"),
                                       tr("Change log of the active territory (saved changes)"),
                                       lambda: self.show_change_log(), name="territoryChangeLog")
        tbar.addSeparator()
        self.count_spin = QSpinBox(self)
        self.count_spin.setRange(1, 10000)
        self.count_spin.setValue(10)
        self.count_spin.setToolTip(tr("Number of territories to build"))
        tbar.addWidget(self.count_spin)
        self.time_limit_spin = QDoubleSpinBox(self)
        self.time_limit_spin.setObjectName("territoryTimeLimit")
        self.time_limit_spin.setRange(0.0, 86400.0)
        self.time_limit_spin.setDecimals(0)
        self.time_limit_spin.setSingleStep(10.0)
        self.time_limit_spin.setSuffix(tr(" s"))
        self.time_limit_spin.setValue(DEFAULT_TIME_LIMIT)
        self.time_limit_spin.setToolTip(tr("Time limit: Build and Rebalance search at most this many seconds "
                                                "while some territory is out of tolerance"))
        tbar.addWidget(self.time_limit_spin)
        self.build_action = self._action(tbar, icon("build.svg"), tr("Build territories from scratch"),
                                         self.build, name="territoryBuild")
        self.rebalance_action = self._action(tbar, icon("rebalance.svg"),
                                             tr("Rebalance: improve the current plan, moving few units"),
                                             self.rebalance, name="territoryRebalance")
        self.cap_spin = QDoubleSpinBox(self)
        self.cap_spin.setObjectName("territoryRebalanceCap")
        self.cap_spin.setRange(0.0, 100.0)
        self.cap_spin.setDecimals(1)
        self.cap_spin.setSuffix(" %")
        self.cap_spin.setSpecialValueText(tr("no cap"))
        self.cap_spin.setToolTip(tr("Rebalance changes at most this share of the units (0: no cap)"))
        tbar.addWidget(self.cap_spin)

    def _connect(self) -> None:
        self.layer_combo.layerChanged.connect(self._on_layer_chosen)
        self.field_combo.fieldChanged.connect(lambda _name: self._apply_setup())
        self.measures_combo.checkedItemsChanged.connect(lambda _items: self._apply_setup())
        self.rep_combo.fieldChanged.connect(lambda _name: self._apply_setup())
        self.lock_field_combo.fieldChanged.connect(lambda _name: self._apply_setup())
        self.unit_name_combo.fieldChanged.connect(lambda _name: self._apply_setup())
        self.table_combo.layerChanged.connect(lambda _layer: self._apply_setup())
        self.network_combo.layerChanged.connect(lambda _layer: self._apply_setup())
        self.tolerance_spin.valueChanged.connect(self._on_tolerance)
        self.tolerances_table.itemChanged.connect(self._on_measure_tolerance)
        self.time_limit_spin.valueChanged.connect(self._on_time_limit)
        self.new_field_button.clicked.connect(lambda: self.create_field())
        self.scenario_combo.activated.connect(lambda _row: self.switch_scenario(self.scenario_combo.currentText()))
        self.new_scenario_button.clicked.connect(lambda: self.new_scenario())

        self.table.selectionModel().currentRowChanged.connect(self._on_row_chosen)
        self.table.doubleClicked.connect(self._on_row_double_clicked)
        self.proxy.modelReset.connect(self._after_model_reset)
        self.suggestions_list.itemClicked.connect(self._on_suggestion_clicked)

        for tool in (self.paint_tool, self.lasso_tool):
            tool.unitsPicked.connect(self.paint)
        self.eyedropper_tool.unitsPicked.connect(self.pick_territory)

        service = self.service
        service.message.connect(self._show_message)
        service.activeChanged.connect(self._on_active_changed)
        service.planChanged.connect(self._on_plan_changed)
        service.territoriesChanged.connect(self._on_territories_changed)
        service.figuresChanged.connect(lambda _names: self._schedule_suggestions())
        service.unitsReady.connect(self._on_units_ready)
        service.previewChanged.connect(self._on_preview_changed)
        self.preview_panel.apply_button.clicked.connect(self.apply_preview)
        self.preview_panel.discard_button.clicked.connect(self.discard_preview)
        self.preview_panel.select_button.clicked.connect(lambda: self.select_units(self.service.preview_fids()))
        self.suggestions_list.itemDoubleClicked.connect(self._on_suggestion_double_clicked)

        self.project.readProject.connect(self._on_project_read)
        self.project.cleared.connect(self._on_project_cleared)
        self._update_actions()

    # -- setup -----------------------------------------------------------------------------------
    def current_layer(self) -> QgsVectorLayer | None:
        layer = self.layer_combo.currentLayer()
        return layer if isinstance(layer, QgsVectorLayer) else None

    def _on_layer_chosen(self, layer) -> None:
        if self._updating:
            return
        layer = layer if isinstance(layer, QgsVectorLayer) else None
        stored = PlanSettings.read(self.project)
        # back on the layer of the project's plan: show that plan's choices again
        plan = stored if stored is not None and layer is not None and stored.layer_id == layer.id() else None
        self._updating = True
        try:
            self._fill_fields(layer, plan)
        finally:
            self._updating = False
        self._apply_setup()

    def _fill_fields(self, layer: QgsVectorLayer | None, plan: PlanSettings | None = None) -> None:
        """Point the field pickers at ``layer`` and select ``plan``'s fields (or guesses)."""
        for combo in (self.field_combo, self.rep_combo, self.lock_field_combo, self.unit_name_combo):
            combo.setLayer(layer)
        self.measures_combo.clear()
        if layer is None:
            return
        numeric = measure_candidates(layer)
        self.measures_combo.addItems(numeric)
        if plan is None:
            self.field_combo.setField(self._guess_territory_field(layer))
            self.rep_combo.setField("")
            self.lock_field_combo.setField("")
            self.unit_name_combo.setField(likely_name_field(layer))
            self.measures_combo.setCheckedItems(likely_workloads(numeric))
            return
        self.field_combo.setField(plan.territory_field)
        self.measures_combo.setCheckedItems([m for m in plan.measures if m in numeric])
        self.rep_combo.setField(plan.rep_field)
        self.lock_field_combo.setField(plan.lock_field)
        self.unit_name_combo.setField(plan.unit_name_field)
        self.table_combo.setLayer(self.project.mapLayer(plan.territory_table) if plan.territory_table else None)
        self.network_combo.setLayer(self.project.mapLayer(plan.network_layer) if plan.network_layer else None)
        self.tolerance_spin.setValue(plan.tolerance)
        self.count_spin.setValue(max(1, plan.territory_count))

    @staticmethod
    def _guess_territory_field(layer: QgsVectorLayer) -> str:
        for field in layer.fields():
            if field.name().lower() in ("territory", "territories", "district", "region", "zone"):
                if territory_field_problem(layer, field.name()) is None:
                    return field.name()
        return ""

    def _plan_from_widgets(self) -> PlanSettings | None:
        layer = self.current_layer()
        field = self.field_combo.currentField()
        if layer is None or not field:
            return None
        table = self.table_combo.currentLayer()
        network = self.network_combo.currentLayer()
        plan = PlanSettings(layer_id=layer.id(), territory_field=field,
                            network_layer=network.id() if network is not None else "",
                            territory_table=table.id() if table is not None and table is not layer else "",
                            unit_name_field=self.unit_name_combo.currentField(),
                            measures=list(self.measures_combo.checkedItems()),
                            tolerance=self.tolerance_spin.value(), rep_field=self.rep_combo.currentField(),
                            lock_field=self.lock_field_combo.currentField(), territory_count=self.count_spin.value())
        current = self.service.plan
        if self.service.is_bound and current.layer_id == plan.layer_id and current.territory_field == field:
            plan.territories = list(current.territories)
            plan.locked_territories = list(current.locked_territories)
            plan.locked_units = list(current.locked_units)
        else:
            stored = PlanSettings.read(self.project)
            if stored is not None and stored.layer_id == plan.layer_id and stored.territory_field == field:
                plan.territories = stored.territories
                plan.locked_territories = stored.locked_territories
                plan.locked_units = stored.locked_units
        # what belongs to the layer, not to one scenario, carries over when the scenario changes
        for source in (current if self.service.is_bound else None, PlanSettings.read(self.project)):
            if source is not None and source.layer_id == plan.layer_id:
                plan.scenarios = list(source.scenarios)
                plan.baseline = source.baseline
                plan.keep_style = source.keep_style if source.territory_field == field else plan.keep_style
                plan.filters = dict(source.filters)
                plan.tolerances = dict(source.tolerances)
                plan.time_limit = source.time_limit
                break
        return plan

    def _apply_setup(self) -> None:
        if self._updating:
            return
        plan = self._plan_from_widgets()
        if plan is None:
            if self.service.is_bound:
                self.service.unbind()
            return
        self.service.bind(self.current_layer(), plan)

    def _on_tolerance(self, value: float) -> None:
        if self._updating:
            return
        self.preferences.default_tolerance = value  # the starting tolerance of the next plan
        if self.service.is_bound:
            self.service.set_tolerance(value)
            self._save_plan()

    def _on_time_limit(self, value: float) -> None:
        if self._updating or not self.service.is_bound:
            return
        self.service.plan.time_limit = float(value)
        self._save_plan()

    def _fill_tolerances(self) -> None:
        """One row per balance field: its name and its own tolerance (empty: the plan's)."""
        service = self.service
        measures = list(service.measures) if service.is_bound else []
        table = self.tolerances_table
        table.blockSignals(True)
        try:
            table.setRowCount(len(measures))
            for row, measure in enumerate(measures):
                name = QTableWidgetItem(measure)
                name.setFlags(Qt.ItemFlag.ItemIsEnabled)
                table.setItem(row, 0, name)
                own = service.plan.tolerances.get(measure)
                value = QTableWidgetItem("" if own is None else f"{own:g}")
                value.setData(Qt.ItemDataRole.UserRole, measure)
                value.setTextAlignment(int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter))
                value.setToolTip(tr("Tolerance of {} in percent; empty: the plan's {:g} %").format(
                    measure, service.plan.tolerance))
                table.setItem(row, 1, value)
        finally:
            table.blockSignals(False)
        shown = len(measures) > 1
        table.setVisible(shown)
        self.tolerances_label.setVisible(shown)
        if shown:
            height = table.horizontalHeader().height() + sum(table.rowHeight(r) for r in range(len(measures)))
            table.setFixedHeight(height + 2 * table.frameWidth())
        self._updating = True
        try:
            self.time_limit_spin.setValue(service.plan.time_limit if service.is_bound else DEFAULT_TIME_LIMIT)
        finally:
            self._updating = False

    def set_measure_tolerance(self, measure: str, percent: float | None) -> bool:
        """Set a balance field's own tolerance (percent; None: the plan's), as typed in the table."""
        for row in range(self.tolerances_table.rowCount()):
            item = self.tolerances_table.item(row, 1)
            if item is not None and item.data(Qt.ItemDataRole.UserRole) == measure:
                item.setText("" if percent is None else f"{percent:g}")
                return True
        return False

    def _on_measure_tolerance(self, item) -> None:
        measure = item.data(Qt.ItemDataRole.UserRole)
        if item.column() != 1 or not measure or not self.service.is_bound:
            return
        text = item.text().strip().rstrip("%").strip().replace(",", ".")
        value = None
        if text:
            try:
                value = float(text)
            except ValueError:
                value = -1.0
            if not 0.0 <= value < 1000.0:
                self._show_message(tr("The tolerance of {} must be a percentage from 0 up (e.g. 10), or empty "
                                           "for the plan's tolerance.").format(measure), Qgis.MessageLevel.Warning)
                self._fill_tolerances()
                return
        self.service.set_measure_tolerance(measure, value)
        self._save_plan()

    def _save_plan(self) -> None:
        if self.service.is_bound:
            self.service.plan.territory_count = self.count_spin.value()
            self.service.plan.write(self.project)

    def create_field(self, name: str | None = None) -> bool:
        """Add a new text territory field to the chosen layer (asks for its name)."""
        layer = self.current_layer()
        if layer is None:
            self._show_message(tr("Choose a units layer first."), Qgis.MessageLevel.Warning)
            return False
        if name is None:
            name, ok = QInputDialog.getText(self, tr("New territory field"), tr("Field name"),
                                            text="territory")
            if not ok:
                return False
        if not self.service.create_territory_field(layer, name):
            return False
        self._updating = True
        try:
            self.field_combo.setLayer(layer)
            self.rep_combo.setLayer(layer)
            self.lock_field_combo.setLayer(layer)
            self.field_combo.setField(name.strip())
        finally:
            self._updating = False
        self._apply_setup()
        return True

    # -- project ---------------------------------------------------------------------------------
    def restore_from_project(self) -> bool:
        """Show the plan stored in the project (if its layer is there)."""
        plan = PlanSettings.read(self.project)
        if plan is None:
            return False
        layer = self.project.mapLayer(plan.layer_id)
        if not isinstance(layer, QgsVectorLayer):
            return False
        self._updating = True
        try:
            self.layer_combo.setLayer(layer)
            self._fill_fields(layer, plan)
        finally:
            self._updating = False
        return self.service.bind(layer, plan)

    def _on_project_read(self, *_args) -> None:
        self.restore_from_project()

    def _on_project_cleared(self) -> None:
        self._cancel_tasks()
        self.service.unbind()
        self._updating = True
        try:
            self.layer_combo.setLayer(None)
            self._fill_fields(None)
        finally:
            self._updating = False

    # -- service signals -------------------------------------------------------------------------
    def _on_plan_changed(self) -> None:
        self._fill_scenarios()
        self._fill_tolerances()
        layer = self.service.layer
        for tool in (self.paint_tool, self.lasso_tool, self.eyedropper_tool):
            tool.set_layer(layer)
        if self.service.is_bound:
            self._ask_about_style()
            self._save_plan()
            self.service.restyle()
            if self.service.adjacency is None:
                self._read_neighbours()
        self._on_territories_changed()
        self._update_status()

    def _ask_about_style(self) -> None:
        """Ask once before replacing a style someone made with the territory colours."""
        service = self.service
        key = (service.layer_id, service.field_name)
        if service.plan.keep_style or key in self._style_answers or not has_own_style(service.layer,
                                                                                       service.field_name):
            service.plan.keep_style = self._style_answers.get(key, service.plan.keep_style)
            return
        replace = self.confirm(tr("Territory colours"), tr(
            "“{}” has a style of its own. Replace it with one colour per territory? (Choose No to keep it; "
            "the table still shows each territory's colour.)").format(service.layer.name()))
        self._style_answers[key] = not replace
        service.plan.keep_style = not replace

    def _confirm(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(self, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.Yes)
        return answer == QMessageBox.StandardButton.Yes

    def _read_neighbours(self) -> None:
        """Start reading the layer's neighbours in the background, once per layer at a time."""
        layer_id = self.service.layer_id
        if layer_id in self._reading_neighbours:
            return
        task = UnitsTask(self.service)
        self._reading_neighbours.add(layer_id)
        task.on_finished = lambda t: self._reading_neighbours.discard(t.layer_id)
        self.run_task(task)

    def _on_territories_changed(self) -> None:
        if self.service.is_bound:
            self._save_plan()
            if self.service.territory_names and self.count_spin.value() != len(self.service.territory_names):
                self.count_spin.setValue(len(self.service.territory_names))
        self._update_actions()
        self._schedule_suggestions()

    def _on_units_ready(self) -> None:
        self._update_status()
        self._schedule_suggestions()

    def _after_model_reset(self) -> None:
        deviation_columns = [c for c in range(self.model.columnCount())
                             if self.model.column_kind(c)[0] in ("deviation", "worst")]
        self._apply_compact()
        for column in range(self.model.columnCount()):
            self.table.setItemDelegateForColumn(column, self.bar_delegate if column in deviation_columns else None)
        self.table.resizeColumnsToContents()
        self._select_row(self.service.active)

    #: the columns of the compact table (every figure is in the name's tooltip and the full table)
    COMPACT_KINDS = ("name", "locked", "worst", "parts")

    def _apply_compact(self) -> None:
        compact = not self.details_action.isChecked()
        for column in range(self.model.columnCount()):
            kind = self.model.column_kind(column)[0]
            self.table.setColumnHidden(column, compact and kind not in self.COMPACT_KINDS)

    def _show_message(self, text: str, level) -> None:
        self.iface.messageBar().pushMessage(tr("Territory Planner"), text, level, 8)

    def _update_status(self) -> None:
        service = self.service
        if not service.is_bound:
            self.status_label.setText(tr("Choose a units layer and its territory field."))
        elif service.adjacency is None:
            self.status_label.setText(tr("Active: {} — reading neighbours for contiguity…").format(
                service.active or "–"))
        else:
            self.status_label.setText(tr("Active: {}").format(service.active or "–"))

    def _update_actions(self) -> None:
        bound = self.service.is_bound
        for action in (self.paint_action, self.lasso_action, self.eyedropper_action, self.erase_action,
                       self.assign_selected_action, self.lock_units_action, self.unlock_units_action,
                       self.undo_action, self.redo_action, self.new_action, self.rename_action, self.merge_action,
                       self.delete_action, self.build_action, self.rebalance_action, self.log_action,
                       self.packets_action):
            action.setEnabled(bound)

    # -- active territory ------------------------------------------------------------------------
    def _on_row_chosen(self, current, _previous) -> None:
        if self._selecting or not current.isValid():
            return
        name = current.data(TERRITORY_ROLE)
        if name is not None:
            self.service.set_active(name)

    def _on_active_changed(self, name) -> None:
        self._select_row(name)
        self._update_status()
        self._schedule_suggestions()

    def _select_row(self, name) -> None:
        row = self.model.row_of(name) if name is not None else -1
        self._selecting = True
        try:
            if row < 0:
                self.table.clearSelection()
                return
            index = self.proxy.mapFromSource(self.model.index(row, 0))
            self.table.selectionModel().setCurrentIndex(
                index, self.table.selectionModel().SelectionFlag.ClearAndSelect
                | self.table.selectionModel().SelectionFlag.Rows)
        finally:
            self._selecting = False

    def _on_row_double_clicked(self, index) -> None:
        self.zoom_to(index.data(TERRITORY_ROLE))

    def zoom_to(self, name: str | None) -> None:
        """Zoom the map to a territory's units."""
        if name is None or not self.service.is_bound:
            return
        extent = self.service.territory_extent(name)
        if extent.isEmpty() and extent.width() == 0 and extent.height() == 0 and extent.isNull():
            return
        transform = QgsCoordinateTransform(self.service.layer.crs(), self.canvas.mapSettings().destinationCrs(),
                                           self.project.transformContext())
        extent = transform.transformBoundingBox(extent)
        extent.scale(1.1)
        self.canvas.setExtent(extent)
        self.canvas.refresh()

    # -- painting --------------------------------------------------------------------------------
    def _use_tool(self, tool, checked: bool) -> None:
        if checked:
            self.canvas.setMapTool(tool)
        elif self.canvas.mapTool() is tool:
            self.canvas.unsetMapTool(tool)

    def paint(self, fids: list) -> int:
        """Units picked on the map go to the active territory (or out of it in unassign mode)."""
        if self.erase_action.isChecked():
            return self.service.assign(fids, None)
        if self.service.active is None:
            self._show_message(tr("Choose the territory to paint with: select a row of the table, or use the "
                                       "eyedropper."), Qgis.MessageLevel.Info)
            return 0
        return self.service.assign(fids, self.service.active)

    def pick_territory(self, fids: list) -> None:
        name = self.service.territory_of_fid(fids[0]) if fids else None
        if name is None:
            self._show_message(tr("That unit is not in a territory."), Qgis.MessageLevel.Info)
            return
        self.service.set_active(name)

    def assign_selected(self) -> int:
        if self.erase_action.isChecked():
            return self.service.assign_selected(None)
        if self.service.active is None:
            self._show_message(tr("Choose a territory in the table first."), Qgis.MessageLevel.Info)
            return 0
        return self.service.assign_selected(self.service.active)

    def lock_selected_units(self, locked: bool) -> int:
        if not self.service.is_bound:
            return 0
        selected = self.service.layer.selectedFeatureIds()
        if not selected:
            self._show_message(tr("Select the units to lock or unlock first."), Qgis.MessageLevel.Info)
            return 0
        changed = self.service.set_units_locked(selected, locked)
        self._save_plan()
        return changed

    def undo(self) -> None:
        if self.service.is_bound:
            self.service.layer.undoStack().undo()

    def redo(self) -> None:
        if self.service.is_bound:
            self.service.layer.undoStack().redo()

    # -- territories -----------------------------------------------------------------------------
    def _ask(self, title: str, label: str, text: str = "") -> str | None:
        value, ok = QInputDialog.getText(self, title, label, text=text)
        return value if ok else None

    def new_territory(self, name: str | None = None) -> bool:
        if name is None:
            name = self._ask(tr("New territory"), tr("Name"),
                             self._free_name())
            if name is None:
                return False
        return self.service.new_territory(name)

    def _free_name(self) -> str:
        names = self.service.territory_names
        return default_names(names, len(names) + 1, tr("Territory"))[-1]

    def rename_territory(self, new: str | None = None) -> bool:
        old = self.service.active
        if old is None:
            self._show_message(tr("Choose the territory to rename in the table."), Qgis.MessageLevel.Info)
            return False
        if new is None:
            shown = self.service.display_name(old)
            new = self._ask(tr("Rename territory"), tr("New name for “{}”").format(shown), shown)
            if new is None:
                return False
        return self.service.rename_territory(old, new)

    def merge_territory(self, target: str | None = None) -> bool:
        source = self.service.active
        if source is None:
            self._show_message(tr("Choose the territory to merge in the table."), Qgis.MessageLevel.Info)
            return False
        others = [t for t in self.service.territory_names if t != source]
        if not others:
            return False
        if target is None:
            target, ok = QInputDialog.getItem(self, tr("Merge territory"),
                                              tr("Merge “{}” into").format(source), others, 0, False)
            if not ok:
                return False
        return self.service.merge_territories(source, target)

    def delete_territory(self) -> bool:
        name = self.service.active
        if name is None:
            self._show_message(tr("Choose the territory to delete in the table."), Qgis.MessageLevel.Info)
            return False
        return self.service.delete_territory(name)

    # -- engine ----------------------------------------------------------------------------------
    def build(self) -> EngineTask | None:
        return self._start_engine("build", self.count_spin.value())

    def rebalance(self) -> EngineTask | None:
        if not self.service.is_bound:
            return None
        if not any(self.service.counts[self.service.territory_index(t)] for t in self.service.territory_names):
            self._show_message(tr("No unit is in a territory yet: use Build to make a first plan."),
                               Qgis.MessageLevel.Info)
            return None
        return self._start_engine("rebalance")

    def _start_engine(self, mode: str, count: int | None = None) -> EngineTask | None:
        from ..core.problem import ProblemError

        if not self.service.is_bound:
            return None
        try:
            job = engine_job(self.service, mode, count)
        except ProblemError as error:
            self._show_message(str(error), Qgis.MessageLevel.Warning)
            return None
        cap = None
        if mode == "rebalance" and self.cap_spin.value() > 0:
            cap = max(1, int(round(self.cap_spin.value() / 100.0 * len(job.units))))
        task = EngineTask(self.service, job, max_changed_units=cap)
        task.progressText.connect(lambda text, t=task: self._on_engine_progress(t, text))
        self.run_task(task)
        return task

    def _on_engine_progress(self, task, text: str) -> None:
        """The engine's progress ("Searching: worst deviation 6.20 %") in the panel and the task manager."""
        if sip.isdeleted(task):
            return
        line = f"{task.title}: {text}"
        task.setDescription(line)
        self.status_label.setText(line)

    # -- scenarios -------------------------------------------------------------------------------
    def _fill_scenarios(self) -> None:
        names = self.scenarios.names()
        baseline = self.scenarios.baseline
        self.scenario_combo.blockSignals(True)
        try:
            self.scenario_combo.clear()
            for name in names:
                self.scenario_combo.addItem(name)
                if name == baseline and len(names) > 1:
                    row = self.scenario_combo.count() - 1
                    self.scenario_combo.setItemData(row, tr("Baseline"), Qt.ItemDataRole.ToolTipRole)
            self.scenario_combo.setCurrentIndex(max(0, names.index(self.service.field_name))
                                                if self.service.field_name in names else -1)
        finally:
            self.scenario_combo.blockSignals(False)
        bound = self.service.is_bound
        for widget in (self.scenario_combo, self.new_scenario_button, self.scenario_menu_button):
            widget.setEnabled(bound)

    def switch_scenario(self, name: str) -> bool:
        """Work on scenario ``name`` (its territory field)."""
        if not name or name == self.service.field_name:
            return False
        self.field_combo.setField(name)
        return self.service.field_name == name

    def new_scenario(self, name: str | None = None) -> bool:
        """A new scenario copied from the current one, then switch to it."""
        if not self.service.is_bound:
            return False
        if name is None:
            name = self._ask(tr("New scenario"), tr("Name of the new scenario (a new field):"),
                             self._free_scenario_name())
            if not name:
                return False
        plan = self.service.plan
        if not self.scenarios.create(name, plan.territory_field):
            return False
        self._save_plan()
        return self.switch_scenario(name.strip())

    def _free_scenario_name(self) -> str:
        fields = self.service.layer.fields() if self.service.layer is not None else None
        k = 2
        while fields is not None and fields.lookupField(f"scenario_{k}") >= 0:
            k += 1
        return f"scenario_{k}"

    def rename_scenario(self, new: str | None = None) -> bool:
        old = self.service.field_name
        if not old:
            return False
        if new is None:
            new = self._ask(tr("Rename scenario"), tr("New name of scenario “{}”:").format(old), old)
            if not new:
                return False
        other = next((n for n in self.scenarios.names() if n != old), "")
        if not other:
            self._show_message(tr("Create a second scenario first; the scenario in use is renamed from "
                                       "another one."), Qgis.MessageLevel.Info)
            return False
        # the field in use cannot be renamed under the bound plan: step aside, rename, come back
        self.switch_scenario(other)
        renamed = self.scenarios.rename(old, new)
        self._save_plan()
        self.switch_scenario(new.strip() if renamed else old)
        return renamed

    def delete_scenario(self, name: str | None = None) -> bool:
        name = name or self.service.field_name
        if name == self.service.field_name:
            other = next((n for n in self.scenarios.names() if n != name), "")
            if not other:
                self._show_message(tr("The only scenario cannot be deleted."), Qgis.MessageLevel.Info)
                return False
            self.switch_scenario(other)
        deleted = self.scenarios.delete(name)
        self._save_plan()
        self._fill_scenarios()
        return deleted

    def set_scenario_filter(self, expression: str | None = None) -> bool:
        """Limit the current scenario to the units matching ``expression`` (empty: every unit), e.g.
        a segment team's accounts: the table, Build and Rebalance then use only those units."""
        plan = self.service.plan
        if not self.service.is_bound:
            return False
        if expression is None:
            expression = self._ask(tr("Segment filter"), tr(
                "Units of scenario “{}” (an expression, e.g. \"industry\" = 'healthcare'; empty: all units):")
                .format(plan.territory_field), plan.filter_expression)
            if expression is None:
                return False
        expression = expression.strip()
        if expression:
            parsed = QgsExpression(expression)  # the user's own expression, parsed to check it
            if parsed.hasParserError():
                self._show_message(tr("That filter is not a valid expression: {}").format(
                    parsed.parserErrorString()), Qgis.MessageLevel.Warning)
                return False
        filters = dict(plan.filters)
        filters[plan.territory_field] = expression
        if not expression:
            filters.pop(plan.territory_field, None)
        plan.filters = filters
        self._save_plan()
        # bind again: figures, neighbours, Build and Rebalance now cover the matching units only
        self.service.units = None
        self._apply_setup()
        return True

    def promote_scenario(self) -> None:
        self.scenarios.promote(self.service.field_name)
        self._save_plan()
        self._fill_scenarios()

    def compare_scenarios(self) -> ScenarioDialog | None:
        if not self.service.is_bound:
            return None
        dialog = ScenarioDialog(self.scenarios.compare(), self.service.measure_names, self.scenarios.baseline,
                                self.service.plan.tolerance, self)
        dialog.setModal(False)
        dialog.show()
        self._scenario_dialog = dialog
        return dialog

    def packet_parameters(self) -> dict:
        """The Territory packets parameters of the plan in the panel."""
        service = self.service
        parameters = {"INPUT": service.layer, "TERRITORY_FIELD": service.field_name,
                      "BALANCE_FIELDS": list(service.measures)}
        if service.plan.unit_name_field:
            parameters["UNIT_NAME_FIELD"] = service.plan.unit_name_field
        baseline = self.scenarios.baseline
        if baseline and baseline != service.field_name:
            parameters["FIELD_BEFORE"] = baseline  # the changes since the baseline scenario
        return parameters

    def make_packets(self):
        """Open Territory packets for the plan in the panel (its dialog, filled in; runs in the background)."""
        if not self.service.is_bound:
            return None
        import processing

        dialog = processing.createAlgorithmDialog("territory:territorypackets", self.packet_parameters())
        if dialog is None:
            self._show_message(tr("The Territory packets algorithm is not available; is the Processing "
                                       "plugin enabled?"), Qgis.MessageLevel.Warning)
            return None
        dialog.show()
        self._packets_dialog = dialog
        return dialog

    def show_change_log(self, territory: str | None = None) -> ChangeLogDialog | None:
        """The saved changes into or out of ``territory`` (the active one by default)."""
        service = self.service
        if not service.is_bound:
            return None
        territory = territory or service.active
        recorder = service.recorder
        where = recorder.store.description if recorder is not None and recorder.store is not None else ""
        dialog = ChangeLogDialog(service.change_log(territory), list(service.measures), territory, where, self)
        dialog.setModal(False)
        dialog.show()
        self._log_dialog = dialog
        return dialog

    # -- preview before apply --------------------------------------------------------------------
    def _on_preview_changed(self, preview) -> None:
        self.preview_panel.show_preview(preview)
        if preview is None:
            self.highlight.clear()
        else:
            self.highlight.show(self.service.layer, self.service.preview_fids())

    def apply_preview(self) -> int:
        """Apply the proposal shown in the panel (one undoable edit)."""
        return self.service.apply_preview()

    def discard_preview(self) -> None:
        self.service.discard_preview()

    def _run_in_task_manager(self, task) -> None:
        # Python must keep the task object alive until QGIS is done with it.
        self._tasks.append(task)
        task.taskCompleted.connect(lambda t=task: self._forget_task(t))
        task.taskTerminated.connect(lambda t=task: self._forget_task(t))
        QgsApplication.taskManager().addTask(task)

    def _forget_task(self, task) -> None:
        if task in self._tasks:
            self._tasks.remove(task)

    def _cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    # -- suggestions -----------------------------------------------------------------------------
    def _schedule_suggestions(self) -> None:
        self._suggestions_timer.start()

    def refresh_pieces(self) -> None:
        """Mark the stray pieces of territories that are not contiguous."""
        self.pieces_highlight.show(self.service.layer, self.service.stray_piece_fids())

    def refresh_travel(self) -> None:
        """The active territory's travel times by road (when the plan has a road network)."""
        service = self.service
        figures = service.travel_of(service.active) if service.is_bound else None
        if figures is None:
            self.travel_label.setVisible(False)
            return
        text = tr("By road from its centre unit: mean {:.1f} min (workload-weighted {:.1f}), longest {:.1f} min")\
            .format(figures["mean"], figures["weighted"], figures["max"])
        if figures["off_network"]:
            text += tr("; {} unit(s) off the network").format(figures["off_network"])
        self.travel_label.setText(text)
        self.travel_label.setVisible(True)

    def refresh_suggestions(self) -> None:
        self.refresh_pieces()
        self.refresh_travel()
        self.suggestions_list.clear()
        service = self.service
        if not service.is_bound or service.active is None:
            self.suggestions_label.setText(tr("Suggestions"))
            return
        if service.adjacency is None:
            self.suggestions_label.setText(tr("Suggestions (waiting for neighbours…)"))
            return
        found = service.suggestions(5)
        self.suggestions_label.setText(tr("Suggestions for {}").format(service.active) if found else
                                       tr("No single move improves the balance of {}").format(service.active))
        names = service.territory_names
        measures = service.measure_names
        for suggestion in found:
            effects = []
            for a, measure in enumerate(measures):
                effects.append(tr("{m}: {s} {sb:+.1f}→{sa:+.1f} %, {t} {tb:+.1f}→{ta:+.1f} %").format(
                    m=measure, s=names[suggestion.source], t=names[suggestion.target],
                    sb=100 * suggestion.deviation_before[0, a], sa=100 * suggestion.deviation_after[0, a],
                    tb=100 * suggestion.deviation_before[1, a], ta=100 * suggestion.deviation_after[1, a]))
            text = tr("Move {} from {} to {} — {}").format(
                service.unit_label(suggestion.unit), names[suggestion.source], names[suggestion.target],
                "; ".join(effects))
            item = QListWidgetItem(text, self.suggestions_list)
            item.setData(SUGGESTION_ROLE, suggestion)
            item.setToolTip(text)

    def select_units(self, fids: list[int], zoom: bool = True) -> int:
        """Select units on the layer (QGIS's own selection) and zoom the map to them."""
        layer = self.service.layer
        if layer is None or not fids:
            return 0
        layer.selectByIds([int(f) for f in fids])
        if zoom:
            self.canvas.zoomToSelected(layer)
            self.canvas.refresh()
        return len(fids)

    def _on_suggestion_double_clicked(self, item: QListWidgetItem | None) -> None:
        suggestion = item.data(SUGGESTION_ROLE) if item is not None else None
        if suggestion is not None:
            self.select_units([int(self.service.fids[suggestion.unit])])

    def _on_suggestion_clicked(self, item: QListWidgetItem | None) -> None:
        suggestion = item.data(SUGGESTION_ROLE) if item is not None else None
        if suggestion is not None:
            self.service.propose_suggestion(suggestion)

    # -- lifetime --------------------------------------------------------------------------------
    def unload(self) -> None:
        """Disconnect from QGIS objects before the plugin goes away."""
        self._suggestions_timer.stop()
        self._cancel_tasks()
        self.highlight.close()
        self.pieces_highlight.close()
        for tool in (self.paint_tool, self.lasso_tool, self.eyedropper_tool):
            if self.canvas.mapTool() is tool:
                self.canvas.unsetMapTool(tool)
        for signal, slot in ((self.project.readProject, self._on_project_read),
                             (self.project.cleared, self._on_project_cleared)):
            try:
                signal.disconnect(slot)
            except (TypeError, RuntimeError):
                pass
        self.service.close()
        self.table.setModel(None)
