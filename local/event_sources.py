"""Event source mappings, as Lambda runs them, built from the template's ``SQS`` and ``DynamoDB`` events.

A queue is polled and the function invoked with a batch; what succeeded is deleted, and only the ids the
function names in ``batchItemFailures`` stay behind when the event declares ``ReportBatchItemFailures``
(without it a returned list means nothing and only an error fails the batch). Failures stay for SQS to
deliver again and, after ``maxReceiveCount`` receives, to move to the dead-letter queue.

A table's stream is read shard by shard, in order; a failed batch is retried from its first failed record,
split in two on a function error when ``BisectBatchOnFunctionError`` is set, after a growing pause, until
``MaximumRetryAttempts`` or ``MaximumRecordAgeInSeconds`` give up on it; then an invocation record goes to
``DestinationConfig.OnFailure`` and the shard moves on.

Both honour ``FilterCriteria`` (records no filter matches are acknowledged without an invocation), their
``BatchSize`` and ``MaximumBatchingWindowInSeconds``, and ``Enabled``; a property not implemented here is
named in a warning at start rather than silently ignored.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local.events import ACCOUNT_ID, LambdaContext, sqs_event
from local.template import DataStack, TemplateError

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]
Clock = Callable[[], float]

REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"

# -- Lambda event filtering ------------------------------------------------------------------------------


class FilterError(TemplateError):
    """A filter pattern Lambda would refuse when the event source mapping is created."""


_MISSING = object()
NUMERIC_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "=": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
MAX_FILTERS = 10
"""Lambda allows five filters per event source by default, and up to ten with a quota increase."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _string_operand(rule: Any, operator: str, where: str) -> None:
    """``prefix``/``suffix`` take a string, or ``{"equals-ignore-case": string}``."""
    if isinstance(rule, dict) and set(rule) == {"equals-ignore-case"}:
        rule = rule["equals-ignore-case"]
    if not isinstance(rule, str):
        raise FilterError(f"{where}: {operator} needs a string, got {json.dumps(rule)}")


def _validate_condition(condition: Any, where: str) -> None:
    if condition is None or isinstance(condition, str | bool) or _is_number(condition):
        return
    if not isinstance(condition, dict) or len(condition) != 1:
        raise FilterError(f"{where}: {json.dumps(condition)} is not a value or a one-operator object")
    ((operator, operand),) = condition.items()
    if operator in ("prefix", "suffix"):
        _string_operand(operand, operator, where)
    elif operator == "equals-ignore-case":
        if not isinstance(operand, str):
            raise FilterError(f"{where}: equals-ignore-case needs a string")
    elif operator == "wildcard":
        if not isinstance(operand, str):
            raise FilterError(f"{where}: wildcard needs a string")
    elif operator == "exists":
        if not isinstance(operand, bool):
            raise FilterError(f"{where}: exists needs true or false")
    elif operator == "numeric":
        if not isinstance(operand, list) or not operand or len(operand) % 2 or len(operand) > 4:
            raise FilterError(f"{where}: numeric needs one or two [operator, number] pairs")
        for symbol, number in zip(operand[::2], operand[1::2], strict=True):
            if symbol not in NUMERIC_OPERATORS or not _is_number(number):
                raise FilterError(f"{where}: numeric {json.dumps(operand)} is not [operator, number, ...]")
    elif operator == "anything-but":
        if isinstance(operand, dict):
            ((inner, value),) = operand.items() if len(operand) == 1 else ((None, None),)
            if inner not in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
                raise FilterError(f"{where}: anything-but {json.dumps(operand)} is not supported")
            values = value if isinstance(value, list) else [value]
            if not values or not all(isinstance(item, str) for item in values):
                raise FilterError(f"{where}: anything-but {inner} needs strings")
        else:
            values = operand if isinstance(operand, list) else [operand]
            if not values or not all(isinstance(item, str) or _is_number(item) for item in values):
                raise FilterError(f"{where}: anything-but needs strings or numbers")
    else:
        raise FilterError(f"{where}: {operator!r} is not a Lambda filter operator")


def validate_pattern(pattern: Any, where: str = "Pattern") -> None:
    """Raise ``FilterError`` for what Lambda would refuse: every leaf must be a non-empty array of
    values and operators, every branch an object."""
    if not isinstance(pattern, dict) or not pattern:
        raise FilterError(f"{where} must be a non-empty JSON object")
    for key, rule in pattern.items():
        here = f"{where}.{key}"
        if key == "$or":
            if not isinstance(rule, list) or len(rule) < 2:
                raise FilterError(f"{here} needs a list of at least two patterns")
            for index, alternative in enumerate(rule):
                validate_pattern(alternative, f"{here}[{index}]")
        elif isinstance(rule, dict):
            validate_pattern(rule, here)
        elif isinstance(rule, list):
            if not rule:
                raise FilterError(f"{here} must not be an empty array")
            for condition in rule:
                _validate_condition(condition, here)
        else:
            raise FilterError(f"{here} must be an array of match conditions or an object, got {json.dumps(rule)}")


