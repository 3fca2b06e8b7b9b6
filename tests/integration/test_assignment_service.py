"""The assignment service on its own, without the panel: binding, edits and undo announce
themselves through signals, and its figures come from the core ledger."""

from __future__ import annotations

import numpy as np
import pytest
from dock_helpers import cell_fid, grid_layer
from qgis.core import QgsProject
from territory_planner.core.metrics import plan_figures
from territory_planner.ui.assignment_service import AssignmentService
from territory_planner.ui.settings import PlanSettings


@pytest.fixture
def service(qgis_new_project):
    made = AssignmentService(QgsProject.instance())
    yield made
    made.unbind()
    made.deleteLater()


def test_bind_paint_and_undo_are_signalled(service, qtbot):
    layer = grid_layer(territories={(c, r): "West" if c < 3 else "East" for c in range(6) for r in range(4)})
    QgsProject.instance().addMapLayer(layer)
    with qtbot.waitSignal(service.planChanged, timeout=2000):
        assert service.bind(layer, PlanSettings(territory_field="territory", measures=["accounts"]))
    assert service.territory_names == ["East", "West"]

    with qtbot.waitSignal(service.figuresChanged, timeout=2000) as changed:
        assert service.assign([cell_fid(layer, 0, 0)], "East") == 1
    assert set(changed.args[0]) == {"East", "West"}
    figures = plan_figures(service.ledger.plan_labels(), service.problem_workloads(), territory_count=2)
    np.testing.assert_allclose(service.sums[[service.registry_index["East"], service.registry_index["West"]]],
                               figures.sums)

    with qtbot.waitSignal(service.figuresChanged, timeout=2000):
        layer.undoStack().undo()
    assert service.ledger.territory_of_fid(cell_fid(layer, 0, 0)) == "West"
    with qtbot.waitSignal(service.message, timeout=2000) as message:
        service.assign([cell_fid(layer, 0, 0)], "Nowhere")
    assert "There is no territory" in message.args[0]


def test_a_proposal_is_signalled_and_applied_as_one_edit(service, qtbot):
    layer = grid_layer(territories={(c, r): "West" if c < 3 else "East" for c in range(6) for r in range(4)})
    QgsProject.instance().addMapLayer(layer)
    assert service.bind(layer, PlanSettings(territory_field="territory", measures=["accounts"]))
    index = np.array([service.index_of_fid[cell_fid(layer, 3, r)] for r in range(4)])
    with qtbot.waitSignal(service.previewChanged, timeout=2000) as shown:
        service.propose(index, ["West"] * 4, "Test proposal", action="rebalance")
    assert shown.args[0].worst_after < shown.args[0].worst_before
    with qtbot.waitSignal(service.previewChanged, timeout=2000) as gone:
        assert service.apply_preview() == 4
    assert gone.args[0] is None
    assert layer.undoStack().count() == 1


def test_an_empty_workload_typed_while_editing_is_said_and_changes_no_figure(service, qtbot):
    layer = grid_layer(territories={(c, r): "West" if c < 3 else "East" for c in range(6) for r in range(4)})
    QgsProject.instance().addMapLayer(layer)
    assert service.bind(layer, PlanSettings(territory_field="territory", measures=["accounts", "potential"]))
    sums = service.sums.copy()
    unit = cell_fid(layer, 4, 2)
    assert layer.startEditing()
    with qtbot.assertNotEmitted(service.figuresChanged), qtbot.waitSignal(service.message, timeout=2000) as said:
        layer.changeAttributeValue(unit, layer.fields().lookupField("potential"), None)
    assert f"Feature {unit} has no value (NULL)" in said.args[0] and "“potential”" in said.args[0]
    np.testing.assert_array_equal(service.sums, sums)
    with qtbot.waitSignal(service.message, timeout=2000) as said:
        layer.changeAttributeValue(unit, layer.fields().lookupField("accounts"), -3)
    assert "negative or invalid workload (-3)" in said.args[0] and "“accounts”" in said.args[0]
    np.testing.assert_array_equal(service.sums, sums)
