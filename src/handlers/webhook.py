"""WebhookFunction: Callbacks queue -> signed POST to the report's callbackUrl, backing off on failure.

A failed attempt goes back to the queue with its visibility set to an exponential backoff with
jitter; after ``WebhookMaxAttempts`` receives, SQS sets it aside in the callbacks dead-letter queue.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from reports import clients, dependencies
from reports.deliveries import Verdict, deliver_callback
from reports.model import utc_now
from reports.settings import settings
from reports.webhooks import retry_delay

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


class DeliveryPending(Exception):
    """Tells SQS to deliver the message again (after the backoff set on it)."""


def handle_record(record: SQSRecord) -> None:
    outcome = deliver_callback(
        record.body,
        store=dependencies.report_store(),
        secret=dependencies.webhook_signing_secret(),
        now=utc_now(),
        allow_loopback=settings().allow_loopback_callbacks,
    )
    logger.info("callback attempt", extra={"verdict": outcome.verdict.value, "reason": outcome.reason})
    if outcome.verdict is Verdict.DONE:
        metrics.add_metric(name="CallbacksSettled", unit=MetricUnit.Count, value=1)
        return
    attempt = int(record.attributes.approximate_receive_count)
    queue_url = clients.sqs().get_queue_url(QueueName=record.event_source_arn.rsplit(":", 1)[1])["QueueUrl"]
    clients.sqs().change_message_visibility(
        QueueUrl=queue_url, ReceiptHandle=record.receipt_handle, VisibilityTimeout=round(retry_delay(attempt))
    )
    metrics.add_metric(name="CallbackRetries", unit=MetricUnit.Count, value=1)
    raise DeliveryPending(outcome.reason)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)