def _text_test(operator: str, operand: Any) -> Callable[[str], bool]:
    if isinstance(operand, dict):  # {"prefix": {"equals-ignore-case": "x"}}
        operand = str(operand["equals-ignore-case"]).casefold()
        return {
            "prefix": lambda text: text.casefold().startswith(operand),
            "suffix": lambda text: text.casefold().endswith(operand),
        }[operator]
    if operator == "prefix":
        return lambda text: text.startswith(operand)
    if operator == "suffix":
        return lambda text: text.endswith(operand)
    if operator == "equals-ignore-case":
        return lambda text: text.casefold() == str(operand).casefold()
    expression = re.compile("^" + ".*".join(re.escape(part) for part in str(operand).split("*")) + "$", re.S)
    return lambda text: expression.match(text) is not None  # wildcard


def _equal(condition: Any, value: Any) -> bool:
    """Exact matching: strings character by character, numbers of the same kind, null, booleans."""
    if condition is None or isinstance(condition, bool):
        return value is condition
    if isinstance(value, bool):
        return False
    return type(value) is type(condition) and value == condition


def _condition_matches(condition: Any, value: Any) -> bool:
    if not isinstance(condition, dict):
        if value is _MISSING:
            return False
        if isinstance(value, list):  # an array in the record matches when any element does
            return any(_equal(condition, item) for item in value)
        return _equal(condition, value)
    ((operator, operand),) = condition.items()
    if operator == "exists":
        return (value is not _MISSING) is operand
    if value is _MISSING:
        return False
    if isinstance(value, list):
        return any(_condition_matches(condition, item) for item in value)
    if operator in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
        return isinstance(value, str) and _text_test(operator, operand)(value)
    if operator == "numeric":
        if not _is_number(value):
            return False
        pairs = zip(operand[::2], operand[1::2], strict=True)
        return all(NUMERIC_OPERATORS[symbol](value, bound) for symbol, bound in pairs)
    if operator == "anything-but":
        if isinstance(operand, dict):
            ((inner, values),) = operand.items()
            tests = [_text_test(inner, item) for item in (values if isinstance(values, list) else [values])]
            return isinstance(value, str) and not any(test(value) for test in tests)
        excluded = operand if isinstance(operand, list) else [operand]
        return not any(_equal(item, value) for item in excluded)
    return False


def pattern_matches(pattern: Mapping[str, Any], record: Any) -> bool:
    """Whether ``record`` matches ``pattern`` as Lambda (and EventBridge) match them: every key of the
    pattern must match (``$or`` takes alternatives), a leaf array matches when any of its conditions does,
    and a nested object looks one level down (``{"dynamodb": {"NewImage": {"x": {"S": [...]}}}}``)."""
    for key, rule in pattern.items():
        if key == "$or":
            if not any(pattern_matches(alternative, record) for alternative in rule):
                return False
            continue
        value = record.get(key, _MISSING) if isinstance(record, dict) else _MISSING
        if isinstance(rule, dict):
            if isinstance(value, list):
                if not any(pattern_matches(rule, item) for item in value):
                    return False
            elif not pattern_matches(rule, value if isinstance(value, dict) else {}):
                return False
        elif not any(_condition_matches(condition, value) for condition in rule):
            return False
    return True


