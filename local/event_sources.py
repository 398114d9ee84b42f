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


def batch_item_failures(response: Any) -> set[str]:
    """The ids a function reported as failed, read as Lambda reads them: a null or empty list is a
    complete success; an empty or null ``itemIdentifier`` (or a malformed item) fails the whole batch."""
    failures = set()
    for item in (response or {}).get("batchItemFailures") or []:
        identifier = item["itemIdentifier"]
        if not identifier:
            raise ValueError(f"batchItemFailures with an empty itemIdentifier: {response!r}")
        failures.add(str(identifier))
    return failures


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
            failed_ids = batch_item_failures(response)
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


class DynamoDBStreamEventSource:
    """A table's stream feeding a function: shard by shard, in order, retrying a failed batch from
    its first failed record (``ReportBatchItemFailures``) up to ``max_retries`` times, as Lambda does
    for streams; a batch that still fails is logged and skipped so the shard does not stall forever."""

    def __init__(
        self,
        streams: Any,
        *,
        stream_arn: str,
        handler: Handler,
        function_name: str,
        timeout_seconds: int,
        batch_size: int = 100,
        max_retries: int = 3,
        starting_position: str = "LATEST",
    ) -> None:
        self._streams = streams
        self.stream_arn = stream_arn
        self._handler = handler
        self._function_name = function_name
        self._timeout = timeout_seconds
        self._batch_size = batch_size
        self._max_retries = max_retries
        self._starting_position = "TRIM_HORIZON" if starting_position == "TRIM_HORIZON" else "LATEST"
        self._iterators: dict[str, str | None] = {}
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._attempts: dict[str, int] = {}
        self._known_shards = False

    def _refresh_shards(self) -> None:
        description = self._streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        for shard in description.get("Shards", []):
            shard_id = shard["ShardId"]
            if shard_id in self._iterators:
                continue
            position = self._starting_position if not self._known_shards else "TRIM_HORIZON"
            answer = self._streams.get_shard_iterator(
                StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType=position
            )
            self._iterators[shard_id] = answer["ShardIterator"]
            self._pending[shard_id] = []
            self._attempts[shard_id] = 0
        self._known_shards = True

    def poll_once(self) -> BatchResult:
        self._refresh_shards()
        received = failed = 0
        for shard_id in list(self._iterators):
            pending = self._pending[shard_id]
            iterator = self._iterators[shard_id]
            if not pending and iterator:
                answer = self._streams.get_records(ShardIterator=iterator, Limit=self._batch_size)
                self._iterators[shard_id] = answer.get("NextShardIterator")
                pending.extend(answer.get("Records", []))
            if not pending:
                continue
            batch = pending[: self._batch_size]
            received += len(batch)
            failed_from = self._invoke(batch)
            if failed_from is None:
                del pending[: len(batch)]
                self._attempts[shard_id] = 0
                continue
            failed += len(batch) - failed_from
            del pending[:failed_from]
            self._attempts[shard_id] += 1
            if self._attempts[shard_id] > self._max_retries:
                logger.error(
                    "%s: dropping %d stream records after %d retries",
                    self._function_name,
                    len(batch) - failed_from,
                    self._max_retries,
                )
                del pending[: len(batch) - failed_from]
                self._attempts[shard_id] = 0
        return BatchResult(received, failed)

    def _invoke(self, batch: list[dict[str, Any]]) -> int | None:
        """Index of the first record to retry, or None when the whole batch succeeded."""
        event = {"Records": [self._record(record) for record in batch]}
        context = LambdaContext(function_name=self._function_name, timeout_seconds=self._timeout)
        try:
            response = self._handler(event, context)
            # As Lambda documents: a null list is a complete success; an empty or null
            # itemIdentifier, or a bad key name, is a complete failure.
            failures = batch_item_failures(response)
        except Exception:
            logger.exception("%s failed on %d stream records", self._function_name, len(batch))
            return 0
        for index, record in enumerate(batch):
            if record["dynamodb"]["SequenceNumber"] in failures:
                return index
        return None

    def _record(self, record: dict[str, Any]) -> dict[str, Any]:
        data = dict(record["dynamodb"])
        created = data.get("ApproximateCreationDateTime")
        if created is not None and not isinstance(created, int | float):
            data["ApproximateCreationDateTime"] = int(created.timestamp())
        return {
            "eventID": record.get("eventID"),
            "eventName": record.get("eventName"),
            "eventVersion": record.get("eventVersion", "1.1"),
            "eventSource": "aws:dynamodb",
            "awsRegion": record.get("awsRegion") or self.stream_arn.split(":")[3],
            "dynamodb": data,
            "eventSourceARN": self.stream_arn,
        }
