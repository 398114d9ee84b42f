"""COFFEE_SALES: one day of the chain's sales, compared with the same weekday a week earlier.

Two A4 pages: KPIs, highlights and a sheet of charts (hourly revenue against last week, products,
category mix, stores), then the product and store tables. matplotlib and reportlab are imported
inside ``render`` only (see ``reports.catalog``): the API functions import this module to validate
report types and must stay light.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, timedelta
from typing import TYPE_CHECKING

from reports.catalog import RenderInput, ReportDefinition
from reports.errors import NoDataError
from reports.render import metrics, theme
from reports.render.metrics import Totals
from reports.report_types import _sales_charts, _sales_tables

if TYPE_CHECKING:
    from reportlab.platypus import Flowable

    from reports.render.charts import ChartImage
    from reports.render.pdf import KpiCard
    from reports.sales import SaleRecord

NAME = "COFFEE_SALES"
SHEET_WIDTH, SHEET_HEIGHT = 515.0, 580.0
HOURS = tuple(range(6, 20))
"""Opening hours shown on the hourly chart: the same axis every day, so holiday hours look short."""


def period(day: date) -> tuple[date, date]:
    """The day itself and, for the comparison, the same weekday a week before."""
    return day - timedelta(days=7), day


def render(data: RenderInput) -> bytes:
    day = data.report_date
    previous_day = day - timedelta(days=7)
    by_day = metrics.split_by_day(data.records)
    today = by_day.get(day, [])
    if not today:
        raise NoDataError(f"there are no sales records for {theme.long_date(day)}; the stores may have been closed")
    last_week = by_day.get(previous_day, [])
    figures = _DayFigures(today, last_week, previous_day)

    data.progress("charting", 40)
    chart = _chart_sheet(figures)

    data.progress("laying out", 70)
    from reports.render import pdf

    header = pdf.PageHeader(
        title="Daily Sales Report",
        subject=theme.long_date(day),
        report_id=data.report_id,
        generated_at=data.generated_at,
    )
    return pdf.build(header, _story(figures, chart))


DEFINITION = ReportDefinition(
    name=NAME,
    title="Daily coffee sales",
    description="Revenue, orders, average ticket and items sold for one day across all stores, by hour, "
    "product, category and store, each compared with the same weekday a week earlier.",
    period=period,
    render=render,
    expected_seconds=2.0,
)


class _DayFigures:
    """Everything the pages show, computed once from the day's and last week's records."""

    def __init__(self, today: list[SaleRecord], last_week: list[SaleRecord], previous_day: date) -> None:
        self.day = today[0].sold_at.date()
        self.previous_day = previous_day
        self.has_previous = bool(last_week)
        self.total = metrics.totals(today)
        self.previous = metrics.totals(last_week) if last_week else None
        self.by_hour = metrics.group_totals(today, lambda r: r.sold_at.hour)
        self.previous_by_hour = metrics.group_totals(last_week, lambda r: r.sold_at.hour)
        self.products = metrics.ranked(metrics.group_totals(today, lambda r: r.product))
        self.previous_products = metrics.group_totals(last_week, lambda r: r.product)
        self.categories = metrics.ranked(metrics.group_totals(today, lambda r: r.category))
        self.stores = metrics.ranked(metrics.group_totals(today, lambda r: (r.store_name, r.city)))
        self.previous_stores = metrics.group_totals(last_week, lambda r: r.store_name)
        self.category_of = {r.product: r.category for r in today}


def _chart_sheet(figures: _DayFigures) -> ChartImage:
    from reports.render import charts

    sheet = charts.ChartSheet(SHEET_WIDTH, SHEET_HEIGHT)
    hourly = charts.Box(34, 40, 478, 150)
    sheet.title(hourly, "Revenue by hour", _comparison_caption(figures), indent=34)
    charts.hourly_revenue(
        sheet,
        hourly,
        hours=HOURS,
        revenue=[figures.by_hour.get(hour, metrics.NO_SALES).revenue_cents for hour in HOURS],
        previous=[figures.previous_by_hour.get(hour, metrics.NO_SALES).revenue_cents for hour in HOURS]
        if figures.has_previous
        else None,
        labels=(theme.short_date(figures.day), theme.short_date(figures.previous_day)),
    )

    _sales_charts.product_ranking(
        sheet,
        charts.Box(82, 262, 150, 300),
        figures.products,
        figures.category_of,
        title="Revenue by product",
        subtitle="Bars coloured by category",
    )
    _sales_charts.category_mix(
        sheet,
        charts.Box(300, 262, 200, 104),
        figures.categories,
        subtitle="Share of revenue",
        centre=theme.money(figures.total.revenue_cents),
    )
    _sales_charts.store_ranking(sheet, charts.Box(380, 420, 100, 142), figures.stores, title="Revenue by store")
    return sheet.render()


def _comparison_caption(figures: _DayFigures) -> str:
    if figures.has_previous:
        return f"All stores, store-local time; line: the same hours on {theme.long_date(figures.previous_day)}"
    return f"All stores, store-local time; no sales on {theme.long_date(figures.previous_day)} to compare with"


def _story(figures: _DayFigures, chart: ChartImage) -> list[Flowable]:
    from reports.render import pdf

    story: list[Flowable] = [
        pdf.KpiRow(_cards(figures)),
        pdf.gap(10),
        *pdf.bullets(_highlights(figures)),
        pdf.gap(6),
        pdf.ChartBlock(chart),
        pdf.page_break(),
    ]
    story += [
        pdf.heading("Products"),
        _sales_tables.product_table(
            figures.products,
            figures.category_of,
            figures.total,
            _change_column(figures, figures.previous_products),
        ),
        pdf.heading("Stores"),
        _sales_tables.store_table(
            figures.stores,
            figures.total,
            _change_column(figures, figures.previous_stores),
        ),
        pdf.gap(10),
        pdf.note(
            "Revenue is the sum of line totals before tax. Orders count distinct tickets; an order with a latte "
            "and a croissant counts once in the totals and once for each product. Times are store-local. "
            f"Changes compare with {theme.long_date(figures.previous_day)}, the same weekday a week earlier."
        ),
    ]
    return story


def _cards(figures: _DayFigures) -> list[KpiCard]:
    """Each KPI with its change on the same weekday a week earlier, or a grey note when that day had no sales."""
    from reports.render.pdf import KpiCard

    measures: list[tuple[str, Callable[[Totals], float], Callable[[float], str]]] = [
        ("Revenue", lambda t: t.revenue_cents, theme.money),
        ("Orders", lambda t: t.orders, theme.count),
        ("Average ticket", lambda t: t.average_ticket_cents, theme.money_exact),
        ("Items sold", lambda t: t.items, theme.count),
    ]
    before = theme.short_date(figures.previous_day)
    cards = []
    for label, measure, shown in measures:
        current = measure(figures.total)
        if figures.previous is None:
            cards.append(KpiCard(label, shown(current), f"No sales on {before}"))
        else:
            previous = measure(figures.previous)
            trend = metrics.change(current, previous)
            cards.append(KpiCard(label, shown(current), f"vs {before} ({shown(previous)})", trend))
    return cards


def _highlights(figures: _DayFigures) -> list[str]:
    total = figures.total
    busiest_hour, busiest = max(figures.by_hour.items(), key=lambda item: (item[1].revenue_cents, -item[0]))
    product, product_totals = figures.products[0]
    (store, city), store_totals = figures.stores[0]
    return [
        f"<b>{theme.count(total.orders)} orders</b> across {len(figures.stores)} stores brought in "
        f"<b>{theme.money(total.revenue_cents)}</b>, {theme.money_exact(total.average_ticket_cents)} per order.",
        f"Busiest hour: <b>{busiest_hour:02d}:00–{busiest_hour + 1:02d}:00</b> with "
        f"{theme.money(busiest.revenue_cents)} from {theme.count(busiest.orders)} orders.",
        f"Best seller: <b>{product}</b> with {theme.money(product_totals.revenue_cents)} "
        f"({theme.percent(product_totals.revenue_cents / total.revenue_cents)} of revenue); "
        f"top store: <b>{store}</b>, {city}, with {theme.money(store_totals.revenue_cents)}.",
    ]


def _change_column(figures: _DayFigures, previous: Mapping[str, Totals]) -> _sales_tables.ExtraColumn:
    def value(key: str, totals: Totals) -> str:
        return _signed_change(figures, totals.revenue_cents, previous.get(key))

    return _sales_tables.ExtraColumn(
        "vs last week", value, _signed_change(figures, figures.total.revenue_cents, figures.previous)
    )


def _signed_change(figures: _DayFigures, current: float, previous: Totals | None) -> str:
    if not figures.has_previous:
        return "–"
    change = metrics.change(current, previous.revenue_cents if previous else 0)
    return theme.percent(change, signed=True) if change is not None else "new"