@dataclass(frozen=True)
class EventFilter:
    """An event source's ``FilterCriteria``: a record is handled when any pattern matches (none: all are).

    ``sqs=True`` matches a queue's records as Lambda does: ``body`` is matched as JSON when it is a JSON
    object, and a record whose body is JSON where the pattern's ``body`` is a plain-string rule (or the
    reverse) matches nothing."""

    patterns: tuple[Mapping[str, Any], ...] = ()
    sqs: bool = False

    @classmethod
    def from_criteria(cls, criteria: Any, *, sqs: bool = False, where: str = "FilterCriteria") -> EventFilter:
        """``{"Filters": [{"Pattern": "<JSON>"}, ...]}`` as the template holds it (a Pattern may also be
        an object); raises ``FilterError`` for what Lambda would refuse."""
        if criteria is None or criteria == {}:
            return cls((), sqs)
        filters = criteria.get("Filters") if isinstance(criteria, dict) else None
        if not isinstance(filters, list):
            raise FilterError(f"{where} must be {{Filters: [{{Pattern: ...}}]}}")
        if len(filters) > MAX_FILTERS:
            raise FilterError(f"{where} has {len(filters)} filters; Lambda allows at most {MAX_FILTERS}")
        patterns: list[dict[str, Any]] = []
        for index, entry in enumerate(filters):
            here = f"{where}.Filters[{index}].Pattern"
            raw: Any = entry.get("Pattern") if isinstance(entry, dict) else None
            if isinstance(raw, str):
                try:
                    raw = json.loads(raw)
                except json.JSONDecodeError as error:
                    raise FilterError(f"{here} is not valid JSON: {error}") from None
            validate_pattern(raw, here)
            if not sqs and "dynamodb" in raw and not isinstance(raw["dynamodb"], dict):
                raise FilterError(f"{here}.dynamodb must be a JSON object pattern")
            patterns.append(raw)
        return cls(tuple(patterns), sqs)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def matches(self, record: Mapping[str, Any]) -> bool:
        if not self.patterns:
            return True
        view: Any = record
        body_is_json = False
        if self.sqs:
            try:
                parsed = json.loads(record["body"])
            except (ValueError, TypeError):
                parsed = None
            body_is_json = isinstance(parsed, dict)
            view = dict(record) | ({"body": parsed} if body_is_json else {})
        return any(self._matches(pattern, view, body_is_json) for pattern in self.patterns)

    def _matches(self, pattern: Mapping[str, Any], view: Any, body_is_json: bool) -> bool:
        if self.sqs and "body" in pattern and isinstance(pattern["body"], dict) is not body_is_json:
            return False  # Lambda drops a record whose body and body pattern differ in format
        return pattern_matches(pattern, view)


# -- on-failure destinations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class OnFailureDestination:
    """``DestinationConfig.OnFailure``: an SQS queue or SNS topic that receives, as JSON, the invocation
    record of each batch a stream event source gives up on."""

    arn: str
    _send: Callable[[str], Any] = field(repr=False, compare=False)

    @classmethod
    def for_arn(cls, arn: str, client: Callable[[str], Any]) -> OnFailureDestination:
        service = arn.split(":")[2] if arn.count(":") >= 5 else ""
        if service == "sqs":
            sqs = client("sqs")
            queue_url = sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[1])["QueueUrl"]
            return cls(arn, lambda body: sqs.send_message(QueueUrl=queue_url, MessageBody=body))
        if service == "sns":
            sns = client("sns")
            return cls(arn, lambda body: sns.publish(TopicArn=arn, Message=body))
        raise TemplateError(f"on-failure destination {arn!r}: only SQS queues and SNS topics are supported locally")

    def send(self, invocation_record: Mapping[str, Any]) -> None:
        self._send(json.dumps(invocation_record))


# -- SQS ---------------------------------------------------------------------------------------------------


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
    """Records given to the function."""
    failed: int
    filtered: int = 0
    """Records no filter matched: acknowledged (deleted, or passed over on a stream) without an invocation."""


