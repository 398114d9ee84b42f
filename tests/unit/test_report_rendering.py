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
from reports.report_types import coffee_sales
from reports.sales import SAMPLE_DATA_START, SaleRecord, generate_day

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


def days_with_sales(records: Sequence[SaleRecord]) -> set[date]:
    return {record.sold_at.date() for record in records}


def test_the_daily_report_fetches_back_to_the_weekday_it_compares_with() -> None:
    # GIVEN a Friday after a trading Friday, and New Year's Day, a week after the stores closed for Christmas
    period = definition("COFFEE_SALES").period
    # THEN the first fetches one week; the second two, back to Friday 18 December (not just to 25 December)
    assert period(date(2021, 1, 8)) == (date(2021, 1, 1), date(2021, 1, 8))
    assert period(date(2021, 1, 1)) == (date(2020, 12, 18), date(2021, 1, 1))


def test_the_fetched_look_back_ends_after_four_weeks(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a calendar closed on every earlier Friday
    monkeypatch.setattr(coffee_sales, "is_closed", lambda day: day < date(2021, 1, 8))
    # THEN the period stops four Fridays back
    day = date(2021, 1, 8)
    assert coffee_sales.comparison_candidates(day) == [
        date(2021, 1, 1),
        date(2020, 12, 25),
        date(2020, 12, 18),
        date(2020, 12, 11),
    ]
    assert definition("COFFEE_SALES").period(day) == (date(2020, 12, 11), day)


def test_a_normal_day_compares_with_the_same_weekday_exactly_a_week_earlier() -> None:
    # GIVEN a Friday whose previous Friday (New Year's Day) traded, and a mid-week day in spring
    for day in (date(2021, 1, 8), date(2021, 3, 10)):
        start, _ = definition("COFFEE_SALES").period(day)
        # WHEN the comparison day is chosen from the fetched period
        chosen = coffee_sales.comparison_day(day, days_with_sales(period_records("COFFEE_SALES", day)), earliest=start)
        # THEN it is seven days earlier
        assert chosen == day - timedelta(days=7)
    # AND the report says so, naming that day
    _, text = pdf_text(definition("COFFEE_SALES").render(render_input("COFFEE_SALES", date(2021, 1, 8))))
    assert "Changes compare with Friday, 1 January 2021, the same weekday a week earlier." in text
    assert "vs Fri 25 Dec" not in text


def test_new_years_day_compares_with_the_last_friday_that_traded() -> None:
    # GIVEN New Year's Day 2021, a week after the stores were closed for Christmas
    day = date(2021, 1, 1)
    start, _ = definition("COFFEE_SALES").period(day)
    records = period_records("COFFEE_SALES", day)
    # WHEN the comparison day is chosen
    # THEN it skips the closed Christmas Day for Friday 18 December
    assert coffee_sales.comparison_day(day, days_with_sales(records), earliest=start) == date(2020, 12, 18)
    # AND every card, the chart and both tables compare with it by name, saying why it is not last week
    _, text = pdf_text(definition("COFFEE_SALES").render(render_input("COFFEE_SALES", day)))
    for note in ("vs Fri 18 Dec ($5,950)", "vs Fri 18 Dec (819)", "vs Fri 18 Dec ($7.27)", "vs Fri 18 Dec (1,297)"):
        assert note in text
    assert text.count("vs Fri 18 Dec") == 6  # four cards, two table headings
    assert "line: the same hours on Friday, 18 December 2020 (no sales on Fri 25 Dec)" in text
    assert "Changes compare with Friday, 18 December 2020, the most recent Friday with sales" in text
    assert "No sales on" not in text
    assert "vs Fri 25 Dec" not in text
    assert "vs last week" not in text


def test_the_daily_report_reads_only_its_day_and_the_same_weekdays() -> None:
    # GIVEN the fetched period of New Year's Day, and only its Fridays out of it
    day = date(2021, 1, 1)
    fridays = [r for r in period_records("COFFEE_SALES", day) if r.sold_at.weekday() == day.weekday()]
    # THEN the days in between change nothing on the pages
    render = definition("COFFEE_SALES").render
    assert pdf_text(render(render_input("COFFEE_SALES", day, fridays))) == pdf_text(
        render(render_input("COFFEE_SALES", day))
    )


def test_the_look_back_stops_after_four_weeks_and_at_the_start_of_the_data() -> None:
    day = date(2021, 1, 8)
    assert coffee_sales.comparison_day(day, {day - timedelta(weeks=4)}, earliest=day - timedelta(weeks=4)) == (
        day - timedelta(weeks=4)
    )
    assert coffee_sales.comparison_day(day, {day - timedelta(weeks=5)}, earliest=day - timedelta(weeks=5)) is None
    assert coffee_sales.comparison_day(day, {day - timedelta(weeks=2)}, earliest=day - timedelta(days=10)) is None


def test_without_a_trading_weekday_in_the_look_back_one_note_says_so() -> None:
    # GIVEN four weeks of records in which only the report's own Friday traded
    day = date(2021, 1, 8)
    records = generate_day(day)
    data = RenderInput("01TESTREPORT00000000000000", day, day - timedelta(weeks=4), day, records, GENERATED_AT)
    # WHEN the daily report is rendered
    pages, text = pdf_text(definition("COFFEE_SALES").render(data))
    # THEN one note under the cards says there is nothing to compare with, naming the Fridays looked at
    assert pages == 2
    assert text.count("No comparison") == 1
    assert "no sales were recorded on any of the four Fridays before (Fri 11 Dec to Fri 1 Jan 2021)" in text
    # AND no card, chart or table repeats it or shows an empty comparison
    assert "No sales on" not in text
    assert "vs " not in text
    assert "Changes compare" not in text
    assert "–" not in text.split("Products", 1)[1]


def test_the_first_friday_of_the_sample_data_has_one_note_instead_of_a_comparison() -> None:
    # GIVEN 3 January 2020 as the bucket has it: nothing before 1 January 2020
    day = date(2020, 1, 3)
    records = [r for r in period_records("COFFEE_SALES", day) if r.sold_at.date() >= SAMPLE_DATA_START]
    # WHEN rendered
    _, text = pdf_text(definition("COFFEE_SALES").render(render_input("COFFEE_SALES", day, records)))
    # THEN the one note names the Friday the period reached back to
    assert text.count("No comparison") == 1
    assert "no sales were recorded on the Friday before (Friday, 27 December 2019)" in text
    assert "vs " not in text


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
