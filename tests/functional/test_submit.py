"""POST /api/v1/report through SubmitFunction, against the template's resources in moto."""

from __future__ import annotations

import json
from datetime import date

import boto3
import pytest

from local.template import DataStack
from reports import dependencies
from reports.errors import EnqueueError
from reports.http import MAX_BODY_BYTES
from tests.conftest import REGION, queued_report
from tests.functional.conftest import OTHER_TENANT, InProcessApi

VALID = {"reportType": "COFFEE_SALES", "reportDate": "2021-01-01"}


def queued_jobs(stack: DataStack) -> list[dict[str, object]]:
    sqs = boto3.client("sqs", region_name=REGION)
    answer = sqs.receive_message(QueueUrl=stack.ref("JobsQueue"), MaxNumberOfMessages=10, VisibilityTimeout=0)
    return [json.loads(m["Body"]) for m in answer.get("Messages", [])]


def stored_item(stack: DataStack, report_id: str) -> dict[str, object] | None:
    ddb = boto3.client("dynamodb", region_name=REGION)
    return ddb.get_item(TableName=stack.ref("ReportsTable"), Key={"id": {"S": report_id}}).get("Item")


def test_submit_answers_201_with_location_retry_after_and_the_report(api: InProcessApi, stack: DataStack) -> None:
    # WHEN
    answer = api.post(VALID)
    # THEN
    assert answer.status == 201
    report = answer.body
    assert answer.header("Location") == f"/v1/api/v1/report/{report['id']}"
    assert int(answer.header("Retry-After") or 0) >= 1
    assert (
        answer.header(
            "ETag",
        )
        == f'W/"{report["id"]}.1"'
    )
    assert report["status"] == "QUEUED"
    assert report["completed"] is False
    assert report["reportType"] == "COFFEE_SALES"
    assert report["reportDate"] == "2021-01-01"
    assert report["retryAfter"] == int(answer.header("Retry-After") or 0)
    assert report["_links"]["self"]["href"] == answer.header("Location")
    assert report["_links"]["pdf"]["href"] == answer.header("Location") + "/pdf"
    assert "pdfUri" not in report


def test_submit_stores_the_report_then_enqueues_exactly_one_job(api: InProcessApi, stack: DataStack) -> None:
    answer = api.post(VALID)
    item = stored_item(stack, answer.body["id"])
    assert item is not None
    assert item["status"] == {"S": "QUEUED"}
    assert item["tenant"] == {"S": "tenant-a-key-id"}
    assert int(item["expiresAt"]["N"]) > 0  # type: ignore[index]
    assert queued_jobs(stack) == [{"version": 1, "reportId": answer.body["id"]}]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ('{"reportType": "COFFEE_SALES", "reportDate": ', "not valid JSON"),
        ("[1, 2]", "must be a JSON object, got an array"),
        ("", "body is empty"),
        ({"reportDate": "2021-01-01"}, "reportType is required"),
        ({"reportType": "COFFEE_SALES"}, "reportDate is required"),
        ({"reportType": 7, "reportDate": "2021-01-01"}, "reportType must be a string, got a number"),
        ({"reportType": "TEA_SALES", "reportDate": "2021-01-01"}, "unknown reportType 'TEA_SALES'; choose one of"),
        ({"reportType": "COFFEE_SALES", "reportDate": "2021-02-30"}, "2021-02-30 is not a calendar date"),
        ({"reportType": "COFFEE_SALES", "reportDate": "01/02/2021"}, "must be a date as YYYY-MM-DD"),
        ({"reportType": "COFFEE_SALES", "reportDate": "2999-01-01"}, "is in the future"),
        ({**VALID, "colour": "blue"}, "unknown field 'colour'"),
    ],
)
def test_submit_rejects_bad_input_with_a_problem_naming_it(
    api: InProcessApi, stack: DataStack, body: object, detail: str
) -> None:
    # WHEN
    answer = api.post(body)
    # THEN
    assert answer.status == 400
    assert answer.header("Content-Type") == "application/problem+json"
    assert answer.body["status"] == 400
    assert answer.body["title"] == "Invalid request"
    assert detail in answer.body["detail"]
    assert queued_jobs(stack) == []


def test_submit_rejects_a_body_that_is_not_json_with_415(api: InProcessApi, stack: DataStack) -> None:
    answer = api.post("reportType=COFFEE_SALES", content_type="application/x-www-form-urlencoded")
    assert answer.status == 415
    assert "application/json" in answer.body["detail"]


