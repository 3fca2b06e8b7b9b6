"""The Territory Planner dock panel: a view of the plan.

The dock shows the setup form (``ui/setup_form.py``), the territory list (a model over the
service's figures), the painting tools, the preview of a proposal and the suggestions. What a
choice means for the plan is the controller's (``ui/plan_controller.py``); every change to the plan
goes through the assignment service; the dock computes nothing and writes none of their state.
"""

from __future__ import annotations

from qgis.core import Qgis, QgsProject
from qgis.gui import QgsDockWidget
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QSortFilterProxyModel, Qt, QTimer
from qgis.PyQt.QtGui import QColor
from qgis.PyQt.QtWidgets import (
    QHeaderView,
    QMessageBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ..core.engine import DEFAULT_TIME_LIMIT
from ..i18n import tr
from ..layers.signal_links import SignalLinks
from .assignment_service import AssignmentService
from .deviation_bar import DeviationBarDelegate
from .feedback_panel import FeedbackPanel
from .map_view import TerritoryLabels, UnitsOutline, zoom_to_units
from .overrides_panel import OverridesPanel
from .paint_actions import PaintActions
from .panel_actions import PlanDialogs, TerritoryActions
from .panel_layout import PanelFrame, fit_table_rows, make_room, plan_status, setup_box, territory_table
from .plan_controller import PlanController
from .plan_outputs import rep_home_flags
from .preview_panel import PreviewPanel, preview_moves
from .setup_form import SetupForm, parse_tolerance
from .suggestions_panel import SuggestionsPanel
from .tasks import EngineTask
from .territory_list_model import SORT_ROLE, TERRITORY_ROLE
from .toolbars import PaintToolbar, TerritoryToolbar


class TerritoryDock(PaintActions, TerritoryActions, PlanDialogs, QgsDockWidget):
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
        self._folded_for = None  # the plan (layer id, field) the setup was last folded away for
        self._scroll_before_preview = None  # where the panel was scrolled before a proposal scrolled it
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
        self.setup_form = SetupForm(self.controller.preferences.default_tolerance, body)
        self.setup_box = setup_box(body, self.setup_form)
        outer.addWidget(self.setup_box)

        self.paint_toolbar = PaintToolbar(self.canvas, body)
        outer.addWidget(self.paint_toolbar)
        self.territory_toolbar = TerritoryToolbar(body, self.paint_toolbar.iconSize())
        outer.addWidget(self.territory_toolbar)
        outer.addWidget(self.territory_toolbar.engine_row(body))

        splitter = self.splitter = QSplitter(Qt.Orientation.Vertical, body)
        self.table = territory_table(splitter, self.proxy)
        self.bar_delegate = DeviationBarDelegate(self.table)
        self.preview_panel = PreviewPanel(splitter)
        self.suggestions_panel = SuggestionsPanel(self.service, splitter)
        self.overrides_panel = OverridesPanel(self.service, self.controller.accounts, splitter)
        self.feedback_panel = FeedbackPanel(self.service, splitter, self.controller.accounts)
        for panel, stretch in enumerate((3, 2, 1, 1)):
            splitter.setStretchFactor(panel, stretch)
        outer.addWidget(splitter, 1)

        self.highlight = UnitsOutline(self.canvas)
        self.pieces_highlight = UnitsOutline(self.canvas, QColor(220, 0, 0), dashed=True)
        self.territory_labels = TerritoryLabels(self.canvas)
        frame = PanelFrame(body, self.controller, self)
        self.engine_progress, self.status_label, self.travel_label = \
            frame.engine_progress, frame.status_label, frame.travel_label
        self.panel_scroll = frame.scroll
        self.setWidget(frame)

    def _connect(self) -> None:
        form, territory = self.setup_form, self.territory_toolbar
        service, controller = self.service, self.controller
        self._connect_paint_toolbar()
        for action, slot in ((territory.new_action, lambda: self.new_territory()),
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
            if self._scroll_before_preview is not None:
                QTimer.singleShot(0, self._after_preview)
        else:
            self.highlight.show(self.service.layer, self.service.preview_fids())
            # the proposal takes its room in the splitter (the panel grows and scrolls on a short
            # screen), then Apply and Discard are scrolled into view once the panel is laid out
            if self._scroll_before_preview is None:
                self._scroll_before_preview = self.panel_scroll.verticalScrollBar().value()
            make_room(self.splitter, self.preview_panel)
            QTimer.singleShot(0, self._show_preview_buttons)

    def _show_preview_buttons(self) -> None:
        if not sip.isdeleted(self) and self.preview_panel.isVisible():
            self.panel_scroll.ensureWidgetVisible(self.preview_panel.apply_button, 0, 8)

    def _after_preview(self) -> None:
        """The proposal gone: the table takes its rows' height again and the panel scrolls back."""
        if sip.isdeleted(self) or self.preview_panel.isVisible() or self._scroll_before_preview is None:
            return
        self.fit_table()
        self.panel_scroll.verticalScrollBar().setValue(self._scroll_before_preview)
        self._scroll_before_preview = None

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
        self._release_tools()
        self.table.setModel(None)
        if self._owns_controller:
            self.controller.unload()
            self.service.close()
