"""Changes a user makes to the plan's territory list (``core.plan.ledger.TerritoryList``: its
territories in order, which gives their colours, and which of them are locked): new, rename, merge,
delete, lock.

A change to the list is pushed onto the layer's undo stack inside the same edit command as the
attribute changes it brings (:class:`TerritoryListCommand`), so undoing a rename, merge, deletion or
new territory restores the list too: one undo stack for the units and the list.
"""

from __future__ import annotations

import weakref

import numpy as np
from qgis.PyQt import sip

from ..compat import undo_command_class
from ..core.plan.ledger import TerritoryList
from ..i18n import tr
from ..layers.territory_table import display_name, plan_table_layer, rename_in_table
from ..layers.values import natural_key

QUndoCommand = undo_command_class()


def plan_territory_list(plan, present: list, table_rows: dict) -> TerritoryList:
    """The territory list of ``plan`` (a PlanSettings) on a layer whose units hold the territories
    ``present``: the plan's order first, then the others in natural order; locked when the plan or
    the territory table (``table_rows`` by code) says so."""
    order = [name for name in dict.fromkeys(plan.territories) if name]
    names = order + sorted(set(present) - {None} - set(order), key=natural_key)
    return TerritoryList(tuple(names), frozenset(name for name in names if name in plan.locked_territories
                                                 or (name in table_rows and table_rows[name].locked)))


class HeldUndoCommand(QUndoCommand):
    """An undo command whose Python half lives as long as its C++ half: push it with :meth:`push`.

    The undo stack owns the C++ command, but its Python half (with our undo/redo) must be kept
    alive by Python, or the stack would call QUndoCommand's empty methods."""

    _alive: list[HeldUndoCommand] = []

    @classmethod
    def push(cls, stack, command: HeldUndoCommand) -> None:
        HeldUndoCommand._alive = [c for c in HeldUndoCommand._alive if not sip.isdeleted(c)]
        HeldUndoCommand._alive.append(command)
        stack.push(command)


class TerritoryListCommand(HeldUndoCommand):
    """Changes the plan's territory list as part of a layer edit command.

    Two of these bracket the attribute changes of one action: the first applies the new list on
    redo, the last restores the old list on undo, so while attribute values change the list
    always already holds the names they move to. ``service`` is the assignment service (it applies
    a list with ``apply_list``); a command made for another layer or field does nothing.
    """

    def __init__(self, service, before: TerritoryList, after: TerritoryList, on_redo: bool):
        super().__init__(tr("Territory list"))
        self._service = weakref.ref(service)
        self._layer_id = service.layer_id
        self._field = service.field_name
        self.before, self.after, self.on_redo = before, after, on_redo

    def _target(self):
        service = self._service()
        if service is None or service.layer_id != self._layer_id or service.field_name != self._field:
            return None
        return service

    def redo(self) -> None:
        service = self._target()
        if self.on_redo and service is not None:
            service.apply_list(self.after)

    def undo(self) -> None:
        service = self._target()
        if not self.on_redo and service is not None:
            service.apply_list(self.before)


class TableEditCommand(HeldUndoCommand):
    """A territory-table edit (a rename, reps) on the units layer's undo stack: the panel's undo and
    redo, and a rollback of the layer's edits, undo and redo the table's edit along with the units'.

    The table's edit is already made (in its own edit buffer) when this is pushed; undo and redo then
    step the table's undo stack and have the plan read the table again."""

    def __init__(self, service, table, text: str):
        super().__init__(text)
        self._service = weakref.ref(service)
        self._table = weakref.ref(table)
        self._pushed = False

    def _step(self, forward: bool) -> None:
        table, service = self._table(), self._service()
        if table is None or sip.isdeleted(table) or not table.isEditable():
            return
        stack = table.undoStack()
        (stack.redo if forward else stack.undo)()
        if service is not None and not sip.isdeleted(service):
            service.read_table()

    def redo(self) -> None:
        if self._pushed:
            self._step(True)
        self._pushed = True

    def undo(self) -> None:
        self._step(False)


