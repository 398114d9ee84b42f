"""GET /api/v1/report/{id} through StatusFunction: polling hints, conditional requests, tenancy."""

from __future__ import annotations

import json

import boto3
import pytest

from local.event_sources import SqsEventSource
from local.template import DataStack
from tests.conftest import REGION
from tests.functional.conftest import OTHER_TENANT, InProcessApi

VALID = {"reportType": "COFFEE_SALES", "reportDate": "2021-01-01"}


def test_a_pending_report_carries_retry_after_and_an_etag(api: InProcessApi, stack: DataStack) -> None:
    report_id = api.post(VALID).body["id"]
    answer = api.get(report_id)
    assert answer.status == 200
    assert answer.body["status"] == "QUEUED"
    assert int(answer.header("Retry-After") or 0) >= 1
    assert answer.body["retryAfter"] == int(answer.header("Retry-After") or 0)
    assert answer.header("ETag") == f'W/"{report_id}.1"'
    assert answer.header("Cache-Control") == "no-store"
    assert "pdfUri" not in answer.body


def test_if_none_match_with_the_current_etag_answers_304(api: InProcessApi, stack: DataStack) -> None:
    report_id = api.post(VALID).body["id"]
    tag = api.get(report_id).header("ETag") or ""
    # WHEN
    answer = api.get(report_id, headers={"If-None-Match": tag})
    # THEN
    assert answer.status == 304
    assert answer.body is None
    assert answer.header("ETag") == tag
    assert answer.header("Retry-After")
    # AND a list of tags, or the strong form of the same tag, match too
    assert api.get(report_id, headers={"If-None-Match": f'"other", {tag.removeprefix("W/")}'}).status == 304


def test_a_changed_report_answers_200_with_a_new_etag(
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource
) -> None:
    report_id = api.post(VALID).body["id"]
    old = api.get(report_id).header("ETag") or ""
    jobs.drain()
    answer = api.get(report_id, headers={"If-None-Match": old})
    assert answer.status == 200
    assert answer.header("ETag") != old
    assert answer.body["status"] == "COMPLETED"


def test_an_unknown_id_is_a_404_problem(api: InProcessApi, stack: DataStack) -> None:
    answer = api.get("01JH2Z3Y4X5W6V7T8S9R0Q1P2N")
    assert answer.status == 404
    assert answer.header("Content-Type") == "application/problem+json"
    assert "01JH2Z3Y4X5W6V7T8S9R0Q1P2N" in answer.body["detail"]


def test_a_malformed_id_is_a_404_problem_without_touching_the_table(api: InProcessApi, stack: DataStack) -> None:
    answer = api.get("../../etc")
    assert answer.status == 404


def test_another_tenants_report_is_indistinguishable_from_a_missing_one(api: InProcessApi, stack: DataStack) -> None:
    report_id = api.post(VALID).body["id"]
    theirs = api.get(report_id, tenant=OTHER_TENANT)
    missing = api.get("01JH2Z3Y4X5W6V7T8S9R0Q1P2N", tenant=OTHER_TENANT)
    assert theirs.status == missing.status == 404
    assert theirs.body["title"] == missing.body["title"]
    assert api.get(report_id, pdf=True, tenant=OTHER_TENANT).status == 404


def test_status_without_an_api_key_identity_is_401(api: InProcessApi, stack: DataStack) -> None:
    report_id = api.post(VALID).body["id"]
    assert api.get(report_id, tenant=None).status == 401


def test_a_report_past_its_retention_is_a_404_before_ttl_removes_it(
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource
) -> None:
    # GIVEN a completed report whose retention ran out (TTL has not deleted the record yet)
    report_id = api.post(VALID).body["id"]
    jobs.drain()
    boto3.client("dynamodb", region_name=REGION).update_item(
        TableName=seeded.ref("ReportsTable"),
        Key={"id": {"S": report_id}},
        UpdateExpression="SET expiresAt = :past",
        ExpressionAttributeValues={":past": {"N": "1600000000"}},
    )
    # WHEN it is asked for, or its PDF
    answer, pdf = api.get(report_id), api.get(report_id + "/pdf")
    # THEN both say it expired, with no link to a PDF S3 has already deleted
    for gone in (answer, pdf):
        assert gone.status == 404
        assert "expired on 2020-09-13" in gone.body["detail"]


def emitted_metrics(printed: str) -> dict[str, float]:
    """What the functions' EMF lines on stdout (CloudWatch's log stream) add up to, by metric name."""
    totals: dict[str, float] = {}
    for line in printed.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        document = json.loads(line)
        for definition in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            values = document[definition["Name"]]
            totals[definition["Name"]] = totals.get(definition["Name"], 0) + sum(
                values if isinstance(values, list) else [values]
            )
    return totals


def test_polls_and_the_304s_among_them_are_counted(
    api: InProcessApi, stack: DataStack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN metrics published, as in Lambda (the local runtime, run earlier in this process, turns
    # them off), and nothing left over in Powertools' shared set from earlier tests
    from aws_lambda_powertools import Metrics

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    Metrics().clear_metrics()
    # AND a report polled once, then again with its ETag
    report_id = api.post(VALID).body["id"]
    tag = api.get(report_id).header("ETag") or ""
    api.get(report_id, headers={"If-None-Match": tag})
    api.get(report_id + "/pdf")
    # THEN the status function recorded what polling cost
    metrics = emitted_metrics(capsys.readouterr().out)
    assert (metrics["ReportPolls"], metrics["ReportPollsNotModified"], metrics["PdfRequests"]) == (2, 1, 1)
