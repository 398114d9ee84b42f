"""Product and store tables shared by the sales reports (not a report type: the leading underscore hides it).

Imports reportlab only inside its functions, like the report types, so the catalog stays light.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reports.render import theme
from reports.render.metrics import Totals

if TYPE_CHECKING:
    from reportlab.platypus import Flowable


EXTRA_WIDTH = 70.0
"""Width of the extra column; a table without one gives it to its first column, keeping the page width."""


@dataclass(frozen=True, slots=True)
class ExtraColumn:
    """A last column particular to one report, such as the change on the comparison day."""

    title: str
    value: Callable[[str, Totals], str]
    """Cell text from the row's key (product name, or store name) and totals."""
    total: str


def share(part: Totals, whole: Totals) -> str:
    return theme.percent(part.revenue_cents / whole.revenue_cents) if whole.revenue_cents else "–"


def _spare(extra: ExtraColumn | None) -> float:
    """Width the first column gains when there is no extra column."""
    return 0.0 if extra else EXTRA_WIDTH


def _cell(extra: ExtraColumn | None, key: str, totals: Totals) -> list[str]:
    return [extra.value(key, totals)] if extra else []


def product_table(
    products: Sequence[tuple[str, Totals]],
    category_of: Mapping[str, str],
    total: Totals,
    extra: ExtraColumn | None,
) -> Flowable:
    from reports.render import pdf

    columns = [
        pdf.Column("Product", 125 + _spare(extra)),
        pdf.Column("Category", 80),
        pdf.Column("Orders", 55, "RIGHT"),
        pdf.Column("Items", 55, "RIGHT"),
        pdf.Column("Revenue", 70, "RIGHT"),
        pdf.Column("Share", 60, "RIGHT"),
        *([pdf.Column(extra.title, EXTRA_WIDTH, "RIGHT")] if extra else []),
    ]
    rows = [
        [
            name,
            category_of[name].capitalize(),
            theme.count(totals.orders),
            theme.count(totals.items),
            theme.money(totals.revenue_cents),
            share(totals, total),
            *_cell(extra, name, totals),
        ]
        for name, totals in products
    ]
    footer = [
        "All products",
        "",
        theme.count(total.orders),
        theme.count(total.items),
        theme.money(total.revenue_cents),
        "100.0%",
        *([extra.total] if extra else []),
    ]
    return pdf.table(columns, rows, total=footer)


def store_table(
    stores: Sequence[tuple[tuple[str, str], Totals]],
    total: Totals,
    extra: ExtraColumn | None,
) -> Flowable:
    from reports.render import pdf

    columns = [
        pdf.Column("Store", 110 + _spare(extra)),
        pdf.Column("City", 95),
        pdf.Column("Orders", 55, "RIGHT"),
        pdf.Column("Revenue", 70, "RIGHT"),
        pdf.Column("Avg ticket", 55, "RIGHT"),
        pdf.Column("Share", 60, "RIGHT"),
        *([pdf.Column(extra.title, EXTRA_WIDTH, "RIGHT")] if extra else []),
    ]
    rows = [
        [
            store,
            city,
            theme.count(totals.orders),
            theme.money(totals.revenue_cents),
            theme.money_exact(totals.average_ticket_cents),
            share(totals, total),
            *_cell(extra, store, totals),
        ]
        for (store, city), totals in stores
    ]
    footer = [
        "All stores",
        "",
        theme.count(total.orders),
        theme.money(total.revenue_cents),
        theme.money_exact(total.average_ticket_cents),
        "100.0%",
        *([extra.total] if extra else []),
    ]
    return pdf.table(columns, rows, total=footer)
