"""The panel's two toolbars: painting (the map tools, unassign, locks, undo) and territories (new,
rename, merge, delete, the full table, packets, the change log, Build and Rebalance with their
count, time limit and cap, and the map's view). They hold actions, spin boxes and a choice; the panel
connects them."""

from __future__ import annotations

from qgis.core import QgsApplication
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QMenu,
    QSpinBox,
    QToolBar,
    QToolButton,
    QWidget,
)

try:  # Qt6 (QGIS 4): QAction lives in QtGui
    from qgis.PyQt.QtGui import QAction
except ImportError:  # Qt5
    from qgis.PyQt.QtWidgets import QAction

from ..core.engine import DEFAULT_TIME_LIMIT
from ..i18n import tr
from ..resources import icon
from .map_tools import EyedropperTool, LassoTool, PaintTool
from .thematic_view import MODES as MAP_VIEWS


def _action(toolbar: QToolBar, icon_, text: str, name: str, checkable: bool = False) -> QAction:
    action = QAction(icon_, text, toolbar)
    action.setObjectName(name)
    action.setToolTip(text)
    action.setCheckable(checkable)
    toolbar.addAction(action)
    return action


class PaintToolbar(QToolBar):
    """Paint, lasso and eyedropper (each a map tool of ``canvas``), unassign mode, assign the
    selection, lock and unlock units, undo and redo."""

    def __init__(self, canvas, parent=None):
        super().__init__(parent)
        self.setIconSize(self.iconSize() * 0.8)
        theme = QgsApplication.getThemeIcon
        self.paint_tool = PaintTool(canvas)
        self.lasso_tool = LassoTool(canvas)
        self.eyedropper_tool = EyedropperTool(canvas)
        #: paints accounts (the plan's accounts layer): their override becomes the active territory
        self.account_tool = PaintTool(canvas)
        self.paint_action = _action(self, icon("paint.svg"), tr("Paint: click a unit or drag a rectangle"), "paint",
                                    checkable=True)
        self.lasso_action = _action(self, icon("lasso.svg"), tr("Lasso: draw around units"), "lasso", checkable=True)
        self.eyedropper_action = _action(self, icon("eyedropper.svg"),
                                         tr("Eyedropper: click a unit to make its territory active"), "eyedropper",
                                         checkable=True)
        self.paint_accounts_action = _action(self, icon("paint.svg"), tr(
            "Paint accounts: click an account or drag a rectangle; the active territory keeps them (an override)"),
            "territoryPaintAccounts", checkable=True)
        for tool, action in self.tools():
            tool.setAction(action)
        self.erase_action = _action(self, icon("eraser.svg"), tr("Unassign: painting removes units from their "
                                                                 "territory"), "erase", checkable=True)
        self.assign_selected_action = _action(self, theme("/mActionSelectRectangle.svg"),
                                              tr("Assign the selected features to the active territory"),
                                              "assign_selected")
        self.reset_override_action = _action(self, theme("/mActionUndo.svg"), tr(
            "Reset override: the selected accounts go back to their unit's territory"), "territoryResetOverride")
        self.addSeparator()
        self.lock_units_action = _action(self, theme("/locked.svg"), tr("Lock the selected units"), "lock_units")
        self.unlock_units_action = _action(self, theme("/unlocked.svg"), tr("Unlock the selected units"),
                                           "unlock_units")
        self.addSeparator()
        self.undo_action = _action(self, theme("/mActionUndo.svg"), tr("Undo"), "undo")
        self.redo_action = _action(self, theme("/mActionRedo.svg"), tr("Redo"), "redo")

    def tools(self) -> list:
        """The map tools with the action that picks each."""
        return [(self.paint_tool, self.paint_action), (self.lasso_tool, self.lasso_action),
                (self.eyedropper_tool, self.eyedropper_action), (self.account_tool, self.paint_accounts_action)]

    def plan_actions(self) -> list[QAction]:
        """The actions that need a plan."""
        return [self.paint_action, self.lasso_action, self.eyedropper_action, self.erase_action,
                self.assign_selected_action, self.lock_units_action, self.unlock_units_action, self.undo_action,
                self.redo_action]

    def account_actions(self) -> list[QAction]:
        """The actions that need the plan's accounts."""
        return [self.paint_accounts_action, self.reset_override_action]


