"""The Jobs queue through ProcessFunction (and the DLQ through DeadLetterFunction), in moto:
rendering, NO_DATA, duplicate and overlapping deliveries, a crash between upload and status write,
and retries running out."""

from __future__ import annotations

import json

import boto3
import pytest
import requests

from local.event_sources import BatchResult, SqsEventSource
from local.template import DataStack
from reports import dependencies
from reports.store import DynamoReportStore
from tests.conftest import REGION
from tests.functional.conftest import InProcessApi

VALID = {"reportType": "COFFEE_SALES", "reportDate": "2021-01-01"}


def pdf_objects(stack: DataStack) -> list[str]:
    listing = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=stack.ref("FilesBucket"))
    return [obj["Key"] for obj in listing.get("Contents", [])]


def queue_depth(stack: DataStack, queue: str) -> int:
    attributes = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=stack.ref(queue),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def stream_changes(stack: DataStack) -> list[tuple[str, str | None]]:
    """(status, progress step) of every write the Reports table's stream carried, in order."""
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    arn = stack.get_att("ReportsTable", "StreamArn")
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    changes = []
    for record in records:
        image = record["dynamodb"].get("NewImage") or {}
        if image.get("entity", {}).get("S") == "report":
            changes.append((image["status"]["S"], image.get("progressStep", {}).get("S")))
    return changes


def completions(stack: DataStack) -> int:
    """How many writes to the Reports table left a report COMPLETED (each one notifies watchers)."""
    return sum(1 for status, _ in stream_changes(stack) if status == "COMPLETED")


def recorded_durations(stack: DataStack, report_type: str = "COFFEE_SALES") -> int:
    """How many completions fed the Retry-After statistics of ``report_type``."""
    ddb = boto3.client("dynamodb", region_name=REGION)
    item = ddb.get_item(TableName=stack.ref("ReportsTable"), Key={"id": {"S": f"stats#{report_type}"}}).get("Item")
    return int(item["runs"]["N"]) if item else 0


def send_job(stack: DataStack, report_id: str) -> None:
    """The job message exactly as submission enqueues it: what a duplicate delivery carries."""
    sqs = boto3.client("sqs", region_name=REGION)
    sqs.send_message(QueueUrl=stack.ref("JobsQueue"), MessageBody=json.dumps({"version": 1, "reportId": report_id}))


def test_a_submitted_report_is_rendered_and_polling_sees_it_complete(
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource
) -> None:
    # GIVEN
    report_id = api.post(VALID).body["id"]
    # WHEN
    jobs.drain()
    # THEN
    answer = api.get(report_id)
    assert answer.status == 200
    report = answer.body
    assert report["status"] == "COMPLETED"
    assert report["completed"] is True
    assert report["progress"] == {"step": "done", "percent": 100}
    assert report["completedAt"] >= report["createdAt"]
    assert answer.header("Retry-After") is None
    assert "retryAfter" not in report
    # AND the presigned URL downloads the PDF
    download = requests.get(report["pdfUri"], timeout=10)
    assert download.status_code == 200
    assert download.content.startswith(b"%PDF")
    assert pdf_pages(download.content) >= 1
    assert pdf_objects(seeded) == [f"reports/tenant-a-key-id/{report_id}.pdf"]
    assert queue_depth(seeded, "JobsQueue") == 0


def pdf_pages(data: bytes) -> int:
    import io

    from pypdf import PdfReader

    return len(PdfReader(io.BytesIO(data)).pages)


def test_every_step_is_written_in_order_so_watchers_can_follow_progress(
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource
) -> None:
    api.post(VALID)
    jobs.drain()
    assert stream_changes(seeded) == [
        ("QUEUED", None),
        ("RUNNING", None),
        ("RUNNING", "fetching data"),
        ("RUNNING", "charting"),
        ("RUNNING", "laying out"),
        ("RUNNING", "uploading"),
        ("COMPLETED", "done"),
    ]


def test_the_pdf_link_redirects_to_the_presigned_url_once_completed(
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource
) -> None:
    report_id = api.post(VALID).body["id"]
    # WHEN still queued
    pending = api.get(report_id, pdf=True)
    # THEN
    assert pending.status == 409
    assert pending.header("Retry-After")
    assert "QUEUED" in pending.body["detail"]
    # WHEN completed
    jobs.drain()
    done = api.get(report_id, pdf=True)
    assert done.status == 303
    location = done.header("Location") or ""
    assert "X-Amz-Signature=" in location
    assert "coffee-sales-2021-01-01.pdf" in requests.utils.unquote(location)
    assert requests.get(location, timeout=10).content.startswith(b"%PDF")


