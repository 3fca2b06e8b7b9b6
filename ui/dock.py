"""The Territory Planner dock panel: a view of the plan.

The dock shows the setup form (``ui/setup_form.py``), the territory list (a model over the
service's figures), the painting tools, the preview of a proposal and the suggestions. What a
choice means for the plan is the controller's (``ui/plan_controller.py``); every change to the plan
goes through the assignment service; the dock computes nothing and writes none of their state.
"""

from __future__ import annotations

from qgis.core import Qgis, QgsProject
from qgis.gui import QgsCollapsibleGroupBox, QgsDockWidget
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QSortFilterProxyModel, Qt, QTimer
from qgis.PyQt.QtGui import QColor
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHeaderView,
    QLabel,
    QMessageBox,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ..core.engine import DEFAULT_TIME_LIMIT
from ..i18n import tr
from ..layers.signal_links import SignalLinks
from .assignment_service import AssignmentService
from .deviation_bar import DeviationBarDelegate
from .engine_progress import EngineProgress
from .feedback_panel import FeedbackPanel
from .map_view import TerritoryLabels, UnitsOutline, select_units, zoom_to_units
from .overrides_panel import OverridesPanel
from .panel_actions import PlanDialogs, TerritoryActions
from .panel_layout import PanelScroll, fit_table_rows, plan_status
from .plan_controller import PlanController
from .plan_outputs import rep_home_flags
from .preview_panel import PreviewPanel, preview_moves
from .setup_form import SetupForm, parse_tolerance
from .suggestions_panel import SuggestionsPanel
from .tasks import EngineTask
from .territory_list_model import SORT_ROLE, TERRITORY_ROLE
from .toolbars import PaintToolbar, TerritoryToolbar


