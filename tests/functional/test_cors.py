"""The real API functions' answers carry CORS headers, so a page on another origin can read them:
201s, reports, and problems alike (API Gateway's own answers carry them through the template)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from local.template import DataStack
from tests.functional.conftest import Answer, InProcessApi

VALID = {"reportType": "COFFEE_SALES", "reportDate": "2021-01-01"}
ORIGIN = {"Origin": "https://reports.example.com"}


def assert_readable_cross_origin(answer: Answer) -> None:
    assert answer.header("Access-Control-Allow-Origin") == "*"
    exposed = {h.strip().lower() for h in (answer.header("Access-Control-Expose-Headers") or "").split(",")}
    assert {"location", "retry-after", "etag"} <= exposed
    allowed = {h.strip().lower() for h in (answer.header("Access-Control-Allow-Headers") or "").split(",")}
    assert {"content-type", "x-api-key", "idempotency-key", "if-none-match"} <= allowed


def test_a_201_and_the_polled_report_are_readable_from_another_origin(api: InProcessApi, stack: DataStack) -> None:
    # WHEN a page on another origin submits a report and reads it
    created = api.post(VALID, headers=ORIGIN)
    polled = api.get(created.body["id"], headers=ORIGIN)
    # THEN both answers let it read the body and the headers it follows (Location, Retry-After, ETag)
    assert created.status == 201
    assert polled.status == 200
    assert_readable_cross_origin(created)
    assert_readable_cross_origin(polled)


@pytest.mark.parametrize(
    ("send", "status"),
    [
        (lambda api: api.post({"reportType": "COFFEE_SALES", "reportDate": "2021-02-30"}, headers=ORIGIN), 400),
        (lambda api: api.post(VALID, headers=ORIGIN, content_type="text/plain"), 415),
        (lambda api: api.get("01KAQ9Z3M2C7V4N8P6R5T0W1XY", headers=ORIGIN), 404),
        (lambda api: api.post(VALID, headers=ORIGIN, tenant=None), 401),
    ],
    ids=["impossible date", "not JSON", "unknown report", "no tenant"],
)
def test_problems_are_readable_from_another_origin(
    api: InProcessApi, send: Callable[[InProcessApi], Answer], status: int
) -> None:
    answer = send(api)
    assert answer.status == status
    assert answer.header("Content-Type") == "application/problem+json"
    assert_readable_cross_origin(answer)


def test_a_request_without_an_origin_gets_no_cors_headers(api: InProcessApi, stack: DataStack) -> None:
    answer = api.post(VALID)
    assert answer.status == 201
    assert answer.header("Access-Control-Allow-Origin") is None
