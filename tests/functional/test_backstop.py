"""JobBackstopFunction: a report stored QUEUED whose submit died before enqueueing still renders."""

from __future__ import annotations

from datetime import date
from typing import Any

import boto3
import pytest

from handlers import backstop
from local.event_sources import DynamoDBStreamEventSource, EventFilter, SqsEventSource
from local.events import LambdaContext
from local.template import DataStack
from reports import dependencies, submission
from reports.model import ReportStatus
from tests.conftest import REGION, load_event, queued_report, template
from tests.functional.conftest import InProcessApi

VALID = {"reportType": "COFFEE_SALES", "reportDate": "2021-01-04"}


@pytest.fixture
def new_reports(stack: DataStack, monkeypatch: pytest.MonkeyPatch) -> DynamoDBStreamEventSource:
    """The Reports stream feeding JobBackstopFunction, with the backstop's delay taken out."""
    monkeypatch.setattr(submission, "BACKSTOP_DELAY_SECONDS", 0)
    spec = template().functions()["JobBackstopFunction"]
    return DynamoDBStreamEventSource(
        boto3.client("dynamodbstreams", region_name=REGION),
        stream_arn=stack.get_att("ReportsTable", "StreamArn"),
        handler=backstop.handler,
        function_name="JobBackstopFunction",
        timeout_seconds=spec.timeout,
        starting_position="TRIM_HORIZON",
    )


def _store_without_a_job(report_id: str) -> None:
    dependencies.report_store().create(queued_report(report_id, day=date(2021, 1, 4)))


def _drain(source: Any) -> None:
    """Poll until a poll finds nothing more on the stream."""
    received = True
    while received:
        received = bool(source.poll_once().received)


def test_a_report_whose_submit_died_before_enqueueing_is_rendered_by_the_backstop_job(
    seeded: DataStack, new_reports: DynamoDBStreamEventSource, jobs: SqsEventSource, api: InProcessApi
) -> None:
    # GIVEN a report stored QUEUED, and no job for it (its submit function died in between)
    _store_without_a_job("01JH2Z3Y4X5W6V7T8S9R0Q1P2A")
    assert jobs.drain() == 0
    # WHEN the Reports stream reaches JobBackstopFunction and its delayed job comes due
    _drain(new_reports)
    jobs.drain()
    # THEN the report is rendered
    report = dependencies.report_store().get("01JH2Z3Y4X5W6V7T8S9R0Q1P2A")
    assert report is not None
    assert report.status is ReportStatus.COMPLETED


def test_the_backstop_job_of_a_report_already_rendered_does_no_work(
    seeded: DataStack, new_reports: DynamoDBStreamEventSource, jobs: SqsEventSource, api: InProcessApi
) -> None:
    # GIVEN a report submitted and rendered the usual way
    report_id = api.post(VALID).body["id"]
    jobs.drain()
    rendered = dependencies.report_store().get(report_id)
    assert rendered is not None
    assert rendered.status is ReportStatus.COMPLETED
    # WHEN its backstop job comes due
    _drain(new_reports)
    handled = jobs.drain()
    # THEN it was one job for one report, and the report is untouched
    assert handled == 1
    again = dependencies.report_store().get(report_id)
    assert again is not None
    assert (again.version, again.attempts) == (rendered.version, rendered.attempts)


def test_only_the_insert_of_a_queued_report_calls_for_a_backstop_job(
    seeded: DataStack, new_reports: DynamoDBStreamEventSource, jobs: SqsEventSource, api: InProcessApi
) -> None:
    # GIVEN one report through its whole life (insert, RUNNING, progress, COMPLETED: many stream records)
    api.post(VALID)
    jobs.drain()
    # WHEN the stream is read
    _drain(new_reports)
    # THEN exactly one backstop job was sent
    sqs = boto3.client("sqs", region_name=REGION)
    attributes = sqs.get_queue_attributes(
        QueueUrl=seeded.ref("JobsQueue"), AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "1"


def test_the_sample_event_passes_the_templates_filter_and_sends_one_delayed_job(
    stack: DataStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the sample of a report stored QUEUED, as the Reports stream delivers it
    event = load_event("job-backstop-new-report")
    source = template().functions()["JobBackstopFunction"].events["NewReports"]["Properties"]
    only_new_reports = EventFilter.from_criteria(source["FilterCriteria"])
    assert all(only_new_reports.matches(record) for record in event["Records"])
    # WHEN JobBackstopFunction handles it
    answer = backstop.handler(event, LambdaContext(function_name="JobBackstopFunction", timeout_seconds=10))
    # THEN no record failed, and one job waits, invisible until the backstop delay has passed
    assert answer == {"batchItemFailures": []}
    sqs = boto3.client("sqs", region_name=REGION)
    attributes = sqs.get_queue_attributes(QueueUrl=stack.ref("JobsQueue"), AttributeNames=["All"])["Attributes"]
    assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesDelayed"]) == ("0", "1")


def test_the_templates_filter_passes_no_other_change_of_a_report() -> None:
    source = template().functions()["JobBackstopFunction"].events["NewReports"]["Properties"]
    only_new_reports = EventFilter.from_criteria(source["FilterCriteria"])
    completed = load_event("notify-report-completed")["Records"][0]
    assert not only_new_reports.matches(completed)
