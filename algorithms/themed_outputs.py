"""Outputs that load as maps to look at: Statistics' territories over and under their target
(the territory colours kept as a second named style), and the opportunities by untapped potential."""

from __future__ import annotations

from ..i18n import tr
from ..layers.territory_table import TerritoryRow
from ..layers.thematic import (
    OverUnderScale,
    keep_territory_colours_and_show,
    over_under_renderer,
    untapped_renderer,
)
from .outputs import TerritoryStyler


def over_under_style_name() -> str:
    return tr("over/under target")


class OverUnderStyler(TerritoryStyler):
    """A territory layer styled as Build's (table colours, outlines, labels), kept as the named
    style “territory colours”, then shown over/under target on ``theme_field``: a diverging ramp
    centred on ``scale.centre`` with the tolerance band neutral."""

    def __init__(self, field: str, values: list[str], rows: list[TerritoryRow], theme_field: str,
                 scale: OverUnderScale, unit: str, decimals: int):
        super().__init__(field, values, rows, outline=True)
        self.theme_field, self.scale, self.unit, self.decimals = theme_field, scale, unit, decimals

    def postProcessLayer(self, layer, context, feedback):
        super().postProcessLayer(layer, context, feedback)
        renderer = over_under_renderer(layer, self.theme_field, self.scale, self.unit, self.decimals)
        keep_territory_colours_and_show(layer, renderer, over_under_style_name())

    @classmethod
    def attach_theme(cls, dest_id: str, field: str, values: list[str], context, rows: list[TerritoryRow],
                     theme_field: str, scale: OverUnderScale, unit: str = "", decimals: int = 0) -> None:
        cls.run_on_load(cls(field, values, rows, theme_field, scale, unit, decimals), dest_id, context)


class UntappedStyler(TerritoryStyler):
    """Units coloured by their untapped potential, in quantile classes."""

    def __init__(self, theme_field: str):
        super().__init__(theme_field, [])
        self.theme_field = theme_field

    def postProcessLayer(self, layer, context, feedback):
        layer.setRenderer(untapped_renderer(layer, self.theme_field))
        layer.triggerRepaint()

    @classmethod
    def attach_theme(cls, dest_id: str, theme_field: str, context) -> None:
        cls.run_on_load(cls(theme_field), dest_id, context)
