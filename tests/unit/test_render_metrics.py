"""The figures reports show: totals, groupings, rankings, changes and the moving average."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from reports.render import metrics, theme
from reports.sales import SaleRecord


def line(order: str, product: str, quantity: int, price: int, *, day: int = 1, store: str = "Pike Place") -> SaleRecord:
    return SaleRecord(order, datetime(2021, 1, day, 9), "S", store, "Seattle", product, "coffee", quantity, price)


RECORDS = [
    line("A", "Latte", 1, 495),
    line("A", "Croissant", 2, 395),
    line("B", "Latte", 1, 495, store="Back Bay"),
    line("C", "Espresso", 1, 300, day=2),
]


def test_totals_count_orders_once_however_many_lines_they_have() -> None:
    assert metrics.totals(RECORDS) == metrics.Totals(revenue_cents=2080, orders=3, items=5)
    assert metrics.totals(RECORDS).average_ticket_cents == pytest.approx(2080 / 3)
    assert metrics.totals([]).average_ticket_cents == 0


def test_an_order_spread_over_products_counts_once_for_each_product() -> None:
    by_product = metrics.group_totals(RECORDS, lambda r: r.product)
    assert by_product["Latte"] == metrics.Totals(990, 2, 2)
    assert by_product["Croissant"] == metrics.Totals(790, 1, 2)


def test_ranking_is_by_revenue_then_name() -> None:
    ranked = metrics.ranked({"b": metrics.Totals(5, 1, 1), "a": metrics.Totals(5, 1, 1), "c": metrics.Totals(9, 1, 1)})
    assert [name for name, _ in ranked] == ["c", "a", "b"]


def test_records_split_by_day() -> None:
    assert {day: len(records) for day, records in metrics.split_by_day(RECORDS).items()} == {
        date(2021, 1, 1): 3,
        date(2021, 1, 2): 1,
    }


def test_change_is_none_without_a_base() -> None:
    assert metrics.change(110, 100) == pytest.approx(0.1)
    assert metrics.change(5, None) is None
    assert metrics.change(5, 0) is None


def test_moving_average_skips_closed_days_and_waits_for_enough_of_them() -> None:
    # GIVEN a week with a closed day (None)
    values: list[float | None] = [10, 20, None, 30, 40, 50, 60, 70]
    # WHEN averaged over 3 days, needing 2 present
    averages = metrics.moving_average(values, 3, min_present=2)
    # THEN a closed day leaves the average to the open ones and the first day has none
    assert averages == [None, 15, 15, 25, 35, 40, 50, 60]


@pytest.mark.parametrize(
    ("cents", "short"), [(4_200, "$42"), (123_456, "$1.2k"), (4_321_000, "$43k"), (250_000_000, "$2.5M")]
)
def test_money_is_written_for_the_space_it_has(cents: int, short: str) -> None:
    assert theme.money_short(cents) == short


def test_money_formats() -> None:
    assert theme.money(1_234_567) == "$12,346"
    assert theme.money_exact(748) == "$7.48"
    assert theme.percent(0.0523, signed=True) == "+5.2%"
    assert theme.long_date(date(2021, 1, 1)) == "Friday, 1 January 2021"
    assert theme.short_date(date(2020, 12, 25)) == "Fri 25 Dec"
