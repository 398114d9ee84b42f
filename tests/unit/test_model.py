"""The report model: request validation, the status machine, ids and the polling hint."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from reports.errors import ValidationError
from reports.model import (
    Report,
    ReportStatus,
    can_move,
    is_report_id,
    new_report_id,
    parse_report_request,
    suggest_retry_after,
)

TYPES = {"COFFEE_SALES", "COFFEE_SALES_MONTHLY"}
TODAY = date(2026, 11, 23)


def test_a_valid_request_is_parsed_and_trimmed() -> None:
    request = parse_report_request(
        {"reportType": " COFFEE_SALES ", "reportDate": "2021-01-01"}, known_types=TYPES, today=TODAY
    )
    assert (request.report_type, request.report_date) == ("COFFEE_SALES", date(2021, 1, 1))
    assert request.canonical() == {"reportType": "COFFEE_SALES", "reportDate": "2021-01-01"}


@pytest.mark.parametrize(
    ("body", "field", "detail"),
    [
        ({"reportType": "COFFEE_SALES", "reportDate": "2021-13-01"}, "reportDate", "not a calendar date"),
        ({"reportType": "COFFEE_SALES", "reportDate": "2021-1-1"}, "reportDate", "YYYY-MM-DD"),
        ({"reportType": "COFFEE_SALES", "reportDate": "2026-11-24"}, "reportDate", "the latest date is 2026-11-23"),
        (
            {"reportType": "coffee_sales", "reportDate": "2021-01-01"},
            "reportType",
            "COFFEE_SALES, COFFEE_SALES_MONTHLY",
        ),
        ({"reportType": None, "reportDate": "2021-01-01"}, "reportType", "got null"),
        ({"reportType": "COFFEE_SALES", "reportDate": True}, "reportDate", "got a boolean"),
        ({"reportType": "COFFEE_SALES", "reportDate": "2021-01-01", "callbackUrl": "https://x"}, "callbackUrl", "poll"),
    ],
)
def test_invalid_requests_name_the_field_and_the_fix(body: dict[str, object], field: str, detail: str) -> None:
    with pytest.raises(ValidationError) as raised:
        parse_report_request(body, known_types=TYPES, today=TODAY)
    assert raised.value.field == field
    assert detail in raised.value.detail


def test_the_status_machine_never_moves_backwards_or_out_of_a_final_state() -> None:
    assert can_move(ReportStatus.QUEUED, ReportStatus.RUNNING)
    assert can_move(ReportStatus.RUNNING, ReportStatus.RUNNING)  # a redelivery taking over
    assert can_move(ReportStatus.RUNNING, ReportStatus.COMPLETED)
    assert can_move(ReportStatus.QUEUED, ReportStatus.FAILED)
    assert not can_move(ReportStatus.QUEUED, ReportStatus.COMPLETED)
    for final in (ReportStatus.COMPLETED, ReportStatus.FAILED):
        assert final.is_final
        for target in ReportStatus:
            assert not can_move(final, target)
    assert not can_move(ReportStatus.RUNNING, ReportStatus.QUEUED)


def test_report_ids_are_ulids_that_sort_by_creation_time() -> None:
    earlier = new_report_id(datetime(2021, 1, 1, tzinfo=UTC))
    later = new_report_id(datetime(2021, 1, 1, 0, 0, 1, tzinfo=UTC))
    assert is_report_id(earlier)
    assert is_report_id(later)
    assert earlier < later
    assert len({new_report_id() for _ in range(1000)}) == 1000
    assert not is_report_id("01JH2Z3Y4X5W6V7T8S9R0Q1P2")  # 25 characters
    assert not is_report_id("01JH2Z3Y4X5W6V7T8S9R0Q1P2U")  # U is not Crockford base32


def _report(created: datetime) -> Report:
    return Report(
        id=new_report_id(created),
        tenant="t",
        report_type="COFFEE_SALES",
        report_date=date(2021, 1, 1),
        status=ReportStatus.QUEUED,
        created_at=created,
        updated_at=created,
        expires_at=0,
    )


def test_retry_after_points_at_the_expected_end_then_backs_off_when_overdue() -> None:
    created = datetime(2021, 1, 1, tzinfo=UTC)
    report = _report(created)
    assert suggest_retry_after(report, now=created, expected_seconds=8.2) == 9
    assert suggest_retry_after(report, now=created + timedelta(seconds=6), expected_seconds=8) == 2
    # overdue: the hint grows with the report's age, within bounds
    assert suggest_retry_after(report, now=created + timedelta(seconds=20), expected_seconds=8) == 4
    assert suggest_retry_after(report, now=created + timedelta(hours=1), expected_seconds=8) == 30
    assert suggest_retry_after(report, now=created, expected_seconds=0.1) == 1
