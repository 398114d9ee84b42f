"""COFFEE_SALES_MONTHLY: the calendar month containing ``reportDate``.

Three A4 pages: KPIs, highlights and a sheet of charts (daily revenue with its 7-day average,
weekday pattern, category mix, product and store rankings); the product, store and category
tables; and the month day by day. The period starts six days before the month so the 7-day
average is a full week from the 1st. matplotlib and reportlab are imported inside ``render`` only.
"""

from __future__ import annotations

import calendar
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
    from reports.sales import SaleRecord

NAME = "COFFEE_SALES_MONTHLY"
AVERAGE_WINDOW = 7
SHEET_WIDTH, SHEET_HEIGHT = 515.0, 560.0
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def month_of(day: date) -> tuple[date, date]:
    first = day.replace(day=1)
    return first, first.replace(day=calendar.monthrange(day.year, day.month)[1])


def period(day: date) -> tuple[date, date]:
    """The month, plus the six days before it that the first days' 7-day averages need."""
    first, last = month_of(day)
    return first - timedelta(days=AVERAGE_WINDOW - 1), last


def render(data: RenderInput) -> bytes:
    first, last = month_of(data.report_date)
    by_day = metrics.split_by_day(data.records)
    if not any(first <= day <= last for day in by_day):
        raise NoDataError(f"there are no sales records for {first:%B %Y}")
    figures = _MonthFigures(first, last, by_day)

    data.progress("charting", 40)
    chart = _chart_sheet(figures)

    data.progress("laying out", 70)
    from reports.render import pdf

    header = pdf.PageHeader(
        title="Monthly Sales Report",
        subject=f"{first:%B %Y}",
        report_id=data.report_id,
        generated_at=data.generated_at,
    )
    return pdf.build(header, _story(figures, chart))


DEFINITION = ReportDefinition(
    name=NAME,
    title="Monthly coffee sales",
    description="The calendar month containing reportDate: daily revenue with its 7-day average, the weekday "
    "pattern, product and store rankings, category mix and month totals, with a day-by-day table.",
    period=period,
    render=render,
    expected_seconds=3.0,
)


class _MonthFigures:
    """Everything the pages show, computed once; days without records are closed days."""

    def __init__(self, first: date, last: date, by_day: dict[date, list[SaleRecord]]) -> None:
        self.first, self.last = first, last
        self.days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
        month_records = [record for day in self.days for record in by_day.get(day, [])]
        self.total = metrics.totals(month_records)
        self.daily = {day: metrics.totals(by_day[day]) for day in self.days if day in by_day}
        self.open_days = len(self.daily)
        lead_in = [first - timedelta(days=offset) for offset in range(AVERAGE_WINDOW - 1, 0, -1)]
        series: list[float | None] = [
            metrics.totals(by_day[day]).revenue_cents if day in by_day else None for day in lead_in
        ]
        series += [self.daily[day].revenue_cents if day in self.daily else None for day in self.days]
        self.average = metrics.moving_average(series, AVERAGE_WINDOW, min_present=4)[len(lead_in) :]
        self.products = metrics.ranked(metrics.group_totals(month_records, lambda r: r.product))
        self.categories = metrics.ranked(metrics.group_totals(month_records, lambda r: r.category))
        self.stores = metrics.ranked(metrics.group_totals(month_records, lambda r: (r.store_name, r.city)))
        self.category_of = {r.product: r.category for r in month_records}
        weekday_revenue: dict[int, list[int]] = {weekday: [] for weekday in range(7)}
        for day, totals in self.daily.items():
            weekday_revenue[day.weekday()].append(totals.revenue_cents)
        self.weekday_average = [sum(v) / len(v) if v else 0.0 for v in weekday_revenue.values()]
        self.best_day, self.best = max(self.daily.items(), key=lambda item: (item[1].revenue_cents, item[0]))

    @property
    def closed_days(self) -> list[date]:
        return [day for day in self.days if day not in self.daily]


def _chart_sheet(figures: _MonthFigures) -> ChartImage:
    from reports.render import charts

    sheet = charts.ChartSheet(SHEET_WIDTH, SHEET_HEIGHT)
    daily = charts.Box(34, 40, 478, 150)
    sheet.title(daily, "Revenue by day", "All stores; line: trailing 7-day average of open days", indent=34)
    charts.daily_revenue(
        sheet,
        daily,
        day_labels=[str(day.day) for day in figures.days],
        revenue=[figures.daily[day].revenue_cents if day in figures.daily else None for day in figures.days],
        average=figures.average,
        weekend=[day.weekday() >= 5 for day in figures.days],
    )

    weekdays = charts.Box(0, 262, 235, 96)
    sheet.title(weekdays, "Average day by weekday", "Revenue per open day")
    charts.weekday_pattern(
        sheet,
        weekdays,
        labels=WEEKDAYS,
        values=figures.weekday_average,
        weekend=[weekday >= 5 for weekday in range(7)],
    )

    _sales_charts.category_mix(
        sheet,
        charts.Box(300, 262, 200, 100),
        figures.categories,
        subtitle="Share of the month's revenue",
        centre=theme.money_short(figures.total.revenue_cents),
    )
    _sales_charts.product_ranking(
        sheet, charts.Box(82, 408, 150, 150), figures.products, figures.category_of, title="Products by revenue"
    )
    _sales_charts.store_ranking(sheet, charts.Box(380, 408, 100, 100), figures.stores, title="Stores by revenue")
    return sheet.render()


