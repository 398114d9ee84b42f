"""COFFEE_SALES: one day of the chain's sales, compared with the most recent same weekday that traded.

That is normally the same weekday a week earlier; when the stores were closed then (Christmas Day,
a week before New Year's Day), the comparison reaches back a week at a time, at most
``LOOKBACK_WEEKS``, and names the day it uses; with no such day, one note says so. Two A4 pages:
KPIs, highlights and a sheet of charts (hourly revenue against the comparison day, products,
category mix, stores), then the product and store tables. matplotlib and reportlab are imported
inside ``render`` only (see ``reports.catalog``): the API functions import this module to validate
report types and must stay light.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping, Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING

from reports.catalog import RenderInput, ReportDefinition
from reports.errors import NoDataError
from reports.render import metrics, theme
from reports.render.metrics import Totals
from reports.report_types import _sales_charts, _sales_tables
from reports.sales import is_closed

if TYPE_CHECKING:
    from reportlab.platypus import Flowable

    from reports.render.charts import ChartImage
    from reports.render.pdf import KpiCard
    from reports.sales import SaleRecord

NAME = "COFFEE_SALES"
SHEET_WIDTH, SHEET_HEIGHT = 515.0, 580.0
HOURS = tuple(range(6, 20))
"""Opening hours shown on the hourly chart: the same axis every day, so holiday hours look short."""


LOOKBACK_WEEKS = 4
"""How many same weekdays back the comparison may reach when the stores were closed on the nearer ones."""


def comparison_candidates(day: date) -> list[date]:
    """The same weekday 1..``LOOKBACK_WEEKS`` weeks before ``day``, most recent first."""
    return [day - timedelta(weeks=weeks) for weeks in range(1, LOOKBACK_WEEKS + 1)]


def period(day: date) -> tuple[date, date]:
    """The day, back to the same weekday it will be compared with.

    That is a week earlier unless the chain's calendar has the stores closed then (``sales.is_closed``),
    in which case it is the most recent same weekday they open, at most ``LOOKBACK_WEEKS`` back. The
    catalog fetches contiguous ranges, so the days between come too; the render reads only the day and
    the same weekdays, and still decides from the records which of those had sales.
    """
    candidates = comparison_candidates(day)
    return next((candidate for candidate in candidates if not is_closed(candidate)), candidates[-1]), day


def comparison_day(day: date, days_with_sales: Container[date], *, earliest: date) -> date | None:
    """The most recent same weekday before ``day``, not before ``earliest``, that had sales; None if none did."""
    for candidate in comparison_candidates(day):
        if candidate >= earliest and candidate in days_with_sales:
            return candidate
    return None


def render(data: RenderInput) -> bytes:
    day = data.report_date
    by_day = metrics.split_by_day(data.records)
    today = by_day.get(day, [])
    if not today:
        raise NoDataError(f"there are no sales records for {theme.long_date(day)}; the stores may have been closed")
    previous_day = comparison_day(day, by_day, earliest=data.start)
    searched = [candidate for candidate in comparison_candidates(day) if candidate >= data.start]
    figures = _DayFigures(today, by_day.get(previous_day, []) if previous_day else [], previous_day, searched)

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
    "product, category and store, each compared with the same weekday a week earlier (or, when the stores "
    f"were closed then, the most recent one they traded in the {LOOKBACK_WEEKS} weeks before).",
    period=period,
    render=render,
    expected_seconds=2.0,
)


class _DayFigures:
    """Everything the pages show, computed once from the day's and the comparison day's records."""

    def __init__(
        self, today: list[SaleRecord], compared: list[SaleRecord], previous_day: date | None, searched: list[date]
    ) -> None:
        self.day = today[0].sold_at.date()
        self.previous_day = previous_day
        self.searched = searched
        """The same weekdays looked at for a comparison, most recent first."""
        self.skipped = [candidate for candidate in searched if previous_day is None or candidate > previous_day]
        """Those nearer than the comparison day (or all of them, without one): days without sales."""
        self.total = metrics.totals(today)
        self.previous = metrics.totals(compared) if previous_day else None
        self.by_hour = metrics.group_totals(today, lambda r: r.sold_at.hour)
        self.previous_by_hour = metrics.group_totals(compared, lambda r: r.sold_at.hour)
        self.products = metrics.ranked(metrics.group_totals(today, lambda r: r.product))
        self.previous_products = metrics.group_totals(compared, lambda r: r.product)
        self.categories = metrics.ranked(metrics.group_totals(today, lambda r: r.category))
        self.stores = metrics.ranked(metrics.group_totals(today, lambda r: (r.store_name, r.city)))
        self.previous_stores = metrics.group_totals(compared, lambda r: r.store_name)
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
        if figures.previous_day
        else None,
        labels=(theme.short_date(figures.day), theme.short_date(figures.previous_day) if figures.previous_day else ""),
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
    if figures.previous_day is None:
        return "All stores, store-local time"
    caption = f"All stores, store-local time; line: the same hours on {theme.long_date(figures.previous_day)}"
    if figures.skipped:
        caption += f" (no sales on {_either(figures.skipped)})"
    return caption


def _either(days: Sequence[date]) -> str:
    """Fri 25 Dec; Fri 25 Dec or Fri 18 Dec; Fri 25 Dec, Fri 18 Dec or Fri 11 Dec."""
    names = [theme.short_date(day) for day in days]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _no_comparison_note(figures: _DayFigures) -> str:
    """The one sentence shown instead of a change on every card when no same weekday had sales."""
    weekday = f"{figures.day:%A}"
    if not figures.searched:
        return f"<b>No comparison:</b> no sales were recorded on an earlier {weekday}."
    if len(figures.searched) == 1:
        return (
            f"<b>No comparison:</b> no sales were recorded on the {weekday} before "
            f"({theme.long_date(figures.searched[0])})."
        )
    weeks = _NUMBERS.get(len(figures.searched), str(len(figures.searched)))
    return (
        f"<b>No comparison:</b> no sales were recorded on {'either' if weeks == 'two' else 'any'} of the "
        f"{weeks} {weekday}s before "
        f"({theme.short_date(figures.searched[-1])} to {theme.short_date(figures.searched[0])} "
        f"{figures.searched[0]:%Y})."
    )


_NUMBERS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}


def _comparison_footnote(figures: _DayFigures) -> str:
    if figures.previous_day is None:
        return ""
    if not figures.skipped:
        return f" Changes compare with {theme.long_date(figures.previous_day)}, the same weekday a week earlier."
    return (
        f" Changes compare with {theme.long_date(figures.previous_day)}, the most recent {figures.day:%A} with "
        f"sales; there were none on {_either(figures.skipped)}."
    )


def _story(figures: _DayFigures, chart: ChartImage) -> list[Flowable]:
    from reports.render import pdf

    note = _no_comparison_note(figures) if figures.previous_day is None else ""
    story: list[Flowable] = [
        pdf.KpiRow(_cards(figures), note=note),
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
            "and a croissant counts once in the totals and once for each product. Times are store-local."
            + _comparison_footnote(figures)
        ),
    ]
    return story


def _cards(figures: _DayFigures) -> list[KpiCard]:
    """Each KPI with its change on the comparison day, named; without one, no note (the page says why once)."""
    from reports.render.pdf import KpiCard

    measures: list[tuple[str, Callable[[Totals], float], Callable[[float], str]]] = [
        ("Revenue", lambda t: t.revenue_cents, theme.money),
        ("Orders", lambda t: t.orders, theme.count),
        ("Average ticket", lambda t: t.average_ticket_cents, theme.money_exact),
        ("Items sold", lambda t: t.items, theme.count),
    ]
    cards = []
    for label, measure, shown in measures:
        current = measure(figures.total)
        if figures.previous_day is None or figures.previous is None:
            cards.append(KpiCard(label, shown(current), ""))
        else:
            previous = measure(figures.previous)
            trend = metrics.change(current, previous)
            before = theme.short_date(figures.previous_day)
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


def _change_column(figures: _DayFigures, previous: Mapping[str, Totals]) -> _sales_tables.ExtraColumn | None:
    """Revenue change on the comparison day, headed with that day; no column without one."""
    if figures.previous_day is None:
        return None

    def value(key: str, totals: Totals) -> str:
        return _signed_change(totals.revenue_cents, previous.get(key))

    return _sales_tables.ExtraColumn(
        f"vs {theme.short_date(figures.previous_day)}",
        value,
        _signed_change(figures.total.revenue_cents, figures.previous),
    )


def _signed_change(current: float, previous: Totals | None) -> str:
    change = metrics.change(current, previous.revenue_cents if previous else 0)
    return theme.percent(change, signed=True) if change is not None else "new"
