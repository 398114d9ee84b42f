"""Chart blocks the sales reports share (not a report type: the leading underscore hides it).

Each draws one titled chart into a report's chart sheet; matplotlib stays behind ``charts``, which
the report types import inside ``render`` only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from reports.render import theme
from reports.render.metrics import Totals

if TYPE_CHECKING:
    from reports.render.charts import Box, ChartSheet


def category_mix(
    sheet: ChartSheet, box: Box, categories: Sequence[tuple[str, Totals]], *, subtitle: str, centre: str
) -> None:
    """Donut of revenue by category, the total in its centre."""
    from reports.render import charts

    sheet.title(box, "Category mix", subtitle)
    charts.mix(
        sheet,
        box,
        labels=[name for name, _ in categories],
        values=[totals.revenue_cents for _, totals in categories],
        colours=[theme.category_colour(name) for name, _ in categories],
        centre=centre,
        caption="revenue",
    )


def product_ranking(
    sheet: ChartSheet,
    box: Box,
    products: Sequence[tuple[str, Totals]],
    category_of: Mapping[str, str],
    *,
    title: str,
    subtitle: str = "",
) -> None:
    """Products by revenue, bars coloured by their category."""
    from reports.render import charts

    sheet.title(box, title, subtitle, indent=82)
    charts.ranking(
        sheet,
        box,
        labels=[name for name, _ in products],
        values=[totals.revenue_cents for _, totals in products],
        colours=[theme.category_colour(category_of[name]) for name, _ in products],
    )


def store_ranking(sheet: ChartSheet, box: Box, stores: Sequence[tuple[tuple[str, str], Totals]], *, title: str) -> None:
    """Stores by revenue."""
    from reports.render import charts

    sheet.title(box, title, indent=80)
    charts.ranking(
        sheet,
        box,
        labels=[name for (name, _city), _ in stores],
        values=[totals.revenue_cents for _, totals in stores],
        colours=theme.ESPRESSO,
    )
