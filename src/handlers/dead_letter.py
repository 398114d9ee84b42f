"""DeadLetterFunction: jobs that exhausted their retries fail their report, so no client waits forever."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from reports import dependencies
from reports.errors import ValidationError
from reports.jobs import Job
from reports.processing import Outcome, abandon_job

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])  # only what we call; patching everything costs cold start
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


def handle_record(record: SQSRecord) -> None:
    try:
        job = Job.from_body(record.body)
    except ValidationError:
        logger.error("malformed job in the dead-letter queue", extra={"body": record.body[:500]})
        return
    result = abandon_job(job, store=dependencies.report_store())
    if result.outcome is Outcome.FAILED:
        metrics.add_metric(name="ReportsAbandoned", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)
