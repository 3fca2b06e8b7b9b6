"""The "Territory Planner" Processing provider (id ``territory``)."""

from __future__ import annotations

from qgis.core import QgsProcessingProvider

from ..resources import icon, icon_path


def algorithm_classes() -> list[type]:
    """Every algorithm the provider offers, in toolbox order."""
    from .assign_accounts import AssignAccountsAlgorithm
    from .assign_reps import AssignRepsAlgorithm
    from .build_hierarchy import BuildHierarchyAlgorithm
    from .build_territories import BuildTerritoriesAlgorithm
    from .compare_alignments import CompareAlignmentsAlgorithm
    from .feedback_pages import FeedbackPagesAlgorithm
    from .rebalance_territories import RebalanceTerritoriesAlgorithm
    from .review_feedback import ReviewFeedbackAlgorithm
    from .set_goals import SetGoalsAlgorithm
    from .territory_packets import TerritoryPacketsAlgorithm
    from .territory_statistics import TerritoryStatisticsAlgorithm

    return [
        BuildTerritoriesAlgorithm,
        RebalanceTerritoriesAlgorithm,
        AssignRepsAlgorithm,
        AssignAccountsAlgorithm,
        BuildHierarchyAlgorithm,
        SetGoalsAlgorithm,
        TerritoryStatisticsAlgorithm,
        CompareAlignmentsAlgorithm,
        TerritoryPacketsAlgorithm,
        FeedbackPagesAlgorithm,
        ReviewFeedbackAlgorithm,
    ]


class TerritoryProvider(QgsProcessingProvider):
    def id(self) -> str:
        return "territory"

    def name(self) -> str:
        return "Territory Planner"

    def longName(self) -> str:  # noqa: N802 - QGIS API name
        return self.name()

    def icon(self):
        return icon("territory.svg")

    def svgIconPath(self) -> str:  # noqa: N802 - QGIS API name
        return icon_path("territory.svg")

    def loadAlgorithms(self) -> None:  # noqa: N802 - QGIS API name
        for cls in algorithm_classes():
            self.addAlgorithm(cls())
