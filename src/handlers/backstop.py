"""JobBackstopFunction: Reports stream (a report stored QUEUED) -> a delayed second job, so no report
waits QUEUED forever for a job its submit request died before sending."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from reports import dependencies
from reports.store import REPORT_ENTITY, report_from_item
from reports.submission import send_backstop_job

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])  # only what we call; patching everything costs cold start
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def handle_record(record: DynamoDBRecord) -> None:
    new = record.raw_event["dynamodb"].get("NewImage") or {}
    if new.get("entity", {}).get("S") != REPORT_ENTITY:  # the event source's filter says the same
        return
    stored = report_from_item(new)
    if send_backstop_job(stored, inserted=record.raw_event["eventName"] == "INSERT", queue=dependencies.job_queue()):
        metrics.add_metric(name="BackstopJobsSent", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)