class SqsEventSource:
    """One queue feeding one function.

    ``retry_delay_seconds=None`` leaves a failed message invisible for the queue's visibility
    timeout, exactly as AWS does; a number (``0`` in tests) makes it visible again that much sooner.
    ``report_batch_item_failures`` is whether the event declares ``FunctionResponseTypes:
    [ReportBatchItemFailures]`` (the runtime passes the template's; the default suits handlers built
    with Powertools' batch utilities, which always answer that way).
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
        report_batch_item_failures: bool = True,
        filter: EventFilter | None = None,
        batching_window_seconds: float = 0,
        event_name: str = "",
        clock: Clock = time.monotonic,
    ) -> None:
        self._sqs = sqs
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self._handler = handler
        self.function_name = function_name
        self.event_name = event_name
        self._timeout = timeout_seconds
        self.batch_size = batch_size
        self._retry_delay = retry_delay_seconds
        self.report_batch_item_failures = report_batch_item_failures
        self.filter = filter or EventFilter(sqs=True)
        self.batching_window_seconds = batching_window_seconds
        self._clock = clock

    def _receive(self, count: int, wait_seconds: int) -> list[dict[str, Any]]:
        answer = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(answer.get("Messages", []))

    def _gather(self, wait_seconds: int) -> list[dict[str, Any]]:
        """Up to ``batch_size`` messages, ten per receive (the SQS limit): after the first, more are
        received until the batch is full or ``batching_window_seconds`` has passed (with no window, until
        a receive comes back empty)."""
        messages = self._receive(min(10, self.batch_size), wait_seconds)
        if not messages or (self.batch_size <= 10 and not self.batching_window_seconds):
            return messages
        deadline = self._clock() + self.batching_window_seconds
        while len(messages) < self.batch_size:
            left = deadline - self._clock()
            if self.batching_window_seconds and left <= 0:
                break
            wait = min(20, int(left)) if self.batching_window_seconds else 0
            more = self._receive(min(10, self.batch_size - len(messages)), wait)
            if more:
                messages.extend(more)
            elif not self.batching_window_seconds:
                break
            elif wait == 0:
                time.sleep(min(left, 0.05))
        return messages

    def poll_once(self, wait_seconds: int = 0) -> BatchResult:
        messages = self._gather(wait_seconds)
        if not messages:
            return BatchResult(0, 0)
        records = sqs_event(messages, queue_arn=self.queue_arn)["Records"]
        chosen, skipped = [], []
        for message, record in zip(messages, records, strict=True):
            (chosen.append((message, record)) if self.filter.matches(record) else skipped.append(message))
        failed_ids: set[str] = set()
        if chosen:
            failed_ids = self._invoke([m for m, _ in chosen], [r for _, r in chosen])
        done = [m for m, _ in chosen if m["MessageId"] not in failed_ids] + skipped
        for start in range(0, len(done), 10):  # at most ten entries a call
            self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])
                ],
            )
        if self._retry_delay is not None:
            for message, _ in chosen:
                if message["MessageId"] in failed_ids:
                    self._sqs.change_message_visibility(
                        QueueUrl=self.queue_url,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=self._retry_delay,
                    )
        return BatchResult(len(chosen), len(failed_ids), len(skipped))

    def _invoke(self, messages: list[dict[str, Any]], records: list[dict[str, Any]]) -> set[str]:
        """The ids of the messages that failed."""
        every_id = {message["MessageId"] for message in messages}
        context = LambdaContext(function_name=self.function_name, timeout_seconds=self._timeout)
        try:
            response = self._handler({"Records": records}, context)
        except Exception:
            logger.exception("%s failed on a batch of %d", self.function_name, len(messages))
            return every_id
        if not self.report_batch_item_failures:
            return set()  # without ReportBatchItemFailures Lambda ignores what the function returns
        try:
            failures = batch_item_failures(response)
        except (ValueError, KeyError, TypeError, AttributeError):
            logger.error("%s: malformed batchItemFailures, the whole batch failed: %r", self.function_name, response)
            return every_id
        if not failures <= every_id:
            logger.error("%s: batchItemFailures names messages not in the batch: %s", self.function_name, failures)
            return every_id
        return failures

    def drain(self, *, max_batches: int = 100) -> int:
        """Poll until the queue answers empty; returns how many messages were handled."""
        handled = 0
        for _ in range(max_batches):
            result = self.poll_once()
            if result.received + result.filtered == 0:
                break
            handled += result.received
        return handled


# -- DynamoDB streams --------------------------------------------------------------------------------------


@dataclass
class _Shard:
    iterator: str | None
    pending: list[dict[str, Any]] = field(default_factory=list)
    """Records read and matched by a filter, not yet handled, in stream order (Lambda-shaped)."""
    attempts: int = 0
    """Failed invocations of the current head batch that count against MaximumRetryAttempts."""
    invocations: int = 0
    """Invocations of the current head batch (the invocation record's approximateInvokeCount)."""
    last_error: bool = False
    segments: list[int] = field(default_factory=list)
    """Sizes of the halves still to deliver after BisectBatchOnFunctionError split a batch."""
    not_before: float = 0.0
    gathering_since: float | None = None
    undelivered: list[dict[str, Any]] = field(default_factory=list)


class DynamoDBStreamEventSource:
    """A table's stream feeding a function: shard by shard, in order, retrying a failed batch from
    its first failed record (``ReportBatchItemFailures``) up to ``max_retries`` times (``None``: until the
    records are too old, Lambda's ``-1``), as Lambda does for streams; a batch that still fails goes to the
    ``on_failure`` destination (or is logged) and skipped so the shard does not stall forever.

    ``bisect_on_error`` splits a batch in two when the function raises (not counted as a retry), so one
    poison record cannot hold back the good ones beside it. ``retry_pause_seconds`` is the pause before a
    retry, doubled each time up to ``max_retry_pause_seconds`` (0 in tests: retry at the next poll).
    """

    def __init__(
        self,
        streams: Any,
        *,
        stream_arn: str,
        handler: Handler,
        function_name: str,
        timeout_seconds: int,
        batch_size: int = 100,
        max_retries: int | None = 3,
        starting_position: str = "LATEST",
        bisect_on_error: bool = False,
        max_record_age_seconds: int | None = None,
        report_batch_item_failures: bool = True,
        filter: EventFilter | None = None,
        on_failure: OnFailureDestination | None = None,
        batching_window_seconds: float = 0,
        retry_pause_seconds: float = 0,
        max_retry_pause_seconds: float = 5,
        event_name: str = "",
        clock: Clock = time.time,
    ) -> None:
        if starting_position not in ("TRIM_HORIZON", "LATEST"):
            raise TemplateError(f"StartingPosition {starting_position!r}: a stream takes TRIM_HORIZON or LATEST")
        self._streams = streams
        self.stream_arn = stream_arn
        self._handler = handler
        self.function_name = function_name
        self.event_name = event_name
        self._timeout = timeout_seconds
        self.batch_size = batch_size
        self.max_retries = None if max_retries is None or max_retries < 0 else max_retries
        self.starting_position = starting_position
        self.bisect_on_error = bisect_on_error
        unlimited_age = max_record_age_seconds is None or max_record_age_seconds < 0
        self.max_record_age_seconds = None if unlimited_age else max_record_age_seconds
        self.report_batch_item_failures = report_batch_item_failures
        self.filter = filter or EventFilter()
        self.on_failure = on_failure
        self.batching_window_seconds = batching_window_seconds
        self.retry_pause_seconds = retry_pause_seconds
        self.max_retry_pause_seconds = max_retry_pause_seconds
        self._clock = clock
        self._shards: dict[str, _Shard] = {}
        self._known_shards = False

    def _refresh_shards(self) -> None:
        description = self._streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        for shard in description.get("Shards", []):
            shard_id = shard["ShardId"]
            if shard_id in self._shards:
                continue
            position = self.starting_position if not self._known_shards else "TRIM_HORIZON"
            answer = self._streams.get_shard_iterator(
                StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType=position
            )
            self._shards[shard_id] = _Shard(answer["ShardIterator"])
        self._known_shards = True

    def poll_once(self) -> BatchResult:
        self._refresh_shards()
        received = failed = filtered = 0
        for shard_id, shard in list(self._shards.items()):
            now = self._clock()
            if now < shard.not_before:
                continue
            if shard.undelivered and not self._deliver_failure(shard):
                continue
            if shard.iterator and (not shard.pending or self._gathering(shard, now)):
                answer = self._streams.get_records(ShardIterator=shard.iterator, Limit=self.batch_size)
                shard.iterator = answer.get("NextShardIterator")
                for raw in answer.get("Records", []):
                    record = self._record(raw)
                    if self.filter.matches(record):
                        shard.pending.append(record)
                    else:
                        filtered += 1
            if not shard.pending:
                shard.gathering_since = None
                continue
            if self._gathering(shard, now):
                continue
            shard.gathering_since = None
            self._discard_expired(shard_id, shard, now)
            if not shard.pending:
                continue
            size = shard.segments[0] if shard.segments else self.batch_size
            batch = shard.pending[:size]
            received += len(batch)
            failed += self._handle(shard_id, shard, batch)
        return BatchResult(received, failed, filtered)

    def _gathering(self, shard: _Shard, now: float) -> bool:
        """Whether ``MaximumBatchingWindowInSeconds`` still has time to fill a first batch."""
        if not self.batching_window_seconds or shard.attempts or shard.segments or shard.invocations:
            return False
        if len(shard.pending) >= self.batch_size:
            return False
        if shard.gathering_since is None:
            shard.gathering_since = now
        return now - shard.gathering_since < self.batching_window_seconds

    def _handle(self, shard_id: str, shard: _Shard, batch: list[dict[str, Any]]) -> int:
        """Invoke with ``batch`` (the head of the shard's pending records) and act on the outcome; how many
        records failed."""
        failed_from, errored = self._invoke(batch)
        shard.invocations += 1
        shard.last_error = errored
        if failed_from is None:
            self._advance(shard, len(batch))
            return 0
        failing = len(batch) - failed_from
        if failed_from:
            del shard.pending[:failed_from]  # the records before the first failure are done
            if shard.segments:
                shard.segments[0] = failing
        if errored and self.bisect_on_error and len(batch) > 1:
            half = math.ceil(len(batch) / 2)
            shard.segments[:1] = [half, len(batch) - half]
            logger.warning("%s: split a failed batch of %d stream records in two", self.function_name, len(batch))
            self._pause(shard, 1)
            return failing
        shard.attempts += 1
        if self.max_retries is not None and shard.attempts > self.max_retries:
            logger.error(
                "%s: dropping %d stream records after %d retries", self.function_name, failing, self.max_retries
            )
            self._give_up(shard_id, shard, shard.pending[:failing], "RetryAttemptsExhausted")
        else:
            self._pause(shard, shard.attempts)
        return failing

    def _advance(self, shard: _Shard, count: int) -> None:
        del shard.pending[:count]
        shard.attempts = shard.invocations = 0
        shard.last_error = False
        if shard.segments:
            shard.segments.pop(0)

    def _pause(self, shard: _Shard, attempt: int) -> None:
        if self.retry_pause_seconds:
            pause = min(self.max_retry_pause_seconds, self.retry_pause_seconds * 2 ** max(0, attempt - 1))
            shard.not_before = self._clock() + pause

    def _discard_expired(self, shard_id: str, shard: _Shard, now: float) -> None:
        """``MaximumRecordAgeInSeconds``: records older than that are given up on, oldest first."""
        if self.max_record_age_seconds is None:
            return
        expired = 0
        for record in shard.pending:
            if now - record["dynamodb"].get("ApproximateCreationDateTime", now) <= self.max_record_age_seconds:
                break
            expired += 1
        if expired:
            logger.error(
                "%s: dropping %d stream records older than %d s",
                self.function_name,
                expired,
                self.max_record_age_seconds,
            )
            self._give_up(shard_id, shard, shard.pending[:expired], "RecordAgeExceeded")

    def _give_up(self, shard_id: str, shard: _Shard, records: list[dict[str, Any]], condition: str) -> None:
        """Skip ``records`` (the head of the pending ones) and send their invocation record on."""
        if self.on_failure is not None:
            shard.undelivered.append(self._invocation_record(shard_id, shard, records, condition))
        count = len(records)
        if shard.segments:
            shard.segments[0] -= count
            if shard.segments[0] <= 0:
                shard.segments.pop(0)
        del shard.pending[:count]
        shard.attempts = shard.invocations = 0
        shard.last_error = False
        self._deliver_failure(shard)

    def _deliver_failure(self, shard: _Shard) -> bool:
        """Send what is waiting for the on-failure destination; False (and a pause) if it cannot take it."""
        while shard.undelivered and self.on_failure is not None:
            try:
                self.on_failure.send(shard.undelivered[0])
            except Exception:
                logger.exception("%s: cannot send to %s; trying again", self.function_name, self.on_failure.arn)
                shard.not_before = self._clock() + max(1.0, self.retry_pause_seconds)
                return False
            shard.undelivered.pop(0)
        return True

    def _invocation_record(
        self, shard_id: str, shard: _Shard, records: list[dict[str, Any]], condition: str
    ) -> dict[str, Any]:
        """What Lambda sends an on-failure destination for a stream batch: metadata, not the records."""
        region = self.stream_arn.split(":")[3]

        def arrival(record: dict[str, Any]) -> str:
            created = record["dynamodb"].get("ApproximateCreationDateTime") or 0
            return datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

        invocation: dict[str, Any] = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{self.function_name}",
                "condition": condition,
                "approximateInvokeCount": shard.invocations,
            }
        }
        if shard.invocations:
            response = {"statusCode": 200, "executedVersion": "$LATEST"}
            invocation["responseContext"] = response | ({"functionError": "Unhandled"} if shard.last_error else {})
        invocation |= {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": arrival(records[0]),
                "approximateArrivalOfLastRecord": arrival(records[-1]),
                "batchSize": len(records),
                "streamArn": self.stream_arn,
            },
        }
        return invocation

    def _invoke(self, batch: list[dict[str, Any]]) -> tuple[int | None, bool]:
        """The index of the first record to retry (None when the whole batch succeeded), and whether the
        invocation failed as a whole (an error, or a response Lambda counts as one)."""
        context = LambdaContext(function_name=self.function_name, timeout_seconds=self._timeout)
        try:
            response = self._handler({"Records": batch}, context)
        except Exception:
            logger.exception("%s failed on %d stream records", self.function_name, len(batch))
            return 0, True
        if not self.report_batch_item_failures:
            return None, False
        try:
            # As Lambda documents: a null list is a complete success; an empty or null
            # itemIdentifier, or a bad key name, is a complete failure.
            failures = batch_item_failures(response)
        except (ValueError, KeyError, TypeError, AttributeError):
            logger.error("%s: malformed batchItemFailures, the whole batch failed: %r", self.function_name, response)
            return 0, True
        for index, record in enumerate(batch):
            if record["dynamodb"]["SequenceNumber"] in failures:
                return index, False
        return None, False

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