def test_a_day_without_sales_fails_with_no_data_and_is_not_retried(
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource
) -> None:
    # GIVEN Christmas Day, when every store is closed
    report_id = api.post({"reportType": "COFFEE_SALES", "reportDate": "2020-12-25"}).body["id"]
    # WHEN
    jobs.drain()
    # THEN
    report = api.get(report_id).body
    assert report["status"] == "FAILED"
    assert report["error"]["code"] == "NO_DATA"
    assert "25 December 2020" in report["error"]["message"]
    assert "pdf" not in report["_links"]
    assert queue_depth(seeded, "JobsQueue") == 0
    assert pdf_objects(seeded) == []
    pdf = api.get(report_id, pdf=True)
    assert pdf.status == 409
    assert "NO_DATA" not in pdf.body["detail"]
    assert "25 December 2020" in pdf.body["detail"]


def test_a_period_with_no_data_at_all_fails_with_no_data(
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource
) -> None:
    report_id = api.post({"reportType": "COFFEE_SALES", "reportDate": "2019-06-01"}).body["id"]
    jobs.drain()
    report = api.get(report_id).body
    assert (report["status"], report["error"]["code"]) == ("FAILED", "NO_DATA")


def test_a_redelivered_job_does_not_render_or_complete_twice(
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a completed report
    report_id = api.post(VALID).body["id"]
    jobs.drain()
    first = api.get(report_id)
    renders = count_renders(monkeypatch)
    # WHEN SQS delivers the same job again (at-least-once delivery)
    send_job(seeded, report_id)
    assert jobs.drain() == 1
    # THEN nothing changed: no second render, no second completion
    assert renders == []
    again = api.get(report_id)
    assert again.header("ETag") == first.header("ETag")
    assert again.body["completedAt"] == first.body["completedAt"]
    assert completions(seeded) == 1
    assert recorded_durations(seeded) == 1
    assert pdf_objects(seeded) == [f"reports/tenant-a-key-id/{report_id}.pdf"]
    assert queue_depth(seeded, "JobsQueue") == 0


def test_the_same_job_twice_in_one_batch_renders_and_completes_once(
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a job SQS holds twice (a standard queue may duplicate a message)
    report_id = api.post(VALID).body["id"]
    send_job(seeded, report_id)
    renders = count_renders(monkeypatch)
    # WHEN both copies arrive in the same batch
    result = jobs.poll_once()
    # THEN both are acknowledged, but the report was rendered and completed once
    assert (result.received, result.failed) == (2, 0)
    assert renders == [report_id]
    assert completions(seeded) == 1
    assert recorded_durations(seeded) == 1
    assert api.get(report_id).body["status"] == "COMPLETED"
    assert pdf_objects(seeded) == [f"reports/tenant-a-key-id/{report_id}.pdf"]
    assert queue_depth(seeded, "JobsQueue") == 0


def test_a_redelivery_overtaking_a_slow_first_delivery_leaves_one_completion(
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a first delivery that has started, rendered and uploaded, and is about to write COMPLETED
    # when its visibility timeout runs out and SQS hands the job to a second worker, which finishes first
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

    from handlers import process

    report_id = api.post(VALID).body["id"]
    renders = count_renders(monkeypatch)
    receipts: list[str] = []
    real_handle_record = process.handle_record

    def remember_receipt(record):  # type: ignore[no-untyped-def]
        receipts.append(record.receipt_handle)
        real_handle_record(record)

    monkeypatch.setattr(process, "handle_record", remember_receipt)
    real_complete = DynamoReportStore.complete
    overtaken: list[BatchResult] = []

    def complete_after_a_redelivery(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if len(receipts) == 1:  # the first delivery: let the second one run to the end first
            sqs = boto3.client("sqs", region_name=REGION)
            sqs.change_message_visibility(
                QueueUrl=seeded.ref("JobsQueue"), ReceiptHandle=receipts[0], VisibilityTimeout=0
            )
            with monkeypatch.context() as second_environment:
                # Another execution environment: its own batch processor.
                second_environment.setattr(process, "processor", BatchProcessor(event_type=EventType.SQS))
                overtaken.append(jobs.poll_once())
        return real_complete(self, *args, **kwargs)

    monkeypatch.setattr(DynamoReportStore, "complete", complete_after_a_redelivery)
    # WHEN the first delivery finally writes its completion
    first = jobs.poll_once()
    # THEN the second worker completed the report, reusing the first one's PDF ...
    assert overtaken == [BatchResult(received=1, failed=0)]
    assert first == BatchResult(received=1, failed=0)
    assert len(receipts) == 2
    assert renders == [report_id]
    # ... and the first one's late write was refused: one COMPLETED transition, one duration
    assert completions(seeded) == 1
    assert recorded_durations(seeded) == 1
    report = api.get(report_id).body
    assert report["status"] == "COMPLETED"
    assert pdf_objects(seeded) == [f"reports/tenant-a-key-id/{report_id}.pdf"]
    assert queue_depth(seeded, "JobsQueue") == 0


def test_a_crash_after_upload_before_the_status_write_completes_on_redelivery_without_rerendering(
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a worker that dies right after uploading the PDF
    report_id = api.post(VALID).body["id"]
    real_complete = DynamoReportStore.complete
    monkeypatch.setattr(DynamoReportStore, "complete", lambda *a, **k: (_ for _ in ()).throw(OSError("killed")))
    result = jobs.poll_once()
    assert (result.received, result.failed) == (1, 1)
    assert pdf_objects(seeded) == [f"reports/tenant-a-key-id/{report_id}.pdf"]
    assert api.get(report_id).body["status"] == "RUNNING"
    # WHEN SQS delivers the job again to a healthy worker
    monkeypatch.setattr(DynamoReportStore, "complete", real_complete)
    renders = count_renders(monkeypatch)
    jobs.drain()
    # THEN it completes, reusing the uploaded PDF
    report = api.get(report_id).body
    assert report["status"] == "COMPLETED"
    assert renders == []
    assert pdf_objects(seeded) == [f"reports/tenant-a-key-id/{report_id}.pdf"]


def count_renders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    import reports.processing

    calls: list[str] = []
    real = reports.processing._render

    def spy(report, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(report.id)
        return real(report, **kwargs)

    monkeypatch.setattr(reports.processing, "_render", spy)
    return calls


def test_a_job_that_always_fails_ends_in_the_dlq_and_its_report_is_failed(
    api: InProcessApi,
    seeded: DataStack,
    jobs: SqsEventSource,
    dead_letters: SqsEventSource,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a renderer that crashes every time
    import reports.processing

    monkeypatch.setattr(reports.processing, "_render", lambda *a, **k: (_ for _ in ()).throw(MemoryError("boom")))
    report_id = api.post(VALID).body["id"]
    max_receives = int(seeded.parameters["MaxReceiveCount"])
    # WHEN SQS delivers it until its receives run out
    for _ in range(max_receives):
        assert jobs.poll_once().failed == 1
    assert jobs.poll_once().received == 0  # the next receive moves it to the dead-letter queue
    assert queue_depth(seeded, "JobsDeadLetterQueue") == 1
    assert api.get(report_id).body["status"] == "RUNNING"
    dead_letters.drain()
    # THEN the report is FAILED for the client to see, and no queue holds the job any more
    report = api.get(report_id).body
    assert report["status"] == "FAILED"
    assert report["error"]["code"] == "PROCESSING_FAILED"
    assert f"after {max_receives} attempts" in report["error"]["message"]
    assert queue_depth(seeded, "JobsQueue") == queue_depth(seeded, "JobsDeadLetterQueue") == 0


def test_a_malformed_job_is_acknowledged_not_retried(seeded: DataStack, jobs: SqsEventSource) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    sqs.send_message(QueueUrl=seeded.ref("JobsQueue"), MessageBody="not json")
    result = jobs.poll_once()
    assert (result.received, result.failed) == (1, 0)
    assert queue_depth(seeded, "JobsQueue") == 0


def test_one_failing_record_does_not_fail_its_batch(
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN two reports, one of which crashes the renderer
    import reports.processing

    good = api.post(VALID).body["id"]
    bad = api.post({"reportType": "COFFEE_SALES", "reportDate": "2021-01-02"}).body["id"]
    real = reports.processing._render

    def flaky(report, **kwargs):  # type: ignore[no-untyped-def]
        if report.id == bad:
            raise RuntimeError("transient")
        return real(report, **kwargs)

    monkeypatch.setattr(reports.processing, "_render", flaky)
    # WHEN both arrive in one batch
    result = jobs.poll_once()
    # THEN only the bad one is reported back for redelivery
    assert (result.received, result.failed) == (2, 1)
    assert api.get(good).body["status"] == "COMPLETED"
    assert api.get(bad).body["status"] == "RUNNING"
    assert queue_depth(seeded, "JobsQueue") == 1


def test_completion_times_feed_the_retry_after_hint(api: InProcessApi, seeded: DataStack) -> None:
    # GIVEN reports of this type have taken 20 s from submission to completion
    store = dependencies.report_store()
    for _ in range(3):
        store.record_duration("COFFEE_SALES", 20.0)
    # WHEN a new one is submitted
    answer = api.post(VALID)
    # THEN the hint points about 20 s ahead (not a constant)
    assert 18 <= int(answer.header("Retry-After") or 0) <= 20