def test_submit_rejects_an_oversized_body_with_413(api: InProcessApi, stack: DataStack) -> None:
    answer = api.post({**VALID, "padding": "x" * MAX_BODY_BYTES})
    assert answer.status == 413
    assert str(MAX_BODY_BYTES) in answer.body["detail"]


def test_submit_without_an_api_key_identity_is_401(api: InProcessApi, stack: DataStack) -> None:
    answer = api.post(VALID, tenant=None)
    assert answer.status == 401
    assert "x-api-key" in answer.body["detail"]
    assert queued_jobs(stack) == []


def test_an_unknown_route_is_a_404_problem(api: InProcessApi, stack: DataStack) -> None:
    answer = api.get("")
    assert answer.status == 404
    assert answer.header("Content-Type") == "application/problem+json"


def test_same_idempotency_key_and_body_returns_the_same_report_and_one_job(api: InProcessApi, stack: DataStack) -> None:
    # GIVEN
    first = api.post(VALID, headers={"Idempotency-Key": "order-42"})
    # WHEN
    again = api.post(VALID, headers={"Idempotency-Key": "order-42"})
    # THEN
    assert first.status == again.status == 201
    assert again.body["id"] == first.body["id"]
    assert again.header("Idempotent-Replayed") == "true"
    assert len(queued_jobs(stack)) == 1


def test_same_idempotency_key_with_another_body_is_422(api: InProcessApi, stack: DataStack) -> None:
    api.post(VALID, headers={"Idempotency-Key": "order-42"})
    answer = api.post({**VALID, "reportDate": "2021-01-02"}, headers={"Idempotency-Key": "order-42"})
    assert answer.status == 422
    assert "different request body" in answer.body["detail"]
    assert len(queued_jobs(stack)) == 1


def test_idempotency_keys_are_per_tenant(api: InProcessApi, stack: DataStack) -> None:
    mine = api.post(VALID, headers={"Idempotency-Key": "order-42"})
    theirs = api.post(VALID, headers={"Idempotency-Key": "order-42"}, tenant=OTHER_TENANT)
    assert theirs.status == 201
    assert theirs.body["id"] != mine.body["id"]


def test_an_idempotency_key_still_in_flight_is_409(api: InProcessApi, stack: DataStack) -> None:
    # GIVEN a first request that has claimed the key but not yet stored its report
    from reports.model import utc_now

    dependencies.idempotency_store().claim(
        "tenant-a-key-id",
        "order-7",
        {"reportType": "COFFEE_SALES", "reportDate": "2021-01-01"},
        "01JH2Z3Y4X5W6V7T8S9R0Q1P2N",
        utc_now(),
    )
    # WHEN
    answer = api.post(VALID, headers={"Idempotency-Key": "order-7"})
    # THEN
    assert answer.status == 409
    assert answer.header("Retry-After") == "1"


def test_a_dead_in_flight_claim_is_taken_over_under_its_report_id(api: InProcessApi, stack: DataStack) -> None:
    # GIVEN a claim whose request died long ago, before storing its report
    from datetime import timedelta

    from reports.model import utc_now

    dependencies.idempotency_store().claim(
        "tenant-a-key-id",
        "order-8",
        {"reportType": "COFFEE_SALES", "reportDate": "2021-01-01"},
        "01JH2Z3Y4X5W6V7T8S9R0Q1P2N",
        utc_now() - timedelta(minutes=5),
    )
    # WHEN
    answer = api.post(VALID, headers={"Idempotency-Key": "order-8"})
    # THEN
    assert answer.status == 201
    assert answer.body["id"] == "01JH2Z3Y4X5W6V7T8S9R0Q1P2N"
    assert len(queued_jobs(stack)) == 1


def test_a_blank_idempotency_key_is_refused(api: InProcessApi, stack: DataStack) -> None:
    answer = api.post(VALID, headers={"Idempotency-Key": "   "})
    assert answer.status == 400
    assert "Idempotency-Key" in answer.body["detail"]


