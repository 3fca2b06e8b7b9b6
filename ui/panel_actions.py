"""What the panel's buttons ask of the user before the controller acts: the territory list's new,
rename, merge and delete (:class:`TerritoryActions`), and the dialogs of the plan's outputs (scenario
comparison, packets, statistics, the comparison with the baseline, the change log; :class:`PlanDialogs`).
Both are parts of the dock (``ui/dock.py``): they use its service, controller and message bar."""

from __future__ import annotations

from qgis.core import Qgis
from qgis.PyQt.QtWidgets import QInputDialog

from ..i18n import tr
from ..layers.values import default_names
from .change_log_dialog import ChangeLogDialog
from .scenario_dialog import ScenarioDialog


class TerritoryActions:
    """New, rename, merge and delete the territories of the dock's plan, asking for names."""

    def _ask(self, title: str, label: str, text: str = "") -> str | None:
        value, ok = QInputDialog.getText(self, title, label, text=text)
        return value if ok else None

    def _active_or_say(self, text: str) -> str | None:
        if self.service.active is None:
            self._show_message(text, Qgis.MessageLevel.Info)
        return self.service.active

    def new_territory(self, name: str | None = None) -> bool:
        if name is None:
            names = self.service.territory_names
            name = self._ask(tr("New territory"), tr("Name"), default_names(names, len(names) + 1, tr("Territory"))[-1])
            if name is None:
                return False
        return self.controller.territory_editor.new(name)

    def rename_territory(self, new: str | None = None) -> bool:
        old = self._active_or_say(tr("Choose the territory to rename in the table."))
        if old is None:
            return False
        if new is None:
            shown = self.service.display_name(old)
            new = self._ask(tr("Rename territory"), tr("New name for “{}”").format(shown), shown)
            if new is None:
                return False
        return self.controller.territory_editor.rename(old, new)

    def merge_territory(self, target: str | None = None) -> bool:
        source = self._active_or_say(tr("Choose the territory to merge in the table."))
        others = [t for t in self.service.territory_names if t != source]
        if source is None or not others:
            return False
        shown = {self.service.display_name(code): code for code in others}
        if target is None:
            target, ok = QInputDialog.getItem(self, tr("Merge territory"),
                                              tr("Merge “{}” into").format(self.service.display_name(source)),
                                              list(shown), 0, False)
            if not ok:
                return False
        return self.controller.territory_editor.merge(source, target if target in others else shown.get(target, target))

    def delete_territory(self) -> bool:
        name = self._active_or_say(tr("Choose the territory to delete in the table."))
        return name is not None and self.controller.territory_editor.delete(name)



class PlanDialogs:
    """The non-modal dialogs the dock opens for its plan."""

    def _show_dialog(self, key: str, dialog):
        dialog.setModal(False)
        dialog.show()
        self._dialogs[key] = dialog
        return dialog

    def compare_scenarios(self) -> ScenarioDialog | None:
        if not self.service.is_bound:
            return None
        scenarios = self.controller.scenarios
        return self._show_dialog("scenarios", ScenarioDialog(scenarios.compare(), self.service.measure_names,
                                                             scenarios.baseline, self.service.plan.tolerance, self))

    def make_packets(self):
        """Open Territory packets for the plan in the panel (its dialog, filled in; runs in the background)."""
        return self.open_algorithm("territorypackets")

    def open_algorithm(self, algorithm: str):
        """Open a toolbox algorithm's dialog filled in with the plan in the panel (its territory table,
        reps, unit names and baseline): packets, statistics, the comparison with the baseline."""
        if not self.service.is_bound:
            return None
        import processing

        dialog = processing.createAlgorithmDialog(f"territory:{algorithm}",
                                                  self.controller.algorithm_parameters(algorithm))
        if dialog is None:
            self._show_message(tr("The Territory Planner algorithms are not available; is the Processing "
                                  "plugin enabled?"), Qgis.MessageLevel.Warning)
            return None
        dialog.show()
        self._dialogs[algorithm] = dialog
        return dialog

    def show_change_log(self, territory: str | None = None) -> ChangeLogDialog | None:
        """The saved changes into or out of ``territory`` (the active one by default)."""
        service = self.service
        if not service.is_bound:
            return None
        territory = territory or service.active
        names = {code: row.label for code, row in service.table_rows.items()}
        return self._show_dialog("log", ChangeLogDialog(service.change_log(), list(service.plan.measures), territory,
                                                        service.saving.where(), names, service.field_name, self))