class TerritoryListEditor:
    """New, rename, merge, delete and lock territories of the plan bound to ``service`` (an
    :class:`~.assignment_service.AssignmentService`), each as one undoable edit command."""

    def __init__(self, service):
        self.service = service

    @property
    def _list(self) -> TerritoryList:
        return self.service.ledger.territories

    def _valid_name(self, name: str) -> str | None:
        """``name`` as the territory field can hold it; None (after saying why) when it cannot."""
        name = (name or "").strip()
        if not name:
            self.service.warn(tr("Give the territory a name."))
            return None
        if self.service.integer_field:
            try:
                return str(int(name))
            except ValueError:
                self.service.warn(tr("The territory field “{}” holds whole numbers; “{}” is not one. Use a number, "
                                     "or create a text territory field.").format(self.service.field_name, name))
                return None
        return name

    def new(self, name: str) -> bool:
        service = self.service
        name = self._valid_name(name)
        if name is None:
            return False
        if name in self._list.names:
            service.warn(tr("A territory “{}” already exists. Choose another name.").format(name))
            return False
        after = TerritoryList(self._list.names + (name,), self._list.locked)
        if service.edit(tr("New territory {}").format(name), [], after):
            service.set_active(name)
            return True
        return False

    def rename(self, old: str, new: str) -> bool:
        """Rename territory ``old``: its name in the territory table; the code, and so every unit of
        every scenario, stays. (Only a plan without a table, which the panel gives every plan it can,
        renames the code itself.)"""
        service = self.service
        table = plan_table_layer(service.project, service.plan.territory_table)
        if service.ledger.is_locked(old):
            service.warn(tr("Territory “{}” is locked; unlock it to rename it.").format(service.display_name(old)))
            return False
        if table is not None and old in self._list.names:
            return self._rename_in_table(table, old, new)
        new = self._valid_name(new)
        if new is None or old not in self._list.names or new == old:
            return False
        if service.ledger.is_locked(old):
            service.warn(tr("Territory “{}” is locked; unlock it to rename it.").format(old))
            return False
        if new in self._list.names:
            service.warn(tr("A territory “{}” already exists. Use Merge to join two territories.").format(new))
            return False
        names = tuple(new if t == old else t for t in self._list.names)
        locked = frozenset(new if t == old else t for t in self._list.locked)
        service.colours.rename(old, new)  # a renamed territory keeps its colour
        changes = [(int(i), new) for i in service.ledger.members(old)]
        if service.edit(tr("Rename territory {} to {}").format(old, new), changes, TerritoryList(names, locked),
                        action="rename"):
            if service.active == old:
                service.set_active(new)
            return True
        return False

    def _rename_in_table(self, table, code: str, new: str) -> bool:
        service = self.service
        new = (new or "").strip()
        if not new or new == display_name(service.table_rows, code):
            return False
        taken = {display_name(service.table_rows, name) for name in self._list.names if name != code}
        if new in taken:
            service.warn(tr("A territory is already called “{}”. Choose another name.").format(new))
            return False
        text = tr("Rename territory {} to {}").format(display_name(service.table_rows, code), new)
        return self.edit_table(table, text, lambda: rename_in_table(table, service.field_name, code, new))

    def edit_table(self, table, text: str, change) -> bool:
        """Make ``change()`` (an edit of the territory table through its edit buffer; it returns None,
        or why it failed) one undoable step of the plan, on the units layer's undo stack too."""
        service = self.service
        if not service.ensure_editing():
            return False
        problem = change()
        if problem is not None:
            service.warn(problem)
            return False
        layer = service.layer
        layer.beginEditCommand(text)
        TableEditCommand.push(layer.undoStack(), TableEditCommand(service, table, text))
        layer.endEditCommand()
        service.read_table()
        return True

    def merge(self, source: str, target: str) -> bool:
        """Move every unit of ``source`` into ``target`` and drop ``source``."""
        names = self._list.names
        if source == target or source not in names or target not in names:
            return False
        members = self._free_members([source, target], source, tr("Territory “{}” is locked; unlock it to merge."),
                                     tr("{} unit(s) of “{}” are locked; unlock them to merge."))
        if members is None:
            return False
        after = TerritoryList(tuple(t for t in names if t != source), self._list.locked)
        if self.service.edit(tr("Merge territory {} into {}").format(source, target),
                             [(int(i), target) for i in members], after, action="merge"):
            self.service.set_active(target)
            return True
        return False

    def delete(self, name: str) -> bool:
        """Drop territory ``name``; its units become unassigned."""
        if name not in self._list.names:
            return False
        members = self._free_members([name], name, tr("Territory “{}” is locked; unlock it to delete it."),
                                     tr("{} unit(s) of “{}” are locked; unlock them to delete it."))
        if members is None:
            return False
        after = TerritoryList(tuple(t for t in self._list.names if t != name), self._list.locked)
        if self.service.edit(tr("Delete territory {}").format(name), [(int(i), None) for i in members], after,
                             action="delete"):
            if self.service.active == name:
                self.service.set_active(after.names[0] if after.names else None)
            return True
        return False

    def _free_members(self, territories: list[str], source: str, locked_text: str,
                      locked_units_text: str) -> np.ndarray | None:
        """The units of ``source`` when none of ``territories`` and none of those units is locked;
        else None, after saying what is locked."""
        service = self.service
        for name in territories:
            if service.ledger.is_locked(name):
                service.warn(locked_text.format(name))
                return None
        members = service.ledger.members(source)
        locked_units = service.ledger.locked_mask(members)
        if locked_units.any():
            service.warn(locked_units_text.format(int(locked_units.sum()), source))
            return None
        return members

    def set_locked(self, name: str, locked: bool) -> None:
        """Lock or unlock territory ``name`` (saved with the plan, not an edit of the layer)."""
        if name not in self._list.names or self.service.ledger.is_locked(name) == locked:
            return
        names = set(self._list.locked)
        if locked:
            names.add(name)
        else:
            names.discard(name)
        self.service.apply_list(TerritoryList(self._list.names, frozenset(names)))
        self.service.settle()
