"""Volume through the local runtime. Last in the e2e package (by name), so the stream backlog it
leaves behind does not delay the other tests' notifications."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from local.runtime import LocalRuntime
from reports import settings
from reports.submission import BACKSTOP_DELAY_SECONDS
from tests.e2e.conftest import KEY_B, Client

BURST = 200


class RecordCounter:
    """Wraps a runtime function's ``invoke`` to count, per report id, the records each event hands it."""

    def __init__(self, report_id: Callable[[dict[str, Any]], str | None]) -> None:
        self._report_id = report_id
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def wrap(self, invoke: Callable[..., Any]) -> Callable[..., Any]:
        def counting(event: dict[str, Any], **kwargs: Any) -> Any:
            with self._lock:
                self.counts.update(filter(None, map(self._report_id, event.get("Records", []))))
            return invoke(event, **kwargs)

        return counting

    def seen(self) -> Counter[str]:
        with self._lock:
            return Counter(self.counts)


def job_report_id(record: dict[str, Any]) -> str | None:
    """The report an SQS job record is for (its body is ``{"version": 1, "reportId": ...}``)."""
    try:
        return str(json.loads(record["body"])["reportId"])
    except (KeyError, TypeError, ValueError):
        return "<malformed job>"


def stream_report_id(record: dict[str, Any]) -> str | None:
    """The report a Reports stream record is for (its new image's ``id``)."""
    value = record.get("dynamodb", {}).get("NewImage", {}).get("id", {}).get("S")
    return str(value) if value else None


@pytest.fixture
def report_events(runtime: LocalRuntime) -> Iterator[str]:
    """A queue of this test's own subscribed to the topic the functions publish ReportEvents to, raw
    (each message the published JSON), unfiltered; its URL."""
    topic_arn = runtime.aws.variable(settings.REPORT_EVENTS_TOPIC_ARN)  # as the functions name it
    sqs, sns = runtime.aws.client("sqs"), runtime.aws.client("sns")
    url = sqs.create_queue(QueueName=f"e2e-volume-events-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    subscription = sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "true"},
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    try:
        yield url
    finally:
        sns.unsubscribe(SubscriptionArn=subscription)
        sqs.delete_queue(QueueUrl=url)


def test_a_burst_of_200_submissions_all_complete_exactly_once(
    runtime: LocalRuntime, report_events: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runtime.stack is not None
    sqs, s3, ddb = runtime.aws.client("sqs"), runtime.aws.client("s3"), runtime.aws.client("dynamodb")
    # GIVEN every record ProcessFunction and JobBackstopFunction are handed counted, per report
    renders, backstops = RecordCounter(job_report_id), RecordCounter(stream_report_id)
    for name, counter in (("ProcessFunction", renders), ("JobBackstopFunction", backstops)):
        function = runtime.functions[name]
        monkeypatch.setattr(function, "invoke", counter.wrap(function.invoke))  # the event sources look it up per call
    # AND sixteen clients of one tenant, each honouring 429 Retry-After (the plan allows 10 at once, then 5/s)
    clients = [Client(runtime.api_url, KEY_B) for _ in range(16)]
    days = [f"2021-01-0{1 + i % 8}" for i in range(BURST)]

    def submit(index: int) -> str:
        response = clients[index % 16].post({"reportType": "COFFEE_SALES", "reportDate": days[index]})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    # WHEN they submit 200 reports at once
    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        ids = list(pool.map(submit, range(BURST)))
    # THEN the gateway throttled the burst, and every report was accepted once
    assert sum(c.throttled for c in clients) > 0
    assert len(set(ids)) == BURST
    reports = [clients[0].wait(f"/api/v1/report/{report_id}", timeout=300) for report_id in ids]
    assert {r["status"] for r in reports} == {"COMPLETED"}

    # AND ReportEvents published exactly one report.completed per report (and nothing else for them).
    # One more report, submitted after all 200 completed, is a barrier: the Reports stream is one
    # ordered shard, so once its completion is published every earlier change has been through
    # NotifyFunction, retries included, and a second publication of any of the 200 would be here.
    barrier = clients[0].post({"reportType": "COFFEE_SALES", "reportDate": "2021-01-01"}).json()["id"]
    assert clients[0].wait(f"/api/v1/report/{barrier}", timeout=60)["status"] == "COMPLETED"
    events = drain_events(runtime, report_events, until_completed=barrier, timeout=120)
    ours = [event for event in events if event.get("data", {}).get("id") in set(ids)]
    assert Counter(event["type"] for event in ours) == {"report.completed": BURST}
    assert Counter(event["data"]["id"] for event in ours) == Counter(ids)  # each once
    assert len({event["eventId"] for event in ours}) == BURST  # and each its own event id

    # AND ProcessFunction was handed exactly one job per report. Each report has a second job, sent by
    # JobBackstopFunction when it was stored QUEUED, but delayed BACKSTOP_DELAY_SECONDS (15 minutes,
    # SQS's longest), so none of those is due yet: they wait in the queue, delayed, and the count holds
    # only while the test runs within that delay. (Other tests' reports are not counted: their jobs,
    # backstop ones too once due, may run meanwhile.)
    deadline = time.monotonic() + 60
    while not set(ids) <= set(backstops.seen()):
        assert time.monotonic() < deadline, f"{len(set(ids) - set(backstops.seen()))} reports never met the backstop"
        time.sleep(0.5)
    jobs = sqs.get_queue_attributes(QueueUrl=runtime.stack.ref("JobsQueue"), AttributeNames=["All"])["Attributes"]
    assert int(jobs["ApproximateNumberOfMessagesDelayed"]) >= BURST  # the backstop jobs, not yet due
    assert time.monotonic() - began < BACKSTOP_DELAY_SECONDS, "too slow: the backstop jobs may have become due"
    handed = renders.seen()
    assert Counter({report_id: handed[report_id] for report_id in ids}) == Counter(ids)

    # AND each has exactly one object in the Files bucket, its PDF: no second key, no stray part
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=runtime.stack.ref("FilesBucket"), Prefix="reports/")
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    objects_of = {report_id: sorted(key for key in keys if report_id in key) for report_id in ids}
    assert objects_of == {report_id: [f"reports/tenant-b/{report_id}.pdf"] for report_id in ids}

    # AND one attempt and one completion each; nothing is left in the queues
    for report_id in ids:
        item = ddb.get_item(TableName=runtime.stack.ref("ReportsTable"), Key={"id": {"S": report_id}})["Item"]
        # created, started, four steps, completed: seven writes, so nothing ran or completed twice
        assert (item["status"]["S"], item["attempts"]["N"], item["version"]["N"]) == ("COMPLETED", "1", "7")
    for queue in ("JobsQueue", "JobsDeadLetterQueue"):
        attributes = sqs.get_queue_attributes(QueueUrl=runtime.stack.ref(queue), AttributeNames=["All"])["Attributes"]
        assert attributes["ApproximateNumberOfMessages"] == attributes["ApproximateNumberOfMessagesNotVisible"] == "0"


def drain_events(
    runtime: LocalRuntime, queue_url: str, *, until_completed: str, timeout: float
) -> list[dict[str, Any]]:
    """Every ReportEvents message the queue received, up to and including ``until_completed``'s
    report.completed (deleted as read)."""
    sqs = runtime.aws.client("sqs")
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
        for message in messages:
            events.append(json.loads(message["Body"]))
        if messages:
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
        if any(e.get("type") == "report.completed" and e.get("data", {}).get("id") == until_completed for e in events):
            return events
        assert time.monotonic() < deadline, f"{until_completed}'s report.completed never published ({len(events)} seen)"
