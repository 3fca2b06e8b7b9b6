"""What the panel's paint toolbar does (``ui/toolbars.py``: ``PaintToolbar``): the map tools that paint
units into the active territory, pick it with the eyedropper or paint accounts; the buttons that assign
or lock the selected units, reset the selected accounts' overrides, and undo or redo on the layer the
panel painted last. :class:`PaintActions` is a part of the dock (``ui/dock.py``): it uses its canvas,
service, controller and message bar; every change goes through the assignment service or the account
binding."""

from __future__ import annotations

from qgis.core import Qgis

from ..i18n import tr
from .map_view import select_units


class PaintActions:
    """Painting units and accounts into territories from the map and the layers' selections."""

    #: whether the panel's last paint was on the accounts (undo and redo then act on them)
    _accounts_last = False

    def _connect_paint_toolbar(self) -> None:
        paint = self.paint_toolbar
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
                             (paint.undo_action, self.undo), (paint.redo_action, self.redo)):
            action.triggered.connect(slot)

    def _use_tool(self, tool, checked: bool) -> None:
        if checked:
            self.canvas.setMapTool(tool)
        elif self.canvas.mapTool() is tool:
            self.canvas.unsetMapTool(tool)

    def _release_tools(self) -> None:
        """Take the panel's map tools off the map (the panel goes away)."""
        for tool, _action in self.paint_toolbar.tools():
            if self.canvas.mapTool() is tool:
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

    def select_units(self, fids: list[int], zoom: bool = True) -> int:
        """Select units on the layer (QGIS's own selection) and zoom the map to them."""
        return select_units(self.canvas, self.service.layer, fids, zoom)