class TerritoryDock(TerritoryActions, PlanDialogs, QgsDockWidget):
    """Panel for painting units into territories, with live balance, locks and rebalancing."""

    #: the columns of the compact table (every figure is in the name's tooltip and the full table)
    COMPACT_KINDS = ("name", "locked", "goal", "worst", "parts")

    def __init__(self, iface, parent=None, controller: PlanController | None = None):
        super().__init__(tr("Territory Planner"), parent)
        self.iface = iface
        self.canvas = iface.mapCanvas()
        self.project = QgsProject.instance()
        self.setObjectName("TerritoryPlannerDock")
        #: whether the panel made its own controller and service (tests), which it then lets go of itself
        self._owns_controller = controller is None
        if controller is None:  # plugin.py gives the plugin's controller
            controller = PlanController(AssignmentService(self.project, self), self.project, self)
        #: what the user's choices mean for the plan, and the work behind the panel
        self.controller = controller
        #: the plan being edited: the panel only shows it and asks it for changes
        self.service = controller.service
        #: asks the user a yes/no question; tests replace it
        self.confirm = self._confirm
        controller.confirm = lambda title, text: self.confirm(title, text)
        controller.ask = self._ask
        self._dialogs: dict = {}  # the non-modal dialogs shown, kept alive while open
        self.model = controller.model
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.proxy.setDynamicSortFilter(True)
        self._selecting = False
        #: whether the panel's last paint was on the accounts (undo and redo then act on them)
        self._accounts_last = False
        self._folded_for = None  # the plan (layer id, field) the setup was last folded away for
        self._suggestions_timer = QTimer(self)
        self._suggestions_timer.setSingleShot(True)
        self._suggestions_timer.setInterval(150)
        self._suggestions_timer.timeout.connect(self.refresh_suggestions)

        self._build_ui()
        self._connect()
        controller.restore_from_project()

    # -- layout ----------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        body = QWidget(self)
        outer = QVBoxLayout(body)
        outer.setContentsMargins(4, 4, 4, 4)
        # the setup folds away once the plan is set up: the territory table then has the height
        self.setup_box = QgsCollapsibleGroupBox(tr("Plan setup"), body)
        self.setup_box.setObjectName("territorySetupBox")
        self.setup_box.setSaveCollapsedState(False)
        box_layout = QVBoxLayout(self.setup_box)
        box_layout.setContentsMargins(2, 2, 2, 2)
        self.setup_form = SetupForm(self.controller.preferences.default_tolerance, self.setup_box)
        box_layout.addWidget(self.setup_form)
        outer.addWidget(self.setup_box)

        self.paint_toolbar = PaintToolbar(self.canvas, body)
        outer.addWidget(self.paint_toolbar)
        self.territory_toolbar = TerritoryToolbar(body, self.paint_toolbar.iconSize())
        outer.addWidget(self.territory_toolbar)
        outer.addWidget(self.territory_toolbar.engine_row(body))

        splitter = self.splitter = QSplitter(Qt.Orientation.Vertical, body)
        self.table = QTableView(splitter)
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        # compact rows: a laptop screen shows every territory of a small plan without scrolling
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        # sized once per reset, not on every change: painting must not make the view measure every cell
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(False)
        # columns are sized from the rows in view and 200 others, not from every territory's row
        self.table.horizontalHeader().setResizeContentsPrecision(200)
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        self.bar_delegate = DeviationBarDelegate(self.table)
        self.table.setObjectName("territoryTable")
        self.preview_panel = PreviewPanel(splitter)
        self.suggestions_panel = SuggestionsPanel(self.service, splitter)
        self.overrides_panel = OverridesPanel(self.service, self.controller.accounts, splitter)
        self.feedback_panel = FeedbackPanel(self.service, splitter, self.controller.accounts)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setStretchFactor(2, 1)
        splitter.setStretchFactor(3, 1)
        outer.addWidget(splitter, 1)

        self.highlight = UnitsOutline(self.canvas)
        self.pieces_highlight = UnitsOutline(self.canvas, QColor(220, 0, 0), dashed=True)
        self.territory_labels = TerritoryLabels(self.canvas)
        # a short screen scrolls the panel instead of making QGIS's window taller than the screen; the
        # status line stays in view below it
        frame = QWidget(self)
        frame_layout = QVBoxLayout(frame)
        frame_layout.setContentsMargins(0, 0, 0, 0)
        frame_layout.setSpacing(2)
        scroll = PanelScroll(frame)
        scroll.setObjectName("territoryPanelScroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        frame_layout.addWidget(scroll, 1)
        # in view with the status line: Cancel must not scroll away while the engine searches
        self.engine_progress = EngineProgress(self.controller, frame)
        frame_layout.addWidget(self.engine_progress)
        self.status_label = QLabel(frame)
        self.status_label.setObjectName("territoryStatus")
        self.status_label.setWordWrap(True)
        self.status_label.setContentsMargins(4, 0, 4, 2)
        frame_layout.addWidget(self.status_label)
        self.travel_label = QLabel(frame)
        self.travel_label.setObjectName("territoryTravel")
        self.travel_label.setWordWrap(True)
        self.travel_label.setVisible(False)
        frame_layout.addWidget(self.travel_label)
        self.setWidget(frame)

    def _connect(self) -> None:
        form, paint, territory = self.setup_form, self.paint_toolbar, self.territory_toolbar
        service, controller = self.service, self.controller
        for tool, action in paint.tools():
            action.triggered.connect(lambda checked, chosen=tool: self._use_tool(chosen, checked))
        for tool in (paint.paint_tool, paint.lasso_tool):
            tool.unitsPicked.connect(self.paint)
        paint.account_tool.unitsPicked.connect(self.paint_accounts)
        paint.eyedropper_tool.unitsPicked.connect(self.pick_territory)
        for action, slot in ((paint.assign_selected_action, self.assign_selected),
                             (paint.reset_override_action, self.reset_override),
                             (paint.lock_units_action, lambda: self.lock_selected_units(True)),
                             (paint.unlock_units_action, lambda: self.lock_selected_units(False)),
                             (paint.undo_action, self.undo), (paint.redo_action, self.redo),
                             (territory.new_action, lambda: self.new_territory()),
                             (territory.rename_action, lambda: self.rename_territory()),
                             (territory.merge_action, lambda: self.merge_territory()),
                             (territory.delete_action, lambda: self.delete_territory()),
                             (territory.packets_action, lambda: self.make_packets()),
                             (territory.statistics_action, lambda: self.open_algorithm("territorystatistics")),
                             (territory.compare_action, lambda: self.open_algorithm("comparealignments")),
                             (territory.assign_reps_action, lambda: self.controller.assign_reps()),
                             (territory.log_action, lambda: self.show_change_log()),
                             (territory.build_action, self.build), (territory.rebalance_action, self.rebalance),
                             (form.compare_scenarios_action, lambda: self.compare_scenarios()),
                             (form.promote_scenario_action, controller.promote_scenario),
                             (form.filter_scenario_action, lambda: controller.set_scenario_filter()),
                             (form.rename_scenario_action, lambda: controller.rename_scenario()),
                             (form.delete_scenario_action, lambda: controller.delete_scenario())):
            action.triggered.connect(slot)
        territory.details_action.toggled.connect(lambda _checked: self._apply_compact())
        territory.time_limit_spin.valueChanged.connect(controller.set_time_limit)
        territory.count_spin.valueChanged.connect(controller.set_territory_count)
        territory.thematic_combo.currentIndexChanged.connect(
            lambda _index: controller.thematic.set_mode(territory.thematic_combo.currentData()))
        form.new_field_button.clicked.connect(lambda: self.create_field())
        form.scenario_combo.textActivated.connect(controller.switch_scenario)
        form.new_scenario_button.clicked.connect(lambda: controller.new_scenario())
        self.table.selectionModel().currentRowChanged.connect(self._on_row_chosen)
        self.table.doubleClicked.connect(lambda index: self.zoom_to(index.data(TERRITORY_ROLE)))
        self.proxy.modelReset.connect(self._after_model_reset)
        self.preview_panel.apply_button.clicked.connect(self.apply_preview)
        self.preview_panel.discard_button.clicked.connect(self.discard_preview)
        self.preview_panel.select_button.clicked.connect(lambda: self.select_units(service.preview_fids()))
        self.suggestions_panel.unitChosen.connect(lambda fid: self.select_units([fid]))
        self.overrides_panel.accountChosen.connect(self.select_account)
        self.preview_panel.unitChosen.connect(lambda fid: self.select_units([fid]))
        self._links = SignalLinks([
            (form.layerChosen, self._on_layer_chosen),
            (form.setupChanged, self._apply_setup),
            (form.toleranceChanged, controller.set_tolerance),
            (form.measureToleranceTyped, self._on_measure_tolerance),
            (controller.setupShown, self._show_setup),
            (controller.progress, self.status_label.setText),
            (controller.scenariosChanged, self._fill_scenarios),
            (service.message, self._show_message),
            (service.activeChanged, self._on_active_changed),
            (service.planChanged, self._on_plan_changed),
            (service.territoriesChanged, self._on_territories_changed),
            (service.figuresChanged, self._schedule_suggestions),
            (service.figuresChanged, lambda _names: self._update_status()),
            (service.unitsReady, self._on_units_ready),
            (service.previewChanged, self._on_preview_changed),
            (controller.accounts.changed, self._schedule_suggestions),
        ])
        self._update_actions()

    # -- setup -----------------------------------------------------------------------------------
    def _choice(self):
        """The setup the form shows, with the number of territories to build."""
        choice = self.setup_form.choice()
        if choice is not None:
            choice.territory_count = self.territory_toolbar.count_spin.value()
        return choice

    def _apply_setup(self) -> None:
        self.controller.apply_setup(self.setup_form.current_layer(), self._choice())

    def _on_layer_chosen(self, layer) -> None:
        self._show_setup(layer, self.controller.stored_plan_for(layer))
        self._apply_setup()

    def _show_setup(self, layer, plan) -> None:
        self.setup_form.fill(layer, plan, self.project)
        if plan is not None:
            self.territory_toolbar.count_spin.setValue(max(1, plan.territory_count))

    def _on_measure_tolerance(self, measure: str, text: str) -> None:
        try:
            value = parse_tolerance(text)
        except ValueError:
            self._show_message(tr("The tolerance of {} must be a percentage from 0 up (e.g. 10), or empty "
                                  "for the plan's tolerance.").format(measure), Qgis.MessageLevel.Warning)
            self._show_tolerances()
            return
        self.controller.set_measure_tolerance(measure, value)

    def _show_tolerances(self) -> None:
        service = self.service
        self.setup_form.show_tolerances(list(service.measures) if service.is_bound else [], service.plan)
        spin = self.territory_toolbar.time_limit_spin
        spin.blockSignals(True)
        try:
            spin.setValue(service.plan.time_limit if service.is_bound else DEFAULT_TIME_LIMIT)
        finally:
            spin.blockSignals(False)

    def create_field(self, name: str | None = None) -> bool:
        """Add a new text territory field to the chosen layer (asks for its name)."""
        layer = self.setup_form.current_layer()
        if layer is None:
            self._show_message(tr("Choose a units layer first."), Qgis.MessageLevel.Warning)
            return False
        if name is None:
            name = self._ask(tr("New territory field"), tr("Field name"), "territory")
            if name is None:
                return False
        if not self.controller.add_field(layer, name):
            return False
        self.setup_form.show_field(layer, name.strip())
        self._apply_setup()
        return True

    # -- the plan's signals ------------------------------------------------------------------------
    def _fold_setup(self) -> None:
        """Fold the setup away once a plan is set up (its units are in territories), once per plan:
        the table then shows its rows; the box's title says what the plan is."""
        service = self.service
        if not service.is_bound:
            self._folded_for = None
            self.setup_box.setTitle(tr("Plan setup"))
            self.setup_box.setCollapsed(False)
            return
        measures = ", ".join(service.measures) or tr("unit count")
        self.setup_box.setTitle(tr("Plan: {} · {} · {} · ±{}").format(
            service.layer.name(), service.field_name, measures, service.plan.tolerance_text()))
        key = (service.layer_id, service.field_name)
        if key != self._folded_for and any(service.ledger.counts[service.ledger.listed()]):
            self._folded_for = key
            self.setup_box.setCollapsed(True)

    def _on_plan_changed(self) -> None:
        if self.service.is_bound:
            self.setup_form.show_table(self.service.table())
        self._fold_setup()
        self._fill_scenarios()
        self._show_tolerances()
        for tool, _action in self.paint_toolbar.tools():
            tool.set_layer(self.service.layer)
        self.paint_toolbar.account_tool.set_layer(self.controller.accounts.layer)
        self._on_territories_changed()
        self._update_status()

    def _on_territories_changed(self) -> None:
        self._fold_setup()
        self._update_status()
        names = self.service.territory_names
        if self.service.is_bound and names and self.territory_toolbar.count_spin.value() != len(names):
            self.territory_toolbar.count_spin.setValue(len(names))
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
        # the name takes the width the other columns leave (names are elided): no sideways scrolling
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        if self.model.columnCount():
            header.setSectionResizeMode(self.model.column_of("name"), QHeaderView.ResizeMode.Stretch)
        self._select_row(self.service.active)
        QTimer.singleShot(0, self.fit_table)

    def fit_table(self, most: int = 12) -> None:
        """Give the territory table the height of its rows (up to ``most``) in the splitter."""
        if not sip.isdeleted(self):
            fit_table_rows(self.splitter, self.table, self.proxy.rowCount(), most)

    def _apply_compact(self) -> None:
        compact = not self.territory_toolbar.details_action.isChecked()
        for column in range(self.model.columnCount()):
            kind = self.model.column_kind(column)[0]
            self.table.setColumnHidden(column, compact and kind not in self.COMPACT_KINDS)

    def _show_message(self, text: str, level) -> None:
        self.iface.messageBar().pushMessage(tr("Territory Planner"), text, level, 8)

    def _confirm(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(self, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.Yes)
        return answer == QMessageBox.StandardButton.Yes

    def _update_status(self) -> None:
        """The status line: the one figure the message bar, the preview and the table give too."""
        self.status_label.setText(plan_status(self.service))

    def _update_actions(self) -> None:
        bound = self.service.is_bound
        for action in self.paint_toolbar.plan_actions() + self.territory_toolbar.plan_actions():
            action.setEnabled(bound)
        for action in self.paint_toolbar.account_actions():
            action.setEnabled(bound and self.controller.accounts.is_bound)

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

    def zoom_to(self, name: str | None) -> None:
        """Zoom the map to a territory's units."""
        if name is not None and self.service.is_bound:
            zoom_to_units(self.canvas, self.service.layer, self.service.ledger.fids_of(name),
                          self.project.transformContext())

    # -- painting --------------------------------------------------------------------------------
    def _use_tool(self, tool, checked: bool) -> None:
        if checked:
            self.canvas.setMapTool(tool)
        elif self.canvas.mapTool() is tool:
            self.canvas.unsetMapTool(tool)

    def _painting_into(self, hint: str) -> tuple[bool, str | None]:
        """(whether to paint, the territory): None in unassign mode; no painting without an active one."""
        if self.paint_toolbar.erase_action.isChecked():
            return True, None
        if self.service.active is None:
            self._show_message(hint, Qgis.MessageLevel.Info)
            return False, None
        return True, self.service.active

    def paint(self, fids: list) -> int:
        """Units picked on the map go to the active territory (or out of it in unassign mode)."""
        go, name = self._painting_into(tr("Choose the territory to paint with: select a row of the table, or "
                                          "use the eyedropper."))
        self._accounts_last = False
        return self.service.assign(fids, name) if go else 0

    def paint_accounts(self, fids: list) -> int:
        """Accounts picked on the map are kept by the active territory (an override; unassign mode:
        their override is cleared)."""
        go, name = self._painting_into(tr("Choose the territory that keeps the accounts: select a row of the "
                                          "table."))
        self._accounts_last = True
        return self.controller.accounts.paint(fids, name) if go else 0

    def reset_override(self) -> int:
        """The accounts selected on the accounts layer go back to their unit's territory."""
        self._accounts_last = True
        return self.controller.accounts.reset()

    def select_account(self, fid: int) -> int:
        """Select an account on the accounts layer and zoom the map to it."""
        return select_units(self.canvas, self.controller.accounts.layer, [fid], zoom=True)

    def pick_territory(self, fids: list) -> None:
        name = self.service.ledger.territory_of_fid(fids[0]) if fids else None
        if name is None:
            self._show_message(tr("That unit is not in a territory."), Qgis.MessageLevel.Info)
            return
        self.service.set_active(name)

    def assign_selected(self) -> int:
        """The features selected on the layer go to the active territory (or out of it)."""
        go, name = self._painting_into(tr("Choose a territory in the table first."))
        layer = self.service.layer
        if not go or layer is None:
            return 0
        selected = layer.selectedFeatureIds()
        if not selected:
            self._show_message(tr("Select some features of “{}” first (e.g. with QGIS's selection tools).")
                               .format(layer.name()), Qgis.MessageLevel.Info)
            return 0
        return self.service.assign(selected, name)

    def lock_selected_units(self, locked: bool) -> int:
        if not self.service.is_bound:
            return 0
        selected = self.service.layer.selectedFeatureIds()
        if not selected:
            self._show_message(tr("Select the units to lock or unlock first."), Qgis.MessageLevel.Info)
            return 0
        changed = self.service.set_units_locked(selected, locked)
        self.controller.save_plan()
        return changed

    def _edited_layer(self):
        """The layer the panel's undo and redo act on: the accounts after painting accounts, else the units."""
        accounts = self.controller.accounts.layer
        return accounts if self._accounts_last and accounts is not None else self.service.layer

    def undo(self) -> None:
        if self.service.is_bound:
            self._edited_layer().undoStack().undo()

    def redo(self) -> None:
        if self.service.is_bound:
            self._edited_layer().undoStack().redo()

    # -- engine ----------------------------------------------------------------------------------
    def build(self) -> EngineTask | None:
        return self.controller.build(self.territory_toolbar.count_spin.value())

    def rebalance(self) -> EngineTask | None:
        return self.controller.rebalance(self.territory_toolbar.cap_spin.value())

    # -- scenarios, packets and the change log ---------------------------------------------------
    def _fill_scenarios(self) -> None:
        scenarios = self.controller.scenarios
        self.setup_form.show_scenarios(scenarios.names(), scenarios.baseline, self.service.field_name,
                                       self.service.is_bound)
        if self.service.is_bound and self.setup_form.field_combo.currentField() != self.service.field_name:
            with self.setup_form.filling():  # a scenario switched by the controller
                self.setup_form.field_combo.setField(self.service.field_name)

    # -- preview before apply --------------------------------------------------------------------
    def _on_preview_changed(self, preview) -> None:
        self._update_status()
        moves = preview_moves(self.service, preview) if preview is not None else []
        self.preview_panel.show_preview(preview, moves, self.service.display_name)
        if preview is None:
            self.highlight.clear()
        else:
            self.highlight.show(self.service.layer, self.service.preview_fids())

    def apply_preview(self) -> int:
        """Apply the proposal shown in the panel (one undoable edit)."""
        return self.service.apply_preview()

    def discard_preview(self) -> None:
        self.service.discard_preview()

    # -- what follows the active territory -------------------------------------------------------
    def _schedule_suggestions(self, *_args) -> None:
        self._suggestions_timer.start()

    def refresh_suggestions(self) -> None:
        """The suggestions, the stray pieces on the map and the travel times, for the plan as it is now."""
        self.pieces_highlight.show(self.service.layer, self.service.ledger.stray_fids())
        self.model.show_rep_flags(rep_home_flags(self.service))
        self.territory_labels.show(self.service)
        self.refresh_travel()
        self.suggestions_panel.refresh()
        self.overrides_panel.refresh()

    def refresh_travel(self) -> None:
        """The active territory's travel times by road (when the plan has a road network)."""
        figures = self.controller.travel_of_active()
        if figures is None:
            self.travel_label.setVisible(False)
            return
        text = tr("By road from its centre unit: mean {:.1f} min (workload-weighted {:.1f}), longest {:.1f} min")\
            .format(figures["mean"], figures["weighted"], figures["max"])
        if figures["off_network"]:
            text += tr("; {} unit(s) off the network").format(figures["off_network"])
        self.travel_label.setText(text)
        self.travel_label.setVisible(True)

    def select_units(self, fids: list[int], zoom: bool = True) -> int:
        """Select units on the layer (QGIS's own selection) and zoom the map to them."""
        return select_units(self.canvas, self.service.layer, fids, zoom)

    # -- lifetime --------------------------------------------------------------------------------
    def unload(self) -> None:
        """Disconnect from QGIS objects before the plugin goes away."""
        self._suggestions_timer.stop()
        self.controller.cancel_tasks()
        self._links.cut()
        self.setup_form.unload()
        self.suggestions_panel.unload()
        self.engine_progress.unload()
        self.overrides_panel.unload()
        self.feedback_panel.unload()
        self.highlight.close()
        self.pieces_highlight.close()
        self.territory_labels.close()
        for tool, _action in self.paint_toolbar.tools():
            if self.canvas.mapTool() is tool:
                self.canvas.unsetMapTool(tool)
        self.table.setModel(None)
        if self._owns_controller:
            self.controller.unload()
            self.service.close()