class TerritoryToolbar(QToolBar):
    """New, rename, merge and delete territories, the full table, and a menu of what the plan gives
    (packets, statistics, comparison, reps, the change log). Build and Rebalance, with the number of
    territories, the time limit and the cap, are laid out apart in :meth:`engine_row`, where a narrow
    panel never hides them behind the toolbar's overflow."""

    def __init__(self, parent=None, icon_size=None):
        super().__init__(parent)
        if icon_size is not None:
            self.setIconSize(icon_size)
        theme = QgsApplication.getThemeIcon
        self.new_action = _action(self, theme("/symbologyAdd.svg"), tr("New territory"), "new")
        self.rename_action = _action(self, theme("/mActionEditTable.svg"), tr("Rename the active territory"),
                                     "rename")
        self.merge_action = _action(self, icon("merge.svg"), tr("Merge the active territory into another"), "merge")
        self.delete_action = _action(self, theme("/symbologyRemove.svg"),
                                     tr("Delete the active territory (its units become unassigned)"), "delete")
        self.details_action = _action(self, theme("/mActionOpenTable.svg"),
                                      tr("Show every figure in the table (sums and deviations per measure)"),
                                      "territoryDetails", checkable=True)
        self.log_action = _action(self, theme("/mIconHistory.svg"),
                                  tr("Change log of the active territory (saved changes)"), "territoryChangeLog")
        menu = QMenu(self)
        self.packets_action = _menu_action(menu, theme("/mActionSaveAsPDF.svg"), tr(
            "Territory packets: one PDF per territory for its rep, and an overview…"), "territoryPackets")
        self.statistics_action = _menu_action(menu, theme("/mActionCalculateField.svg"), tr(
            "Territory statistics and report…"), "territoryStatistics")
        self.compare_action = _menu_action(menu, theme("/mActionFileOpen.svg"), tr(
            "Compare with the baseline scenario (realignment report)…"), "territoryCompare")
        self.assign_reps_action = _menu_action(menu, theme("/mActionAddPointLayer.svg"), tr(
            "Assign reps: match the reps to territories and keep them in the territory table"),
            "territoryAssignReps")
        outputs = QToolButton(self)
        outputs.setObjectName("territoryOutputs")
        outputs.setIcon(theme("/mActionSaveAsPDF.svg"))
        outputs.setToolTip(tr("Packets, statistics, comparison and reps of the plan"))
        outputs.setMenu(menu)
        outputs.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.addWidget(outputs)
        self.count_spin = self._spin(QSpinBox(), "territoryCount", (1, 10000), tr("Number of territories to build"))
        self.count_spin.setValue(10)
        self.time_limit_spin = self._spin(QDoubleSpinBox(), "territoryTimeLimit", (0.0, 86400.0), tr(
            "Time limit: Build and Rebalance search at most this many seconds while some territory is out of "
            "tolerance"), decimals=0, suffix=tr(" s"))
        self.time_limit_spin.setSingleStep(10.0)
        self.time_limit_spin.setValue(DEFAULT_TIME_LIMIT)
        self.build_action = QAction(icon("build.svg"), tr("Build"), self)
        self.build_action.setObjectName("territoryBuild")
        self.build_action.setToolTip(tr("Build territories from scratch (a proposal to apply or discard)"))
        self.rebalance_action = QAction(icon("rebalance.svg"), tr("Rebalance"), self)
        self.rebalance_action.setObjectName("territoryRebalance")
        self.rebalance_action.setToolTip(tr("Rebalance: improve the current plan, moving few units"))
        self.cap_spin = self._spin(QDoubleSpinBox(), "territoryRebalanceCap", (0.0, 100.0),
                                   tr("Rebalance changes at most this share of the units (0: no cap)"), decimals=1,
                                   suffix=" %")
        self.cap_spin.setSpecialValueText(tr("no cap"))
        self.addSeparator()
        # the map's view: territory colours, over/under target, penetration
        self.thematic_combo = QComboBox(self)
        self.thematic_combo.setObjectName("territoryThematic")
        for mode, text in MAP_VIEWS:
            self.thematic_combo.addItem(tr(text), mode)
        self.thematic_combo.setToolTip(tr(
            "What the map shows: each territory in its colour, over or under its target (the index against 1,000, "
            "else its worst deviation; within tolerance pale), or its penetration (sales / potential) against the "
            "plan's"))
        self.addWidget(self.thematic_combo)

    def _spin(self, spin, name: str, limits: tuple, tip: str, decimals: int | None = None, suffix: str = ""):
        if name:
            spin.setObjectName(name)
        spin.setRange(*limits)
        if decimals is not None:
            spin.setDecimals(decimals)
        if suffix:
            spin.setSuffix(suffix)
        spin.setToolTip(tip)
        return spin

    def engine_row(self, parent) -> QWidget:
        """Build with the number of territories and the time limit, Rebalance with its cap: two short
        lines of buttons with their text, always in view."""
        row = QWidget(parent)
        row.setObjectName("territoryEngineRow")
        grid = QGridLayout(row)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(4)
        grid.setVerticalSpacing(2)
        for column, (action, widgets) in enumerate(((self.build_action, (self.count_spin, self.time_limit_spin)),
                                                    (self.rebalance_action, (self.cap_spin,)))):
            button = QToolButton(row)
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            button.setIconSize(self.iconSize())
            button.setObjectName(action.objectName() + "Button")
            grid.addWidget(button, column, 0)
            for offset, widget in enumerate(widgets):
                widget.setParent(row)
                grid.addWidget(widget, column, 1 + offset)
        grid.setColumnStretch(3, 1)
        return row

    def plan_actions(self) -> list[QAction]:
        """The actions that need a plan."""
        return [self.new_action, self.rename_action, self.merge_action, self.delete_action, self.build_action,
                self.rebalance_action, self.log_action, self.packets_action, self.statistics_action,
                self.compare_action, self.assign_reps_action]


def _menu_action(menu: QMenu, icon_, text: str, name: str) -> QAction:
    action = QAction(icon_, text, menu)
    action.setObjectName(name)
    menu.addAction(action)
    return action
