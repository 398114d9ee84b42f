"""Event source mappings, as Lambda runs them: poll a queue, invoke the function with a batch, and
delete only what succeeded (``ReportBatchItemFailures``); failures stay for SQS to deliver again
and, after ``maxReceiveCount`` receives, to move to the dead-letter queue."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from local.events import LambdaContext, sqs_event

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass(frozen=True)
class BatchResult:
    received: int
    failed: int


class SqsEventSource:
    """One queue feeding one function.

    ``retry_delay_seconds=None`` leaves a failed message invisible for the queue's visibility
    timeout, exactly as AWS does; a number (``0`` in tests) makes it visible again that much sooner.
    """

    def __init__(
        self,
        sqs: Any,
        *,
        queue_url: str,
        queue_arn: str,
        handler: Handler,
        function_name: str,
        timeout_seconds: int,
        batch_size: int = 10,
        retry_delay_seconds: int | None = None,
    ) -> None:
        self._sqs = sqs
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self._handler = handler
        self._function_name = function_name
        self._timeout = timeout_seconds
        self._batch_size = batch_size
        self._retry_delay = retry_delay_seconds

    def poll_once(self, wait_seconds: int = 0) -> BatchResult:
        answer = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = answer.get("Messages", [])
        if not messages:
            return BatchResult(0, 0)
        context = LambdaContext(function_name=self._function_name, timeout_seconds=self._timeout)
        try:
            response = self._handler(sqs_event(messages, queue_arn=self.queue_arn), context)
            failed_ids = {item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])}
        except Exception:
            logger.exception("%s failed on a batch of %d", self._function_name, len(messages))
            failed_ids = {message["MessageId"] for message in messages}
        done = [m for m in messages if m["MessageId"] not in failed_ids]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        if self._retry_delay is not None:
            for message in messages:
                if message["MessageId"] in failed_ids:
                    self._sqs.change_message_visibility(
                        QueueUrl=self.queue_url,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=self._retry_delay,
                    )
        return BatchResult(len(messages), len(failed_ids))

    def drain(self, *, max_batches: int = 100) -> int:
        """Poll until the queue answers empty; returns how many messages were handled."""
        handled = 0
        for _ in range(max_batches):
            result = self.poll_once()
            if result.received == 0:
                break
            handled += result.received
        return handled
