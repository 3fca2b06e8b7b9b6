"""Scenarios: named alternative alignments of the same units, each one territory field on the layer.

Because a scenario is an ordinary field, every algorithm and QGIS tool can use any of them. The
list of scenarios and the baseline live in the plan settings (saved with the project); creating,
renaming and deleting a scenario go through the layer's edit buffer like every other edit.
"""

from __future__ import annotations

import numpy as np
from qgis.core import Qgis, QgsFeatureRequest, QgsVectorLayer

from ..core.plan.scenarios import compare_scenarios
from ..i18n import tr
from ..layers.change_log import DELETE_SCENARIO, NEW_SCENARIO, RENAME_SCENARIO, note_scenario
from ..layers.edit_checks import new_field_problem, text_field
from ..layers.values import is_empty_value


def add_territory_field(layer: QgsVectorLayer, name: str) -> str | None:
    """Add a text field ``name`` for territories to ``layer`` through its edit buffer (one undoable
    edit, saved with the layer's edits). None when added, else why not."""
    name = (name or "").strip()
    problem = new_field_problem(layer, name)
    if problem is not None:
        return problem
    if not layer.isEditable() and not layer.startEditing():
        return tr("QGIS could not start editing “{}”.").format(layer.name())
    layer.beginEditCommand(tr("Add territory field {}").format(name))
    if not layer.addAttribute(text_field(layer, name)):
        layer.destroyEditCommand()
        return tr("QGIS could not add the field “{}” to “{}”.").format(name, layer.name())
    layer.endEditCommand()
    return None


class Scenarios:
    """The scenarios of the plan bound to ``service`` (an :class:`AssignmentService`): its fields,
    their list and the baseline are the plan's (``service.plan``)."""

    def __init__(self, service):
        self.service = service

    @property
    def layer(self) -> QgsVectorLayer | None:
        return self.service.layer

    def names(self) -> list[str]:
        """The scenario fields that exist on the layer; the current territory field is always one."""
        layer, plan = self.layer, self.service.plan
        if layer is None:
            return []
        fields = layer.fields()
        listed = [name for name in plan.scenarios if fields.lookupField(name) >= 0]
        if plan.territory_field and plan.territory_field not in listed:
            listed.insert(0, plan.territory_field)
        return listed

    @property
    def baseline(self) -> str:
        names = self.names()
        return self.service.plan.baseline if self.service.plan.baseline in names else (names[0] if names else "")

    def _remember(self, names: list[str]) -> None:
        self.service.change_plan(scenarios=list(names))

    def _warn(self, text: str) -> None:
        self.service.message.emit(text, Qgis.MessageLevel.Warning)

    def create(self, name: str, copy_from: str | None = None) -> bool:
        """A new scenario ``name``: a text field holding a copy of ``copy_from`` (the current
        scenario by default), added through the edit buffer as one edit."""
        layer = self.layer
        if layer is None:
            self._warn(tr("Choose a layer and a territory field first."))
            return False
        source = copy_from or self.service.field_name
        problem = add_territory_field(layer, name)
        if problem is not None:
            self._warn(problem)
            return False
        name = name.strip()
        target = layer.fields().lookupField(name)
        index = layer.fields().lookupField(source)
        layer.beginEditCommand(tr("Copy scenario {} to {}").format(source, name))
        request = QgsFeatureRequest().setFlags(QgsFeatureRequest.Flag.NoGeometry).setSubsetOfAttributes([index])
        for feature in layer.getFeatures(request):
            value = feature.attribute(index)
            if not is_empty_value(value):
                layer.changeAttributeValue(feature.id(), target, str(value))
        layer.endEditCommand()
        note_scenario(layer, NEW_SCENARIO, name, tr("copy of scenario “{}”").format(source), copy_of=source)
        names = self.names()
        if name not in names:
            names.append(name)
        self._remember(names)
        return True

    def rename(self, old: str, new: str) -> bool:
        layer = self.layer
        new = (new or "").strip()
        if layer is None or old not in self.names():
            return False
        if not new or layer.fields().lookupField(new) >= 0:
            self._warn(tr("Choose a new scenario name that is not already a field of the layer."))
            return False
        if not layer.isEditable() and not layer.startEditing():
            self._warn(tr("QGIS could not start editing “{}”.").format(layer.name()))
            return False
        index = layer.fields().lookupField(old)
        before = self.names()
        if not layer.renameAttribute(index, new):
            self._warn(tr("The data source of “{}” cannot rename fields; create a new scenario from this one "
                          "and delete the old one instead.").format(layer.name()))
            return False
        note_scenario(layer, RENAME_SCENARIO, new, tr("renamed from “{}”").format(old), renamed_from=old)
        names = [new if n == old else n for n in before]
        if self.service.plan.baseline == old:
            self.service.change_plan(baseline=new)
        self._remember(names)
        return True

    def delete(self, name: str) -> bool:
        """Delete scenario ``name`` (its field, through the edit buffer); not the one in use."""
        layer = self.layer
        if layer is None or name not in self.names():
            return False
        if name == self.service.field_name:
            self._warn(tr("“{}” is the scenario in use; switch to another one before deleting it.").format(name))
            return False
        if not layer.isEditable() and not layer.startEditing():
            self._warn(tr("QGIS could not start editing “{}”.").format(layer.name()))
            return False
        if not layer.deleteAttribute(layer.fields().lookupField(name)):
            self._warn(tr("The data source of “{}” cannot delete fields.").format(layer.name()))
            return False
        note_scenario(layer, DELETE_SCENARIO, name, tr("scenario “{}” deleted").format(name))
        self._remember([n for n in self.names() if n != name])
        return True

    def promote(self, name: str) -> None:
        """Make ``name`` the baseline that the comparison counts changes against."""
        if name in self.names():
            self.service.change_plan(baseline=name)

    def compare(self) -> list:
        """core.plan.scenarios.ScenarioFigures of every scenario, baseline first."""
        layer, service = self.layer, self.service
        names = self.names()
        if layer is None or not names:
            return []
        baseline = self.baseline
        ordered = [baseline] + [n for n in names if n != baseline]
        indexes = [layer.fields().lookupField(n) for n in ordered]
        position = service.index_of_fid
        values = {n: [None] * len(service.fids) for n in ordered}
        request = QgsFeatureRequest().setFlags(QgsFeatureRequest.Flag.NoGeometry).setSubsetOfAttributes(indexes)
        for feature in layer.getFeatures(request):
            i = position.get(int(feature.id()))
            if i is None:
                continue
            for name, index in zip(ordered, indexes):
                value = feature.attribute(index)
                values[name][i] = None if is_empty_value(value) else str(value)
        workloads = service.workloads if service.measures else np.zeros((len(service.fids), 0))
        return compare_scenarios(values, workloads, baseline=baseline, adjacency=service.adjacency,
                                 positions=service.positions, tolerance=service.plan.tolerance / 100.0)
