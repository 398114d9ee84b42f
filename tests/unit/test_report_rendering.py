"""The two sales reports render real PDFs from records, fail cleanly without data, and report progress."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from functools import cache

import pytest
from pypdf import PdfReader

from reports.catalog import RenderInput, ReportDefinition, get_definition
from reports.errors import NoDataError
from reports.sales import SaleRecord, generate_day

GENERATED_AT = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


def definition(name: str) -> ReportDefinition:
    found = get_definition(name)
    assert found is not None
    return found


@cache
def period_records(name: str, day: date) -> tuple[SaleRecord, ...]:
    start, end = definition(name).period(day)
    return tuple(r for offset in range((end - start).days + 1) for r in generate_day(start + timedelta(offset)))


def render_input(name: str, day: date, records: Sequence[SaleRecord] | None = None, **extra: object) -> RenderInput:
    start, end = definition(name).period(day)
    chosen = period_records(name, day) if records is None else records
    return RenderInput("01TESTREPORT00000000000000", day, start, end, chosen, GENERATED_AT, **extra)  # type: ignore[arg-type]


def pdf_text(pdf: bytes) -> tuple[int, str]:
    reader = PdfReader(io.BytesIO(pdf))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


def test_the_daily_report_is_a_two_page_pdf_with_its_figures() -> None:
    # GIVEN a Friday whose previous Friday traded
    day = date(2021, 1, 8)
    # WHEN the daily report is rendered
    pdf = definition("COFFEE_SALES").render(render_input("COFFEE_SALES", day))
    # THEN it is a PDF of two pages naming the day, its report and the comparison
    assert pdf.startswith(b"%PDF-")
    pages, text = pdf_text(pdf)
    assert pages == 2
    assert "Daily Sales Report" in text
    assert "Friday, 8 January 2021" in text
    assert "Page 1 of 2" in text
    assert "Page 2 of 2" in text
    assert "01TESTREPORT00000000000000" in text
    assert "2024-05-06 07:08 UTC" in text
    assert "vs Fri 1 Jan" in text
    assert "Revenue by hour" in text
    assert "Pike Place" in text


def test_the_daily_report_says_when_last_week_has_nothing_to_compare() -> None:
    # GIVEN New Year's Day 2021, a week after the stores were closed for Christmas
    pdf = definition("COFFEE_SALES").render(render_input("COFFEE_SALES", date(2021, 1, 1)))
    # THEN the cards say there was nothing to compare with instead of a change
    _, text = pdf_text(pdf)
    assert "No sales on Fri 25 Dec" in text
    assert "vs Fri 25 Dec" not in text


def test_the_monthly_report_is_a_three_page_pdf_marking_closed_days() -> None:
    # GIVEN December 2020, which has Christmas Day closed
    pdf = definition("COFFEE_SALES_MONTHLY").render(render_input("COFFEE_SALES_MONTHLY", date(2020, 12, 10)))
    # THEN it is a PDF of three pages with the month, its rankings and a closed day
    assert pdf.startswith(b"%PDF-")
    pages, text = pdf_text(pdf)
    assert pages == 3
    assert "Monthly Sales Report" in text
    assert "December 2020" in text
    assert "Day by day" in text
    assert "Friday, 25 December 2020" in text
    assert "closed" in text
    assert "Page 3 of 3" in text


def test_a_daily_report_for_christmas_day_has_no_data() -> None:
    # GIVEN the daily period of Christmas Day 2020, where only the week before traded
    records = period_records("COFFEE_SALES", date(2020, 12, 25))
    assert records, "the previous Friday has sales; they must not count"
    # WHEN rendered
    # THEN it fails with NO_DATA, naming the day
    with pytest.raises(NoDataError, match="25 December 2020") as raised:
        definition("COFFEE_SALES").render(render_input("COFFEE_SALES", date(2020, 12, 25), records))
    assert raised.value.code == "NO_DATA"


@pytest.mark.parametrize(
    ("name", "day", "named"),
    [("COFFEE_SALES", date(2019, 6, 3), "3 June 2019"), ("COFFEE_SALES_MONTHLY", date(2019, 6, 3), "June 2019")],
)
def test_a_period_without_records_has_no_data(name: str, day: date, named: str) -> None:
    with pytest.raises(NoDataError, match=named):
        definition(name).render(render_input(name, day, []))


def test_a_monthly_report_ignores_the_lead_in_days_when_deciding_there_is_data() -> None:
    # GIVEN only the days before the month (the 7-day average's lead-in)
    lead_in = [r for r in period_records("COFFEE_SALES_MONTHLY", date(2021, 2, 1)) if r.sold_at.month == 1]
    # THEN February has no data
    with pytest.raises(NoDataError, match="February 2021"):
        definition("COFFEE_SALES_MONTHLY").render(render_input("COFFEE_SALES_MONTHLY", date(2021, 2, 1), lead_in))


@pytest.mark.parametrize("name", ["COFFEE_SALES", "COFFEE_SALES_MONTHLY"])
def test_progress_is_reported_in_order_with_growing_percent(name: str) -> None:
    # GIVEN a callback that records what it is told
    calls: list[tuple[str, int]] = []
    # WHEN a report renders
    definition(name).render(
        render_input(name, date(2021, 3, 10), progress=lambda step, percent: calls.append((step, percent)))
    )
    # THEN charting and layout are announced, in that order, percent rising
    assert calls == [("charting", 40), ("laying out", 70)]


def test_the_same_input_renders_the_same_pages() -> None:
    # GIVEN the same input twice
    data = render_input("COFFEE_SALES", date(2021, 1, 8))
    # THEN the pages carry the same text (PDF bytes differ only in reportlab's document id and dates)
    first = pdf_text(definition("COFFEE_SALES").render(data))
    second = pdf_text(definition("COFFEE_SALES").render(data))
    assert first == second