def _story(figures: _MonthFigures, chart: ChartImage) -> list[Flowable]:
    from reports.render import pdf

    total = figures.total
    closed = figures.closed_days
    cards = [
        pdf.KpiCard(
            "Revenue",
            theme.money(total.revenue_cents),
            f"{figures.open_days} open days" + (f", {len(closed)} closed" if closed else ""),
        ),
        pdf.KpiCard("Orders", theme.count(total.orders), f"{total.orders / figures.open_days:,.0f} per open day"),
        pdf.KpiCard(
            "Average ticket",
            theme.money_exact(total.average_ticket_cents),
            f"{total.items / total.orders:.2f} items per order" if total.orders else "",
        ),
        pdf.KpiCard("Best day", theme.money(figures.best.revenue_cents), theme.long_date(figures.best_day)),
    ]
    story: list[Flowable] = [
        pdf.KpiRow(cards),
        pdf.gap(10),
        *pdf.bullets(_highlights(figures)),
        pdf.gap(6),
        pdf.ChartBlock(chart),
        pdf.page_break(),
        pdf.heading("Products"),
        _sales_tables.product_table(figures.products, figures.category_of, total, _per_day_column(figures)),
        pdf.heading("Stores"),
        _sales_tables.store_table(figures.stores, total, _per_day_column(figures)),
        pdf.heading("Categories"),
        _category_table(figures),
        pdf.page_break(),
        pdf.heading("Day by day"),
        _daily_table(figures),
        pdf.gap(10),
        pdf.note(
            "Revenue is the sum of line totals before tax. Orders count distinct tickets; an order with a latte "
            "and a croissant counts once in the totals and once for each product. Days without any sales are "
            "shown as closed. The 7-day average covers the open days among the last seven, including the end "
            "of the previous month."
        ),
    ]
    return story


def _highlights(figures: _MonthFigures) -> list[str]:
    total = figures.total
    strongest = max(range(7), key=lambda weekday: figures.weekday_average[weekday])
    product, product_totals = figures.products[0]
    (store, city), store_totals = figures.stores[0]
    return [
        f"<b>{theme.money(total.revenue_cents)}</b> from <b>{theme.count(total.orders)} orders</b> over "
        f"{figures.open_days} open days, {theme.money(total.revenue_cents / figures.open_days)} a day on average.",
        f"Best day: <b>{theme.long_date(figures.best_day)}</b> with {theme.money(figures.best.revenue_cents)}; "
        f"strongest weekday on average: <b>{calendar.day_name[strongest]}</b> "
        f"({theme.money(figures.weekday_average[strongest])}).",
        f"Best seller: <b>{product}</b> with {theme.money(product_totals.revenue_cents)} "
        f"({_sales_tables.share(product_totals, total)} of revenue); top store: <b>{store}</b>, {city}, "
        f"with {theme.money(store_totals.revenue_cents)}.",
    ]


def _per_day_column(figures: _MonthFigures) -> _sales_tables.ExtraColumn:
    def value(_key: str, totals: Totals) -> str:
        return theme.money(totals.revenue_cents / figures.open_days)

    return _sales_tables.ExtraColumn(
        "Per open day", value, theme.money(figures.total.revenue_cents / figures.open_days)
    )


def _category_table(figures: _MonthFigures) -> Flowable:
    from reports.render import pdf

    columns = [
        pdf.Column("Category", 205),
        pdf.Column("Orders", 55, "RIGHT"),
        pdf.Column("Items", 55, "RIGHT"),
        pdf.Column("Revenue", 70, "RIGHT"),
        pdf.Column("Share", 60, "RIGHT"),
        pdf.Column("Per open day", 70, "RIGHT"),
    ]
    rows = [
        [
            name.capitalize(),
            theme.count(totals.orders),
            theme.count(totals.items),
            theme.money(totals.revenue_cents),
            _sales_tables.share(totals, figures.total),
            theme.money(totals.revenue_cents / figures.open_days),
        ]
        for name, totals in figures.categories
    ]
    total = figures.total
    footer = [
        "All categories",
        theme.count(total.orders),
        theme.count(total.items),
        theme.money(total.revenue_cents),
        "100.0%",
        theme.money(total.revenue_cents / figures.open_days),
    ]
    return pdf.table(columns, rows, total=footer)


def _daily_table(figures: _MonthFigures) -> Flowable:
    from reports.render import pdf

    columns = [
        pdf.Column("Date", 130),
        pdf.Column("Orders", 65, "RIGHT"),
        pdf.Column("Items", 65, "RIGHT"),
        pdf.Column("Revenue", 80, "RIGHT"),
        pdf.Column("Avg ticket", 75, "RIGHT"),
        pdf.Column("7-day average", 100, "RIGHT"),
    ]
    rows: list[list[str]] = []
    for day, average in zip(figures.days, figures.average, strict=True):
        totals = figures.daily.get(day)
        shown_average = theme.money(average) if average is not None else "–"
        if totals is None:
            rows.append([theme.long_date(day), "closed", "", "", "", shown_average])
            continue
        rows.append(
            [
                theme.long_date(day),
                theme.count(totals.orders),
                theme.count(totals.items),
                theme.money(totals.revenue_cents),
                theme.money_exact(totals.average_ticket_cents),
                shown_average,
            ]
        )
    total = figures.total
    footer = [
        f"{figures.first:%B %Y}",
        theme.count(total.orders),
        theme.count(total.items),
        theme.money(total.revenue_cents),
        theme.money_exact(total.average_ticket_cents),
        "",
    ]
    return pdf.table(columns, rows, total=footer)
