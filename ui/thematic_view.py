"""The panel's map views (``territoryThematic``): the units in their territory colours (off), each
territory coloured over or under its target (the index against 1,000, else its worst deviation
against 0 %), or by its penetration (sales / potential) against the plan's overall penetration,
on the same diverging ramp as Statistics' output, the tolerance band neutral.

The view paints through the service's restyle (``AssignmentService.theme``), so every repaint the
service does (after an edit, a new territory, a reload) shows the chosen view, from the figures of
the moment.
"""

from __future__ import annotations

import numpy as np
from qgis.core import Qgis
from qgis.PyQt.QtCore import QObject

from ..core.plan.index import INDEX_AVERAGE, INDEX_NAME
from ..i18n import tr
from ..layers.signal_links import SignalLinks
from ..layers.style import STYLED_PROPERTY, THEMED_PROPERTY
from ..layers.territory_table import display_name
from ..layers.thematic import OverUnderScale, territory_theme_renderer
from ..layers.unit_values import read_values_by_fid
from ..layers.units import UnitDataError
from .assignment_service import AssignmentService

OFF, OVER_UNDER, PENETRATION = "off", "over_under", "penetration"
#: the views in the order the panel offers them, with their names
MODES = ((OFF, "Map: territory colours"), (OVER_UNDER, "Map: over/under target"),
         (PENETRATION, "Map: penetration (sales / potential)"))


class ThematicView(QObject):
    """Which view the map shows, and the painting of it."""

    def __init__(self, service: AssignmentService, parent: QObject | None = None):
        super().__init__(parent)
        self.service = service
        self.mode = OFF
        self._sales_potential: np.ndarray | None = None  # per unit, read when the penetration view is shown
        service.theme = self
        self._links = SignalLinks([(service.figuresChanged, self._on_figures_changed),
                                   (service.planChanged, self._on_plan_changed)])

    def set_mode(self, mode: str) -> None:
        """Show ``mode`` (:data:`OFF`, :data:`OVER_UNDER` or :data:`PENETRATION`)."""
        self.mode = mode if mode in (OVER_UNDER, PENETRATION) else OFF
        self.service.restyle()

    def _on_plan_changed(self) -> None:
        self._sales_potential = None  # another layer, fields or a reload: read them again when needed

    def _on_figures_changed(self, _names) -> None:
        if self.mode != OFF and self.service.is_bound:
            self.paint()

    def paint(self) -> bool:
        """Paint the chosen view on the plan's layer; False (nothing painted) for the territory colours."""
        service = self.service
        if self.mode == OFF or not service.is_bound:
            return False
        figures = self._over_under() if self.mode == OVER_UNDER else self._penetration()
        if figures is None:
            return False
        values, scale, unit = figures
        names = list(service.territories.names)
        shown = [(int(name) if service.integer_field else name, display_name(service.table_rows, name), value)
                 for name, value in zip(names, values)]
        layer = service.layer
        layer.setRenderer(territory_theme_renderer(layer, service.field_name, shown, scale, unit))
        layer.setCustomProperty(STYLED_PROPERTY, service.field_name)
        layer.setCustomProperty(THEMED_PROPERTY, self.mode)
        layer.triggerRepaint()
        return True

    def _over_under(self):
        """Per territory: the index (target 1,000) when the plan has one, else its worst deviation in %."""
        service = self.service
        ledger = service.ledger
        listed = ledger.listed()
        count = len(listed)
        if INDEX_NAME in service.measures:
            a = service.measures.index(INDEX_NAME)
            values = [float(ledger.sums[k, a]) for k in listed]
            band = service.plan.tolerance_of(INDEX_NAME) / 100.0 * INDEX_AVERAGE
            return values, OverUnderScale.fit(values, INDEX_AVERAGE, band), ""
        values = []
        for k in listed:
            deviation = 100.0 * ledger.deviation(k, count)
            values.append(float(deviation[int(np.abs(deviation).argmax())]) if len(deviation) else 0.0)
        return values, OverUnderScale.fit(values, 0.0, service.plan.tolerance), " %"

    def _penetration(self):
        """Per territory: 100 × sales / potential, against the overall penetration (±tolerance)."""
        service = self.service
        plan = service.plan
        if not plan.sales_field or not plan.potential_field:
            service.warn(tr("Choose the sales and the potential field in the setup for the penetration view."),
                         Qgis.MessageLevel.Info)
            return None
        if self._sales_potential is None:
            try:
                self._sales_potential = read_values_by_fid(service.layer, [plan.sales_field, plan.potential_field],
                                                           service.fids, tr("sales or potential"),
                                                           service.unit_request())
            except UnitDataError as error:
                service.warn(str(error))
                return None
        ledger = service.ledger
        size = len(ledger.registry)
        sales = np.bincount(ledger.labels, self._sales_potential[:, 0], minlength=size)
        potential = np.bincount(ledger.labels, self._sales_potential[:, 1], minlength=size)
        listed = ledger.listed()
        values = [100.0 * sales[k] / potential[k] if potential[k] > 0 else None for k in listed]
        total = potential[listed].sum()
        overall = 100.0 * sales[listed].sum() / total if total > 0 else 0.0
        return values, OverUnderScale.fit([v for v in values if v is not None], overall,
                                          overall * plan.tolerance / 100.0), " %"

    def unload(self) -> None:
        self._links.cut()
        if self.service.theme is self:
            self.service.theme = None
