"""HTTP semantics without a framework: body decoding, problems, ETags and the representation."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from reports.errors import EnqueueError, ReportNotFoundError, ValidationError
from reports.http import (
    MAX_BODY_BYTES,
    PROBLEM_JSON,
    HttpProblemError,
    decode_json_body,
    etag,
    matches_if_none_match,
    parse_idempotency_key,
    pdf_answer,
    problem_for,
    problem_response,
    report_resource,
)
from reports.model import Progress, Report, ReportErrorInfo, ReportStatus

CREATED = datetime(2021, 1, 1, 12, 0, tzinfo=UTC)


def make_report(**changes: object) -> Report:
    report = Report(
        id="01JH2Z3Y4X5W6V7T8S9R0Q1P2N",
        tenant="t",
        report_type="COFFEE_SALES",
        report_date=date(2021, 1, 1),
        status=ReportStatus.QUEUED,
        created_at=CREATED,
        updated_at=CREATED,
        expires_at=0,
        version=3,
    )
    return report.with_changes(**changes)


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON", "application/x+json"]
)
def test_json_media_types_are_accepted(content_type: str) -> None:
    assert decode_json_body(content_type, b'{"a": 1}') == {"a": 1}


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/xml", "multipart/form-data; boundary=x"])
def test_other_media_types_are_415(content_type: str | None) -> None:
    with pytest.raises(HttpProblemError) as raised:
        decode_json_body(content_type, b"{}")
    assert raised.value.status == 415


def test_a_body_over_the_limit_is_413_and_at_the_limit_is_read() -> None:
    with pytest.raises(HttpProblemError) as raised:
        decode_json_body("application/json", b" " * (MAX_BODY_BYTES + 1))
    assert raised.value.status == 413
    padded = b'{"a":1}'.ljust(MAX_BODY_BYTES)
    assert decode_json_body("application/json", padded) == {"a": 1}


def test_malformed_json_says_where() -> None:
    with pytest.raises(ValidationError, match="Expecting value at line 2, column 7"):
        decode_json_body("application/json", b'{"a": 1,\n "b": }')
    with pytest.raises(ValidationError, match="not UTF-8"):
        decode_json_body("application/json", b'{"a": "\xff"}')


def test_problems_are_rfc9457_documents() -> None:
    problem = problem_for(ValidationError("reportDate is required", field="reportDate"))
    response = problem_response(problem, instance="/api/v1/report")
    assert response.content_type == PROBLEM_JSON
    assert response.body == {
        "type": "urn:async-reports:problem:invalid-request",
        "title": "Invalid request",
        "status": 400,
        "detail": "reportDate is required",
        "instance": "/api/v1/report",
        "field": "reportDate",
    }
    assert problem_for(ReportNotFoundError("x")).status == 404
    unavailable = problem_for(EnqueueError("queue down"))
    assert (unavailable.status, unavailable.headers["Retry-After"]) == (503, "2")
    hidden = problem_for(KeyError("internal detail"))
    assert hidden.status == 500
    assert "internal detail" not in hidden.detail


def test_if_none_match_uses_weak_comparison_over_a_list() -> None:
    tag = etag(make_report())
    assert tag == 'W/"01JH2Z3Y4X5W6V7T8S9R0Q1P2N.3"'
    assert matches_if_none_match(tag, tag)
    assert matches_if_none_match('"01JH2Z3Y4X5W6V7T8S9R0Q1P2N.3"', tag)
    assert matches_if_none_match('"a", W/"01JH2Z3Y4X5W6V7T8S9R0Q1P2N.3"', tag)
    assert matches_if_none_match("*", tag)
    assert not matches_if_none_match('W/"01JH2Z3Y4X5W6V7T8S9R0Q1P2N.2"', tag)
    assert not matches_if_none_match(None, tag)


def test_idempotency_keys_must_be_printable_and_bounded() -> None:
    assert parse_idempotency_key(None) is None
    assert parse_idempotency_key(" abc ") == "abc"
    for bad in ("", "a" * 256, "tab\there"):
        with pytest.raises(ValidationError):
            parse_idempotency_key(bad)


def test_the_representation_keeps_completed_for_old_clients_and_links_relative_to_the_stage() -> None:
    done = make_report(
        status=ReportStatus.COMPLETED, completed_at=CREATED, progress=Progress("done", 100), pdf_key="reports/t/x.pdf"
    )
    resource = report_resource(done, base_path="/v1", pdf_uri="https://s3/x")
    assert resource["completed"] is True
    assert resource["status"] == "COMPLETED"
    assert resource["createdAt"] == "2021-01-01T12:00:00.000Z"
    assert resource["pdfUri"] == "https://s3/x"
    assert resource["_links"]["self"]["href"] == "/v1/api/v1/report/01JH2Z3Y4X5W6V7T8S9R0Q1P2N"
    failed = report_resource(
        make_report(status=ReportStatus.FAILED, error=ReportErrorInfo("NO_DATA", "none")), base_path=""
    )
    assert failed["error"] == {"code": "NO_DATA", "message": "none"}
    assert "pdf" not in failed["_links"]


def test_the_pdf_link_explains_why_there_is_no_pdf_yet() -> None:
    with pytest.raises(HttpProblemError) as raised:
        pdf_answer(make_report(status=ReportStatus.RUNNING), presign=str, now=CREATED, estimate=lambda _: 4.0)
    assert raised.value.status == 409
    assert raised.value.headers == {"Retry-After": "4"}
    assert "RUNNING" in raised.value.detail
    done = make_report(status=ReportStatus.COMPLETED, pdf_key="reports/t/x.pdf")
    answer = pdf_answer(done, presign=lambda key: f"https://s3/{key}", now=CREATED, estimate=lambda _: 4.0)
    assert (answer.status, answer.headers["Location"]) == (303, "https://s3/reports/t/x.pdf")
