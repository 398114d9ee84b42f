"""WebhookFunction: Callbacks queue -> signed POST to the report's callbackUrl, backing off on failure.

A failed attempt goes back to the queue, visible again after the retry schedule's delay; a record this
invocation has no time left to try goes back visible at once, untried; after ``WebhookMaxAttempts``
attempts the report records ``exhausted`` and the message is set aside in the callbacks dead-letter queue.

The template keeps BatchSize 5 rather than 1: a webhook costs one short POST and most receivers answer in
milliseconds, so batching saves invocations, and no record is started without the time to finish it
(``DeliveryPolicy.time_needed``), so a slow receiver delays the rest of its batch but never times it out.
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
from reports.callback_leases import DynamoCallbackLeases
from reports.callback_queue import CallbackQueue
from reports.deliveries import DeliveryPolicy, Verdict, deliver_callback
from reports.model import utc_now
from reports.settings import settings
from reports.webhooks import retry_schedule

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])
metrics = Metrics()
# A batch whose every record failed is still an answer (each failure has set when its message comes back),
# not an invocation error: a receiver that is down must not look like a broken function.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

METRICS = {
    Verdict.DONE: "CallbacksSettled",
    Verdict.RETRY: "CallbackRetries",
    Verdict.DEFER: "CallbacksDeferred",
    Verdict.DEAD_LETTER: "CallbacksExhausted",
}


class DeliveryPending(Exception):
    """Tells SQS to deliver the message again (after the delay set on it)."""


def handle_record(record: SQSRecord, lambda_context: LambdaContext) -> None:
    config = settings()
    outcome = deliver_callback(
        record.body,
        store=dependencies.report_store(),
        leases=DynamoCallbackLeases(clients.dynamodb(), config.reports_table),
        secret=dependencies.webhook_signing_secret(),
        now=utc_now(),
        time_left=lambda_context.get_remaining_time_in_millis() / 1000,
        policy=DeliveryPolicy(
            max_attempts=config.webhook_max_attempts,
            retry_schedule=retry_schedule(config.webhook_retry_schedule, local=config.allow_loopback_callbacks),
            allow_loopback=config.allow_loopback_callbacks,
        ),
        presign=dependencies.presign_report_pdf,
    )
    logger.info(
        "callback",
        extra={"verdict": outcome.verdict.value, "reason": outcome.reason, "attempt": outcome.attempt},
    )
    metrics.add_metric(name=METRICS[outcome.verdict], unit=MetricUnit.Count, value=1)
    queue = CallbackQueue(clients.sqs(), record.event_source_arn, config.callbacks_dead_letter_queue_url)
    if outcome.verdict is Verdict.DEAD_LETTER:
        queue.set_aside(record.body, record.raw_event.get("messageAttributes") or {})
    elif outcome.verdict is not Verdict.DONE:
        queue.retry_after(record.receipt_handle, outcome.retry_in)
        raise DeliveryPending(outcome.reason)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)
