"""The Callbacks queue as WebhookFunction uses it: when a message comes back, and where it is set aside.

SQS redrives a message to the dead-letter queue by receive count, and a receive is not an attempt: a copy
that found another copy delivering, or a record the invocation had no time left for, was received but never
tried. So WebhookFunction counts attempts itself (``callback_leases``) and, when they run out, records that on
the report and moves the message to the dead-letter queue here. The queue's own redrive policy stays as a
backstop for messages the function cannot handle at all.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from reports.errors import ReportsError
from reports.webhooks import MAX_RETRY_DELAY

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef


class CallbackQueueError(ReportsError):
    """SQS refused to change a callback message's visibility or to set it aside."""


class CallbackQueue:
    def __init__(self, client: SQSClient, queue_arn: str, dead_letter_url: str) -> None:
        self._client = client
        self._queue_arn = queue_arn
        self._dead_letter_url = dead_letter_url
        self._url: str | None = None

    def retry_after(self, receipt_handle: str, seconds: float) -> None:
        """Make the message visible again in ``seconds`` (0: at once, for one that was never tried)."""
        visibility = min(math.ceil(max(0.0, seconds)), math.floor(MAX_RETRY_DELAY))
        try:
            self._client.change_message_visibility(
                QueueUrl=self._queue_url(), ReceiptHandle=receipt_handle, VisibilityTimeout=visibility
            )
        except Exception as error:
            raise CallbackQueueError(f"could not reschedule a callback message: {error}") from error

    def set_aside(self, body: str, attributes: dict[str, Any]) -> None:
        """Put a copy of the message, with its attributes, in the callbacks dead-letter queue."""
        if not self._dead_letter_url:
            raise CallbackQueueError(
                "CALLBACKS_DEAD_LETTER_QUEUE_URL is not set; the template's WebhookFunction sets it"
            )
        message_attributes: dict[str, MessageAttributeValueTypeDef] = {
            name: {"DataType": value["dataType"], "StringValue": value["stringValue"]}
            for name, value in attributes.items()
            if value.get("stringValue") is not None
        }
        try:
            self._client.send_message(
                QueueUrl=self._dead_letter_url, MessageBody=body, MessageAttributes=message_attributes
            )
        except Exception as error:
            raise CallbackQueueError(f"could not set a callback message aside: {error}") from error

    def _queue_url(self) -> str:
        if self._url is None:
            name = self._queue_arn.rsplit(":", 1)[1]
            account = self._queue_arn.split(":")[4]
            self._url = self._client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        return self._url
