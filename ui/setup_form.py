"""The panel's setup form: the units layer, its territory field and scenario, the balance fields, the
workload index and their tolerances, and the optional rep, lock, unit-name, sales and potential
fields, territory table and road network.

The form only shows and collects choices: :meth:`SetupForm.choice` says what the user picked,
:meth:`SetupForm.fill` shows a plan (or good guesses for a new layer). What a choice means for the
plan is the controller's business (``ui/plan_controller.py``).
"""

from __future__ import annotations

from contextlib import contextmanager

from qgis.core import QgsApplication, QgsFieldProxyModel, QgsProject, QgsVectorLayer
from qgis.gui import QgsCheckableComboBox, QgsFieldComboBox, QgsMapLayerComboBox
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QWidget,
)

from ..compat import line_layers, point_layers, polygon_and_point_layers, vector_layers
from ..i18n import tr
from ..layers.edit_checks import territory_field_problem
from ..layers.signal_links import SignalLinks
from ..layers.values import likely_name_field, likely_workloads, measure_candidates
from .settings import PlanSettings

#: field names that are taken for the territory field of a new layer
TERRITORY_FIELD_NAMES = ("territory", "territories", "district", "region", "zone")


class SetupForm(QWidget):
    """The setup rows of the panel. Signals say what the user changed; nothing is said while the form
    is being filled (:meth:`filling`)."""

    #: a layer was picked in the layer row (the layer, or None)
    layerChosen = pyqtSignal(object)  # noqa: N815 - Qt's naming
    #: a field, the balance fields, the territory table or the road network changed
    setupChanged = pyqtSignal()  # noqa: N815 - Qt's naming
    #: the plan's tolerance (percent)
    toleranceChanged = pyqtSignal(float)  # noqa: N815 - Qt's naming
    #: a balance field's own tolerance was typed: the measure, and the text typed
    measureToleranceTyped = pyqtSignal(str, str)  # noqa: N815 - Qt's naming

    def __init__(self, default_tolerance: float, parent=None):
        super().__init__(parent)
        self._filling = False
        self._index_shown = ""  # the index weights as last said to the panel
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        self.layer_combo = QgsMapLayerComboBox(self)
        self.layer_combo.setFilters(polygon_and_point_layers())
        self.layer_combo.setAllowEmptyLayer(True)
        self.layer_combo.setLayer(None)
        self.layer_combo.setObjectName("territoryLayerCombo")
        form.addRow(tr("Units layer"), self.layer_combo)

        kinds = QgsFieldProxyModel.Filter
        self.field_combo = self._field_picker("territoryFieldCombo", "", allow_empty=True,
                                              filters=kinds.String | kinds.Int | kinds.LongLong)
        self.new_field_button = self._tool_button("", "/mActionNewAttribute.svg", tr(
            "Create a new territory field on the layer (saved with the layer's edits)"))
        form.addRow(tr("Territory field"), self._row(self.field_combo, self.new_field_button))

        self.scenario_combo = QComboBox(self)
        self.scenario_combo.setObjectName("territoryScenarioCombo")
        self.scenario_combo.setToolTip(tr("Scenarios: alternative alignments, each a territory field of the "
                                          "layer; choose one to work on it"))
        self.new_scenario_button = self._tool_button("territoryNewScenario", "/mActionDuplicateLayer.svg",
                                                     tr("New scenario: a copy of the current alignment in a new field"))
        self.scenario_menu_button = self._tool_button("territoryScenarioMenu", "", "")
        self.scenario_menu_button.setText("…")
        self.scenario_menu_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.scenario_menu_button)
        #: the scenario menu's actions (the panel connects them)
        self.compare_scenarios_action = menu.addAction(tr("Compare scenarios…"))
        self.promote_scenario_action = menu.addAction(tr("Make this scenario the baseline"))
        self.filter_scenario_action = menu.addAction(tr("Segment filter of this scenario…"))
        self.rename_scenario_action = menu.addAction(tr("Rename scenario…"))
        self.delete_scenario_action = menu.addAction(tr("Delete scenario…"))
        self.scenario_menu_button.setMenu(menu)
        form.addRow(tr("Scenario"), self._row(self.scenario_combo, self.new_scenario_button,
                                              self.scenario_menu_button))

        self.measures_combo = QgsCheckableComboBox(self)
        self.measures_combo.setDefaultText(tr("unit count"))
        self.measures_combo.setObjectName("territoryMeasures")
        self.measures_combo.setToolTip(tr("Numeric fields to balance; none: balance the number of units"))
        form.addRow(tr("Balance"), self.measures_combo)

        # INDEX_WEIGHTS: the workload index, balanced (and shown) as one more measure, "index"
        self.index_edit = QLineEdit(self)
        self.index_edit.setObjectName("territoryIndexWeights")
        self.index_edit.setPlaceholderText(tr("e.g. accounts:0.6,sales:0.1,potential:0.3"))
        self.index_edit.setToolTip(tr(
            "Optional workload index, field:weight,…: each field as its share of the layer's total, weighted, scaled "
            "so the average territory scores 1,000. It is balanced beside the balance fields (its tolerance: the "
            "plan's, or its own below)."))
        form.addRow(tr("Index"), self.index_edit)

        self.tolerance_spin = QDoubleSpinBox(self)
        self.tolerance_spin.setRange(0.0, 99.0)
        self.tolerance_spin.setDecimals(1)
        self.tolerance_spin.setSingleStep(0.5)
        self.tolerance_spin.setSuffix(" %")
        self.tolerance_spin.setValue(default_tolerance)
        form.addRow(tr("Tolerance"), self.tolerance_spin)

        # TOLERANCES: a tolerance of its own per balance field (empty: the plan's tolerance above)
        self.tolerances_table = QTableWidget(0, 2, self)
        self.tolerances_table.setObjectName("territoryTolerances")
        self.tolerances_table.setHorizontalHeaderLabels([tr("Balance field"), tr("Tolerance %")])
        self.tolerances_table.verticalHeader().setVisible(False)
        self.tolerances_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.tolerances_table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.tolerances_table.setToolTip(tr(
            "A tolerance of its own per balance field (e.g. visits 5 %, sales 10 %): Build, Rebalance and the "
            "table judge each field by it. Empty: the tolerance above."))
        self.tolerances_table.setVisible(False)
        self.tolerances_label = QLabel(tr("Per field"), self)
        self.tolerances_label.setVisible(False)
        form.addRow(self.tolerances_label, self.tolerances_table)

        self.rep_combo = self._field_picker("", tr("Optional field naming each unit's rep"))
        form.addRow(tr("Rep field"), self.rep_combo)
        self.lock_field_combo = self._field_picker("", tr("Optional field: units with a non-empty, non-zero value "
                                                          "are locked"))
        form.addRow(tr("Lock field"), self.lock_field_combo)
        self.table_combo = self._layer_picker("territoryTableCombo", vector_layers(), tr(
            "Optional territory table (the Territories output of Build or Rebalance): names, reps, colours and "
            "locks by territory code; renaming then changes the name, never the code"))
        form.addRow(tr("Territory table"), self.table_combo)
        self.reps_combo = self._layer_picker("territoryRepsCombo", point_layers(), tr(
            "Optional reps layer (a point at each rep's home): Assign reps matches them to territories, the "
            "packets show their homes, and a rep living outside their territory is flagged"))
        self.rep_name_combo = self._field_picker("territoryRepNameField", tr("The reps layer's field naming each rep"))
        form.addRow(tr("Reps"), self._row(self.reps_combo, self.rep_name_combo))
        self.network_combo = self._layer_picker("territoryNetworkCombo", line_layers(), tr(
            "Optional road network (a line layer, 50 km/h unless Build is given speeds): the panel shows the "
            "active territory's travel times"))
        form.addRow(tr("Road network"), self.network_combo)
        self.unit_name_combo = self._field_picker("territoryUnitNameField", tr(
            "Optional field naming each unit (county, ZIP, account) in suggestions, previews and the change log; "
            "feature ids otherwise"))
        form.addRow(tr("Unit names"), self.unit_name_combo)
        numbers = QgsFieldProxyModel.Filter.Numeric
        self.sales_combo = self._field_picker("territorySalesField", tr(
            "Optional sales per unit: the map's penetration view colours territories by sales / potential"),
            filters=numbers)
        self.potential_combo = self._field_picker("territoryPotentialField", tr(
            "Optional potential per unit, for the map's penetration view"), filters=numbers)
        form.addRow(tr("Sales, potential"), self._row(self.sales_combo, self.potential_combo))

        # accounts beside the units: counted where they are aligned, overrides painted on the map
        self.accounts_combo = self._layer_picker("territoryAccountsCombo", point_layers(), tr(
            "Optional accounts (points): each counts for its unit's territory, or for its override; their numeric "
            "fields can be balanced"))
        form.addRow(tr("Accounts"), self.accounts_combo)
        self.account_id_combo = self._field_picker("territoryAccountIdField", tr("The field that tells accounts "
                                                                                "apart"), allow_empty=False)
        form.addRow(tr("Account id"), self.account_id_combo)
        self.override_combo = self._field_picker("territoryOverrideField", tr(
            "The accounts' override field: a territory code when an account is kept by a territory other than its "
            "unit's"), allow_empty=False, filters=kinds.String | kinds.Int | kinds.LongLong)
        form.addRow(tr("Override field"), self.override_combo)

        changed = self._say_changed
        self._links = SignalLinks([
            (self.layer_combo.layerChanged, self._on_layer_chosen),
            (self.field_combo.fieldChanged, changed),
            (self.measures_combo.checkedItemsChanged, changed),
            (self.rep_combo.fieldChanged, changed),
            (self.lock_field_combo.fieldChanged, changed),
            (self.unit_name_combo.fieldChanged, changed),
            (self.sales_combo.fieldChanged, changed),
            (self.potential_combo.fieldChanged, changed),
            (self.index_edit.editingFinished, self._on_index_typed),
            (self.table_combo.layerChanged, changed),
            (self.network_combo.layerChanged, changed),
            (self.accounts_combo.layerChanged, self._on_accounts_chosen),
            (self.account_id_combo.fieldChanged, changed),
            (self.override_combo.fieldChanged, changed),
            (self.reps_combo.layerChanged, self._on_reps_chosen),
            (self.rep_name_combo.fieldChanged, changed),
            (self.tolerance_spin.valueChanged, self._on_tolerance),
            (self.tolerances_table.itemChanged, self._on_tolerance_typed),
        ])

    # -- building ------------------------------------------------------------------------------------
    def _field_picker(self, name: str, tip: str, allow_empty: bool = True, filters=None) -> QgsFieldComboBox:
        combo = QgsFieldComboBox(self)
        if filters is not None:
            combo.setFilters(filters)
        combo.setAllowEmptyFieldName(allow_empty)
        if name:
            combo.setObjectName(name)
        if tip:
            combo.setToolTip(tip)
        return combo

    def _layer_picker(self, name: str, filters, tip: str) -> QgsMapLayerComboBox:
        combo = QgsMapLayerComboBox(self)
        combo.setObjectName(name)
        combo.setFilters(filters)
        combo.setAllowEmptyLayer(True)
        combo.setLayer(None)
        combo.setToolTip(tip)
        return combo

    def _tool_button(self, name: str, theme_icon: str, tip: str) -> QToolButton:
        button = QToolButton(self)
        if name:
            button.setObjectName(name)
        if theme_icon:
            button.setIcon(QgsApplication.getThemeIcon(theme_icon))
        if tip:
            button.setToolTip(tip)
        return button

    def _row(self, main: QWidget, *buttons: QWidget) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(main, 1)
        for button in buttons:
            row.addWidget(button)
        return row

    # -- what the user says ----------------------------------------------------------------------------
    @contextmanager
    def filling(self):
        """While the form is filled from a plan it says nothing about its changes."""
        before, self._filling = self._filling, True
        try:
            yield
        finally:
            self._filling = before

    def _say_changed(self, *_args) -> None:
        if not self._filling:
            self.setupChanged.emit()

    def _on_layer_chosen(self, layer) -> None:
        if not self._filling:
            self.layerChosen.emit(layer if isinstance(layer, QgsVectorLayer) else None)

    def _on_index_typed(self) -> None:
        # editingFinished also comes when the focus leaves an unchanged text: only a change counts
        text = self.index_edit.text().strip()
        if text != self._index_shown:
            self._index_shown = text
            self._say_changed()

    def _on_reps_chosen(self, layer) -> None:
        with self.filling():
            self.rep_name_combo.setLayer(layer)
            if layer is not None and not self.rep_name_combo.currentField():
                self.rep_name_combo.setField(likely_name_field(layer))
        self._say_changed()

    def _on_tolerance(self, value: float) -> None:
        if not self._filling:
            self.toleranceChanged.emit(float(value))

    def _on_tolerance_typed(self, item) -> None:
        measure = item.data(Qt.ItemDataRole.UserRole)
        if item.column() == 1 and measure and not self._filling:
            self.measureToleranceTyped.emit(measure, item.text())

    def _on_accounts_chosen(self, layer) -> None:
        with self.filling():
            self._show_accounts(self.current_layer(), layer if isinstance(layer, QgsVectorLayer) else None)
        self._say_changed()

    def _show_accounts(self, units: QgsVectorLayer | None, accounts: QgsVectorLayer | None,
                       plan: PlanSettings | None = None) -> None:
        """Point the account fields at ``accounts`` and offer their numeric fields as measures too."""
        for combo in (self.account_id_combo, self.override_combo):
            combo.setLayer(accounts)
        if accounts is not None and plan is None:
            self.account_id_combo.setField(next((f.name() for f in accounts.fields()
                                                 if f.name().lower() in ("id", "account_id", "account")), ""))
            self.override_combo.setField(next((f.name() for f in accounts.fields()
                                               if "override" in f.name().lower()), ""))
        checked = list(self.measures_combo.checkedItems())
        own = measure_candidates(units) if units is not None else []
        extra = [name for name in measure_candidates(accounts) if name not in own] if accounts is not None else []
        self.measures_combo.clear()
        self.measures_combo.addItems(own + extra)
        self.measures_combo.setCheckedItems([m for m in checked if m in own + extra])

    def current_layer(self) -> QgsVectorLayer | None:
        layer = self.layer_combo.currentLayer()
        return layer if isinstance(layer, QgsVectorLayer) else None

    def choice(self) -> PlanSettings | None:
        """The plan's setup as the form shows it (layer, fields, measures, tolerance, table, network);
        None until a layer and a territory field are chosen."""
        layer = self.current_layer()
        field = self.field_combo.currentField()
        if layer is None or not field:
            return None
        table = self.table_combo.currentLayer()
        network = self.network_combo.currentLayer()
        accounts = self.accounts_combo.currentLayer()
        reps = self.reps_combo.currentLayer()
        return PlanSettings(layer_id=layer.id(), territory_field=field,
                            accounts_layer=accounts.id() if accounts is not None else "",
                            account_id_field=self.account_id_combo.currentField() if accounts is not None else "",
                            override_field=self.override_combo.currentField() if accounts is not None else "",
                            network_layer=network.id() if network is not None else "",
                            territory_table=table.id() if table is not None and table is not layer else "",
                            unit_name_field=self.unit_name_combo.currentField(),
                            measures=list(self.measures_combo.checkedItems()),
                            tolerance=self.tolerance_spin.value(), rep_field=self.rep_combo.currentField(),
                            lock_field=self.lock_field_combo.currentField(),
                            index_weights=self.index_edit.text().strip(),
                            sales_field=self.sales_combo.currentField(),
                            potential_field=self.potential_combo.currentField(),
                            reps_layer=reps.id() if reps is not None else "",
                            rep_name_field=self.rep_name_combo.currentField() if reps is not None else "")

    # -- showing a plan --------------------------------------------------------------------------------
    def fill(self, layer: QgsVectorLayer | None, plan: PlanSettings | None = None,
             project: QgsProject | None = None) -> None:
        """Point the field pickers at ``layer`` and show ``plan``'s choices (or guesses for a new layer)."""
        with self.filling():
            self.layer_combo.setLayer(layer)
            for combo in (self.field_combo, self.rep_combo, self.lock_field_combo, self.unit_name_combo,
                          self.sales_combo, self.potential_combo):
                combo.setLayer(layer)
            self.measures_combo.clear()
            self._show_index(plan.index_weights if plan is not None else "")
            if layer is None:
                return
            numeric = measure_candidates(layer)
            self.measures_combo.addItems(numeric)
            if plan is None:
                self.field_combo.setField(guess_territory_field(layer))
                self.rep_combo.setField("")
                self.lock_field_combo.setField("")
                self.sales_combo.setField("")
                self.potential_combo.setField("")
                self.unit_name_combo.setField(likely_name_field(layer))
                self.measures_combo.setCheckedItems(likely_workloads(numeric))
                self.table_combo.setLayer(None)  # another layer's table is not this one's
                return
            project = project or QgsProject.instance()
            self.field_combo.setField(plan.territory_field)
            self.measures_combo.setCheckedItems([m for m in plan.measures if m in numeric])
            self.rep_combo.setField(plan.rep_field)
            self.lock_field_combo.setField(plan.lock_field)
            self.unit_name_combo.setField(plan.unit_name_field)
            self.sales_combo.setField(plan.sales_field)
            self.potential_combo.setField(plan.potential_field)
            self.table_combo.setLayer(project.mapLayer(plan.territory_table) if plan.territory_table else None)
            self.network_combo.setLayer(project.mapLayer(plan.network_layer) if plan.network_layer else None)
            reps = project.mapLayer(plan.reps_layer) if plan.reps_layer else None
            self.reps_combo.setLayer(reps)
            self.rep_name_combo.setLayer(reps)
            self.rep_name_combo.setField(plan.rep_name_field)
            self.tolerance_spin.setValue(plan.tolerance)
            accounts = project.mapLayer(plan.accounts_layer) if plan.accounts_layer else None
            accounts = accounts if isinstance(accounts, QgsVectorLayer) else None
            self.accounts_combo.setLayer(accounts)
            self._show_accounts(layer, accounts, plan)
            if accounts is not None:
                self.account_id_combo.setField(plan.account_id_field)
                self.override_combo.setField(plan.override_field)
                self.measures_combo.setCheckedItems(plan.measures)

    def _show_index(self, text: str) -> None:
        self.index_edit.setText(text)
        self._index_shown = text.strip()

    def show_table(self, table: QgsVectorLayer | None) -> None:
        """Show ``table`` (the plan's territory table, perhaps just made by the panel) in its row."""
        with self.filling():
            self.table_combo.setLayer(table)

    def show_field(self, layer: QgsVectorLayer, name: str) -> None:
        """Show ``name`` (a field just added to ``layer``) as the territory field."""
        with self.filling():
            for combo in (self.field_combo, self.rep_combo, self.lock_field_combo):
                combo.setLayer(layer)
            self.field_combo.setField(name)

    def show_scenarios(self, names: list[str], baseline: str, current: str, bound: bool) -> None:
        combo = self.scenario_combo
        combo.blockSignals(True)
        try:
            combo.clear()
            for name in names:
                combo.addItem(name)
                if name == baseline and len(names) > 1:
                    combo.setItemData(combo.count() - 1, tr("Baseline"), Qt.ItemDataRole.ToolTipRole)
            combo.setCurrentIndex(names.index(current) if current in names else -1)
        finally:
            combo.blockSignals(False)
        for widget in (combo, self.new_scenario_button, self.scenario_menu_button):
            widget.setEnabled(bound)

    def show_tolerances(self, measures: list[str], plan: PlanSettings) -> None:
        """One row per balance field: its name and its own tolerance (empty: the plan's)."""
        table = self.tolerances_table
        table.blockSignals(True)
        try:
            table.setRowCount(len(measures))
            for row, measure in enumerate(measures):
                name = QTableWidgetItem(measure)
                name.setFlags(Qt.ItemFlag.ItemIsEnabled)
                table.setItem(row, 0, name)
                own = plan.tolerances.get(measure)
                value = QTableWidgetItem("" if own is None else f"{own:g}")
                value.setData(Qt.ItemDataRole.UserRole, measure)
                value.setTextAlignment(int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter))
                value.setToolTip(tr("Tolerance of {} in percent; empty: the plan's {:g} %").format(
                    measure, plan.tolerance))
                table.setItem(row, 1, value)
        finally:
            table.blockSignals(False)
        shown = len(measures) > 1
        table.setVisible(shown)
        self.tolerances_label.setVisible(shown)
        if shown:
            height = table.horizontalHeader().height() + sum(table.rowHeight(r) for r in range(len(measures)))
            table.setFixedHeight(height + 2 * table.frameWidth())

    def unload(self) -> None:
        self._links.cut()


def guess_territory_field(layer: QgsVectorLayer) -> str:
    """A field of ``layer`` named like a territory field that can hold territories ("" when none)."""
    for field in layer.fields():
        if field.name().lower() in TERRITORY_FIELD_NAMES and territory_field_problem(layer, field.name()) is None:
            return field.name()
    return ""


def parse_tolerance(text: str) -> float | None:
    """A tolerance typed in percent ("7,5 %" reads 7.5); None for empty; raises ValueError unless it
    is a number from 0 up to 1000."""
    text = text.strip().rstrip("%").strip().replace(",", ".")
    if not text:
        return None
    value = float(text)
    if not 0.0 <= value < 1000.0:
        raise ValueError(text)
    return value