# -- from the template -------------------------------------------------------------------------------------

SQS_PROPERTIES = frozenset(
    {
        "Queue",
        "BatchSize",
        "Enabled",
        "FilterCriteria",
        "FunctionResponseTypes",
        "MaximumBatchingWindowInSeconds",
        "ScalingConfig",  # one invocation at a time here, within any MaximumConcurrency (at least 2)
    }
)
STREAM_PROPERTIES = frozenset(
    {
        "Stream",
        "StartingPosition",
        "BatchSize",
        "Enabled",
        "FilterCriteria",
        "FunctionResponseTypes",
        "MaximumBatchingWindowInSeconds",
        "BisectBatchOnFunctionError",
        "MaximumRetryAttempts",
        "MaximumRecordAgeInSeconds",
        "DestinationConfig",
    }
)
ROUTED_ELSEWHERE = frozenset({"Api"})
"""Event types served by another part of the runtime (the REST API by ``local.gateway``)."""
STREAM_RETRY_PAUSE_SECONDS = 0.25
"""Pause before a stream batch is retried, doubled on each retry up to ``STREAM_MAX_RETRY_PAUSE_SECONDS``."""
STREAM_MAX_RETRY_PAUSE_SECONDS = 4.0


class _Properties:
    """One event's properties, resolved against the stack, with errors that name where they are."""

    def __init__(self, function: str, event: str, props: Mapping[str, Any], stack: DataStack) -> None:
        self.where = f"{function}.Events.{event}"
        self._props = props
        self._stack = stack

    def __contains__(self, name: str) -> bool:
        return name in self._props

    def raw(self, name: str) -> Any:
        return self._props.get(name)

    def text(self, name: str, default: str | None = None) -> str | None:
        if name not in self._props:
            return default
        try:
            return self._stack.resolve(self._props[name])
        except TemplateError as error:
            raise TemplateError(f"{self.where}.{name}: {error}") from None

    def integer(self, name: str, default: int, low: int, high: int, *, unlimited: bool = False) -> int:
        text = self.text(name)
        if text is None:
            return default
        try:
            value = int(text)
        except ValueError:
            raise TemplateError(f"{self.where}.{name} must be a whole number, got {text!r}") from None
        if not (low <= value <= high or (unlimited and value == -1)):
            allowed = f"{low} to {high}" + (" or -1" if unlimited else "")
            raise TemplateError(f"{self.where}.{name} must be {allowed}, got {value}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        text = self.text(name)
        if text is None:
            return default
        if text.lower() not in ("true", "false"):
            raise TemplateError(f"{self.where}.{name} must be true or false, got {text!r}")
        return text.lower() == "true"

    def response_types(self) -> bool:
        types = self.raw("FunctionResponseTypes") or []
        if not isinstance(types, list) or any(t != REPORT_BATCH_ITEM_FAILURES for t in types):
            raise TemplateError(f"{self.where}.FunctionResponseTypes may only list {REPORT_BATCH_ITEM_FAILURES}")
        return REPORT_BATCH_ITEM_FAILURES in types

    def event_filter(self, *, sqs: bool) -> EventFilter:
        criteria = self.raw("FilterCriteria")
        if isinstance(criteria, dict) and isinstance(criteria.get("Filters"), list):
            filters = []
            for entry in criteria["Filters"]:
                pattern = entry.get("Pattern") if isinstance(entry, dict) else None
                if pattern is not None and not isinstance(pattern, str | dict):
                    pattern = self._stack.resolve(pattern)  # !Sub or !Join building the JSON
                filters.append({"Pattern": pattern})
            criteria = {"Filters": filters}
        return EventFilter.from_criteria(criteria, sqs=sqs, where=f"{self.where}.FilterCriteria")

    def warn_unimplemented(self, implemented: frozenset[str]) -> None:
        for name in sorted(set(self._props) - implemented):
            logger.warning(
                "%s.%s is not implemented by the local runtime and is ignored here (AWS applies it)",
                self.where,
                name,
            )


def event_sources_from_template(
    functions: Mapping[str, Any],
    stack: DataStack,
    client: Callable[[str], Any],
    invoker: Callable[[Any, str], Handler],
    *,
    retry_pause_seconds: float = STREAM_RETRY_PAUSE_SECONDS,
    max_retry_pause_seconds: float = STREAM_MAX_RETRY_PAUSE_SECONDS,
) -> list[SqsEventSource | DynamoDBStreamEventSource]:
    """An event source for each ``SQS`` and ``DynamoDB`` event of each function (``functions``: local
    functions with a ``spec`` and ``name``), with every setting the template gives it.

    ``client(service)`` makes a boto3 client for the local AWS; ``invoker(function, event_name)`` the
    handler a source calls. Raises ``TemplateError`` for a setting AWS would refuse; warns about any
    property, or event type, this runtime does not implement."""
    builder = _Builder(stack, client, invoker, retry_pause_seconds, max_retry_pause_seconds)
    sources: list[SqsEventSource | DynamoDBStreamEventSource] = []
    for function in functions.values():
        for name, event in function.spec.events.items():
            kind = event.get("Type")
            props = _Properties(function.name, name, event.get("Properties") or {}, stack)
            source: SqsEventSource | DynamoDBStreamEventSource | None = None
            if kind == "SQS":
                source = builder.sqs(function, name, props)
            elif kind == "DynamoDB":
                source = builder.stream(function, name, props)
            elif kind not in ROUTED_ELSEWHERE:
                logger.warning("%s: events of type %s are not run by the local runtime", props.where, kind)
            if source is not None:
                sources.append(source)
    return sources


def _resource(props: _Properties, name: str, attribute: str) -> str:
    """The logical id of the resource ``!GetAtt X.Arn`` / ``!GetAtt X.StreamArn`` / ``!Ref X`` names."""
    value = props.raw(name)
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Fn::GetAtt":
            return str(argument[0] if isinstance(argument, list) else argument.split(".")[0])
        if function == "Ref":
            return str(argument)
    raise TemplateError(f"{props.where}.{name} must be !GetAtt <resource>.{attribute} locally, got {value!r}")


@dataclass(frozen=True)
class _Builder:
    stack: DataStack
    client: Callable[[str], Any]
    invoker: Callable[[Any, str], Handler]
    retry_pause_seconds: float
    max_retry_pause_seconds: float

    def sqs(self, function: Any, name: str, props: _Properties) -> SqsEventSource | None:
        props.warn_unimplemented(SQS_PROPERTIES)
        queue = _resource(props, "Queue", "Arn")
        batch_size = props.integer("BatchSize", 10, 1, 10000)
        window = props.integer("MaximumBatchingWindowInSeconds", 0, 0, 300)
        if batch_size > 10 and window < 1:
            raise TemplateError(
                f"{props.where}: a BatchSize above 10 needs MaximumBatchingWindowInSeconds of at least 1, as on AWS"
            )
        report = props.response_types()
        event_filter = props.event_filter(sqs=True)
        if not props.flag("Enabled", True):
            logger.info("%s is disabled (Enabled: false); its queue is not polled", props.where)
            return None
        return SqsEventSource(
            self.client("sqs"),
            queue_url=self.stack.ref(queue),
            queue_arn=self.stack.get_att(queue, "Arn"),
            handler=self.invoker(function, name),
            function_name=function.name,
            event_name=name,
            timeout_seconds=function.spec.timeout,
            batch_size=batch_size,
            batching_window_seconds=window,
            report_batch_item_failures=report,
            filter=event_filter,
        )

    def stream(self, function: Any, name: str, props: _Properties) -> DynamoDBStreamEventSource | None:
        props.warn_unimplemented(STREAM_PROPERTIES)
        table = _resource(props, "Stream", "StreamArn")
        starting_position = props.text("StartingPosition")
        if starting_position not in ("TRIM_HORIZON", "LATEST"):
            raise TemplateError(
                f"{props.where}.StartingPosition must be TRIM_HORIZON or LATEST, got {starting_position!r}"
            )
        batch_size = props.integer("BatchSize", 100, 1, 10000)
        max_retries = props.integer("MaximumRetryAttempts", -1, 0, 10000, unlimited=True)
        max_age = props.integer("MaximumRecordAgeInSeconds", -1, 60, 604800, unlimited=True)
        bisect = props.flag("BisectBatchOnFunctionError", False)
        report = props.response_types()
        event_filter = props.event_filter(sqs=False)
        window = props.integer("MaximumBatchingWindowInSeconds", 0, 0, 300)
        on_failure = self._on_failure(props)
        if not props.flag("Enabled", True):
            logger.info("%s is disabled (Enabled: false); its stream is not read", props.where)
            return None
        return DynamoDBStreamEventSource(
            self.client("dynamodbstreams"),
            stream_arn=self.stack.get_att(table, "StreamArn"),
            handler=self.invoker(function, name),
            function_name=function.name,
            event_name=name,
            timeout_seconds=function.spec.timeout,
            batch_size=batch_size,
            starting_position=starting_position,
            max_retries=max_retries,
            max_record_age_seconds=max_age,
            bisect_on_error=bisect,
            report_batch_item_failures=report,
            filter=event_filter,
            on_failure=on_failure,
            batching_window_seconds=window,
            retry_pause_seconds=self.retry_pause_seconds,
            max_retry_pause_seconds=self.max_retry_pause_seconds,
        )

    def _on_failure(self, props: _Properties) -> OnFailureDestination | None:
        """``DestinationConfig: {OnFailure: {Destination: !GetAtt Queue.Arn}}`` (or a topic's ARN)."""
        config = props.raw("DestinationConfig") or {}
        destination = config.get("OnFailure") if isinstance(config, dict) else None
        if destination is None:
            return None
        if not isinstance(destination, dict) or "Destination" not in destination:
            raise TemplateError(f"{props.where}.DestinationConfig.OnFailure needs a Destination")
        try:
            arn = self.stack.resolve(destination["Destination"])
        except TemplateError as error:
            raise TemplateError(f"{props.where}.DestinationConfig.OnFailure.Destination: {error}") from None
        return OnFailureDestination.for_arn(arn, self.client)
