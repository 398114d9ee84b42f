"""ProcessFunction: render queued reports, one SQS batch at a time, reporting partial failures.

A record that raises is reported back to SQS (``ReportBatchItemFailures``) and delivered again;
after ``MaxReceiveCount`` receives it lands in the dead-letter queue (see ``dead_letter``).
"""

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
from reports.processing import process_job

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])  # only what we call; patching everything costs cold start
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


@tracer.capture_method
def handle_record(record: SQSRecord) -> None:
    try:
        job = Job.from_body(record.body)
    except ValidationError:
        # No retry turns a malformed body into a job: acknowledge it, loudly.
        logger.error("malformed job dropped", extra={"message_id": record.message_id, "body": record.body[:500]})
        metrics.add_metric(name="MalformedJobs", unit=MetricUnit.Count, value=1)
        return
    logger.append_keys(report_id=job.report_id)
    result = process_job(
        job,
        store=dependencies.report_store(),
        files=dependencies.report_files(),
        sales=dependencies.sales_archive(),
    )
    logger.info("job processed", extra={"outcome": result.outcome.value, "rendered": result.rendered})
    metrics.add_metric(name=f"Reports{result.outcome.value.capitalize()}", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)