def test_enqueue_failure_answers_503_and_leaves_no_orphan_report(
    api: InProcessApi, stack: DataStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a queue that refuses the job
    monkeypatch.setenv("JOBS_QUEUE_URL", stack.ref("JobsQueue") + "-gone")
    dependencies.clear_dependencies()
    # WHEN
    answer = api.post(VALID, headers={"Idempotency-Key": "order-9"})
    # THEN the client is told to retry, and nothing was kept
    assert answer.status == 503
    assert answer.header("Retry-After")
    ddb = boto3.client("dynamodb", region_name=REGION)
    assert ddb.scan(TableName=stack.ref("ReportsTable"))["Items"] == []
    # AND the same key works once the queue is back
    monkeypatch.setenv("JOBS_QUEUE_URL", stack.ref("JobsQueue"))
    dependencies.clear_dependencies()
    retried = api.post(VALID, headers={"Idempotency-Key": "order-9"})
    assert retried.status == 201
    assert retried.header("Idempotent-Replayed") is None
    assert queued_jobs(stack) == [{"version": 1, "reportId": retried.body["id"]}]


def _died_after_storing(stack: DataStack, key: str, *, minutes_ago: int) -> str:
    """A first request that claimed ``key`` and stored its report QUEUED, then died before enqueueing."""
    from datetime import timedelta

    from reports.model import utc_now

    began = utc_now() - timedelta(minutes=minutes_ago)
    report_id = "01JH2Z3Y4X5W6V7T8S9R0Q1P2M"
    dependencies.idempotency_store().claim("tenant-a-key-id", key, VALID, report_id, began)
    dependencies.report_store().create(queued_report(report_id, created=began))
    return report_id


def test_a_retry_of_a_request_that_died_before_enqueueing_sends_the_job(api: InProcessApi, stack: DataStack) -> None:
    # GIVEN a report stored QUEUED by a request that died before its job reached the queue
    report_id = _died_after_storing(stack, "order-10", minutes_ago=5)
    assert queued_jobs(stack) == []
    # WHEN the client retries with the same key
    answer = api.post(VALID, headers={"Idempotency-Key": "order-10"})
    # THEN it gets the same report, and its job is queued now
    assert answer.status == 201
    assert answer.body["id"] == report_id
    assert answer.header("Idempotent-Replayed") == "true"
    assert queued_jobs(stack) == [{"version": 1, "reportId": report_id}]
    # AND a further retry replays it without another job
    assert api.post(VALID, headers={"Idempotency-Key": "order-10"}).status == 201
    assert len(queued_jobs(stack)) == 1


def test_a_retry_while_the_first_request_may_still_be_enqueueing_is_409(api: InProcessApi, stack: DataStack) -> None:
    # GIVEN a report stored QUEUED a moment ago by a request still in flight
    _died_after_storing(stack, "order-11", minutes_ago=0)
    # WHEN the client retries at once
    answer = api.post(VALID, headers={"Idempotency-Key": "order-11"})
    # THEN it is told to come back, and no job is sent twice
    assert answer.status == 409
    assert queued_jobs(stack) == []


def test_submit_undoes_the_report_when_too_little_time_is_left_to_enqueue(
    stack: DataStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a function with less time left than an enqueue and its undo need
    from reports.model import ReportRequest, utc_now
    from reports.submission import ENQUEUE_SECONDS, submit_report

    request = ReportRequest(report_type="COFFEE_SALES", report_date=date(2021, 1, 1))
    # WHEN
    with pytest.raises(EnqueueError):
        submit_report(
            request,
            tenant="tenant-a-key-id",
            idempotency_key="order-12",
            store=dependencies.report_store(),
            queue=dependencies.job_queue(),
            idempotency=dependencies.idempotency_store(),
            now=utc_now(),
            retention_days=30,
            time_left=lambda: ENQUEUE_SECONDS - 1,
        )
    # THEN nothing is left: no report, no job, and the key is free again
    ddb = boto3.client("dynamodb", region_name=REGION)
    assert ddb.scan(TableName=stack.ref("ReportsTable"))["Items"] == []
    assert queued_jobs(stack) == []
    assert ddb.scan(TableName=stack.ref("IdempotencyTable"))["Items"] == []


def test_a_reports_table_failure_answers_503_and_enqueues_no_job(
    api: InProcessApi, stack: DataStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a Reports table that cannot be written (storage comes first, before the queue)
    monkeypatch.setenv("REPORTS_TABLE", stack.ref("ReportsTable") + "-gone")
    dependencies.clear_dependencies()
    # WHEN
    answer = api.post(VALID, headers={"Idempotency-Key": "order-10"})
    # THEN the client is told to retry, as a problem
    assert answer.status == 503
    assert answer.header("Content-Type") == "application/problem+json"
    assert answer.body["title"] == "Service unavailable"
    assert answer.header("Retry-After")
    # AND no worker will be handed a job for a report that was never stored
    assert queued_jobs(stack) == []
    # AND the key was released: the same request succeeds, with one job, once the table is back
    monkeypatch.setenv("REPORTS_TABLE", stack.ref("ReportsTable"))
    dependencies.clear_dependencies()
    retried = api.post(VALID, headers={"Idempotency-Key": "order-10"})
    assert retried.status == 201
    assert retried.header("Idempotent-Replayed") is None
    assert queued_jobs(stack) == [{"version": 1, "reportId": retried.body["id"]}]
