"""NotifyFunction: Reports stream -> watchers and the ReportEvents topic; Connections stream -> replay."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from reports import dependencies
from reports.model import utc_now
from reports.notifications import BatchOrder, notify_change, replay_current_state
from reports.settings import settings
from reports.store import REPORT_ENTITY, report_from_item
from reports.watchers import WATCH_KIND

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def handle_record(record: DynamoDBRecord, lambda_context: LambdaContext, order: BatchOrder) -> None:
    raw = record.raw_event["dynamodb"]
    new, old = raw.get("NewImage") or {}, raw.get("OldImage") or {}
    now = utc_now()
    deadline = now + timedelta(milliseconds=lambda_context.get_remaining_time_in_millis())
    if new.get("entity", {}).get("S") == REPORT_ENTITY:
        with order.change_of(new["id"]["S"]):
            result = notify_change(
                report_from_item(old) if old else None,
                report_from_item(new),
                watchers=dependencies.connection_store(),
                pusher=dependencies.pusher(),
                publisher=dependencies.event_publisher(),
                now=now,
                deadline=deadline,
                base_path=settings().api_base_path,
                presign=dependencies.presign_report_pdf,
            )
        logger.info("report change sent", extra={"report_id": new["id"]["S"], **result.__dict__})
    elif new.get("kind", {}).get("S") == WATCH_KIND and record.raw_event.get("eventName") == "INSERT":
        replayed = replay_current_state(
            new["connectionId"]["S"],
            new["reportId"]["S"],
            store=dependencies.report_store(),
            watchers=dependencies.connection_store(),
            pusher=dependencies.pusher(),
            now=now,
            deadline=deadline,
            base_path=settings().api_base_path,
            presign=dependencies.presign_report_pdf,
        )
        logger.info("current state replayed", extra={"report_id": new["reportId"]["S"], "result": replayed})


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # A failed record fails its report's later records in the batch too (BatchOrder), so the
    # stream's retry, resuming from the first failure, brings them again in order.
    record_handler = partial(handle_record, order=BatchOrder())
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
