"""DynamoDBStreamEventSource against moto's stream of the Reports table (NEW_AND_OLD_IMAGES): records in
write order, Lambda's starting positions, and its retry rules for stream batches."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from local.event_sources import DynamoDBStreamEventSource, EventFilter, OnFailureDestination
from local.template import DataStack
from tests.conftest import REGION
from tests.sam_events import generate_event

Event = dict[str, Any]
Behaviour = Callable[[int, list[Event]], Any]


class RecordingHandler:
    """A plain handler that keeps every event it is given; ``behaviour(call, records)`` decides the answer."""

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.events: list[Event] = []
        self._behaviour = behaviour

    def __call__(self, event: Event, context: Any) -> Any:
        self.events.append(json.loads(json.dumps(event)))  # a copy, and proof the event is plain JSON
        if self._behaviour is None:
            return None
        return self._behaviour(len(self.events), event["Records"])

    @property
    def batches(self) -> list[list[str]]:
        """Each call's records as the ids of the items they are about."""
        return [[record["dynamodb"]["Keys"]["id"]["S"] for record in event["Records"]] for event in self.events]

    @property
    def records(self) -> list[Event]:
        return [record for event in self.events for record in event["Records"]]


class ReportsTable:
    def __init__(self, stack: DataStack) -> None:
        self.name = stack.ref("ReportsTable")
        self.stream_arn = stack.get_att("ReportsTable", "StreamArn")
        self._dynamodb = boto3.client("dynamodb", region_name=REGION)

    def put(self, item_id: str, **values: str) -> None:
        item = {"id": {"S": item_id}} | {name: {"S": value} for name, value in values.items()}
        self._dynamodb.put_item(TableName=self.name, Item=item)

    def delete(self, item_id: str) -> None:
        self._dynamodb.delete_item(TableName=self.name, Key={"id": {"S": item_id}})


@pytest.fixture
def table(stack: DataStack) -> ReportsTable:
    return ReportsTable(stack)


def stream_source(
    table: ReportsTable, handler: RecordingHandler, *, starting_position: str = "TRIM_HORIZON", **options: Any
) -> DynamoDBStreamEventSource:
    return DynamoDBStreamEventSource(
        boto3.client("dynamodbstreams", region_name=REGION),
        stream_arn=table.stream_arn,
        handler=handler,
        function_name="StreamFunction",
        timeout_seconds=10,
        starting_position=starting_position,
        **options,
    )


def test_records_arrive_in_write_order_with_both_images_the_event_source_and_the_stream_arn(
    table: ReportsTable,
) -> None:
    # GIVEN a report written, changed and deleted, then another written
    table.put("r1", status="QUEUED")
    table.put("r1", status="RUNNING")
    table.delete("r1")
    table.put("r2", status="QUEUED")
    handler = RecordingHandler()

    # WHEN the stream is polled from its beginning
    result = stream_source(table, handler).poll_once()

    # THEN one batch holds the four changes in write order, shaped as Lambda delivers them
    assert (result.received, result.failed) == (4, 0)
    records = handler.records
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE", "INSERT"]
    assert [r["dynamodb"]["Keys"] for r in records] == [{"id": {"S": key}} for key in ("r1", "r1", "r1", "r2")]
    sequence_numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert sequence_numbers == sorted(set(sequence_numbers))
    insert, modify, remove, _ = (r["dynamodb"] for r in records)
    assert insert["NewImage"]["status"] == {"S": "QUEUED"}
    assert "OldImage" not in insert
    assert modify["OldImage"]["status"] == {"S": "QUEUED"}
    assert modify["NewImage"]["status"] == {"S": "RUNNING"}
    assert remove["OldImage"]["status"] == {"S": "RUNNING"}
    assert "NewImage" not in remove
    for record in records:
        assert record["eventSource"] == "aws:dynamodb"
        assert record["eventSourceARN"] == table.stream_arn
        assert record["awsRegion"] == REGION
        assert record["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int)


def test_trim_horizon_delivers_what_was_written_before_the_first_poll_and_latest_only_what_came_after(
    table: ReportsTable,
) -> None:
    # GIVEN a change made before either source first polls
    table.put("before")
    from_start, from_now = RecordingHandler(), RecordingHandler()
    trim_horizon = stream_source(table, from_start, starting_position="TRIM_HORIZON")
    latest = stream_source(table, from_now, starting_position="LATEST")

    # WHEN both poll, another change is made, and both poll again
    trim_horizon.poll_once()
    latest.poll_once()
    table.put("after")
    trim_horizon.poll_once()
    latest.poll_once()

    # THEN TRIM_HORIZON saw both changes, LATEST only the one made after it started reading
    assert from_start.batches == [["before"], ["after"]]
    assert from_now.batches == [["after"]]


def test_a_batch_whose_handler_raised_is_delivered_again_and_nothing_is_lost_or_duplicated(
    table: ReportsTable, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a handler that raises on its first call only, and three changes
    def raise_once(call: int, records: list[Event]) -> None:
        if call == 1:
            raise RuntimeError("transient failure")

    handler = RecordingHandler(raise_once)
    source = stream_source(table, handler)
    for key in ("a", "b", "c"):
        table.put(key)

    # WHEN the source polls, polls again, a fourth change is made, and it polls until idle
    first = source.poll_once()
    second = source.poll_once()
    table.put("d")
    third = source.poll_once()
    idle = source.poll_once()

    # THEN the failed batch came again whole (same sequence numbers), then only the new change, once
    assert (first.received, first.failed) == (3, 3)
    assert (second.received, second.failed) == (3, 0)
    assert (third.received, third.failed) == (1, 0)
    assert idle.received == 0
    assert handler.batches == [["a", "b", "c"], ["a", "b", "c"], ["d"]]
    first_sequence = [r["dynamodb"]["SequenceNumber"] for r in handler.events[0]["Records"]]
    assert [r["dynamodb"]["SequenceNumber"] for r in handler.events[1]["Records"]] == first_sequence
    assert "StreamFunction failed on 3 stream records" in caplog.text


def test_a_batch_item_failure_redelivers_from_that_record_on_and_not_the_records_before_it(
    table: ReportsTable,
) -> None:
    # GIVEN a handler that reports the 2nd record of its first batch as failed, then succeeds
    def second_fails_once(call: int, records: list[Event]) -> dict[str, Any]:
        if call == 1:
            return {"batchItemFailures": [{"itemIdentifier": records[1]["dynamodb"]["SequenceNumber"]}]}
        return {"batchItemFailures": []}

    handler = RecordingHandler(second_fails_once)
    source = stream_source(table, handler)
    for key in ("r1", "r2", "r3", "r4"):
        table.put(key)

    # WHEN the source polls until it is idle
    first = source.poll_once()
    second = source.poll_once()
    idle = source.poll_once()

    # THEN records 2..4 came again, record 1 did not, and nothing came a third time
    assert (first.received, first.failed) == (4, 3)
    assert (second.received, second.failed) == (3, 0)
    assert idle.received == 0
    assert handler.batches == [["r1", "r2", "r3", "r4"], ["r2", "r3", "r4"]]


def test_a_batch_that_always_fails_is_dropped_after_max_retries_with_an_error_logged_and_later_records_flow(
    table: ReportsTable, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a handler that always fails on the poison records, and two of them in the stream
    def poison(call: int, records: list[Event]) -> None:
        if any(r["dynamodb"]["Keys"]["id"]["S"].startswith("poison") for r in records):
            raise ValueError("cannot handle poison")

    handler = RecordingHandler(poison)
    source = stream_source(table, handler, max_retries=2)
    table.put("poison-1")
    table.put("poison-2")

    # WHEN the source polls more often than it may retry, then a good record arrives and it polls again
    with caplog.at_level(logging.ERROR, logger="local.event_sources"):
        results = [source.poll_once() for _ in range(4)]
    table.put("good")
    after = source.poll_once()

    # THEN the poison batch was tried once and retried twice, dropped with an error, and the good record flowed
    assert [(r.received, r.failed) for r in results] == [(2, 2), (2, 2), (2, 2), (0, 0)]
    assert handler.batches == [["poison-1", "poison-2"]] * 3 + [["good"]]
    assert (after.received, after.failed) == (1, 0)
    dropped = [r for r in caplog.records if r.levelno == logging.ERROR and "dropping" in r.getMessage()]
    assert [r.getMessage() for r in dropped] == ["StreamFunction: dropping 2 stream records after 2 retries"]


# Keys of `sam local generate-event dynamodb update` our records may lack because moto does not supply
# them. None: moto 5.2 gives every record key but eventSourceARN (which the event source adds from the
# stream ARN), and every key of `dynamodb`.
MOTO_DOES_NOT_SUPPLY: frozenset[str] = frozenset()


def test_records_have_every_key_of_sam_generate_event_dynamodb_update(table: ReportsTable) -> None:
    # GIVEN sam's sample stream records (an INSERT, a MODIFY, a REMOVE) and the same three changes in moto
    generated = {record["eventName"]: record for record in generate_event("dynamodb", "update")["Records"]}
    table.put("r1", status="QUEUED")
    table.put("r1", status="RUNNING")
    table.delete("r1")
    handler = RecordingHandler()

    # WHEN the source delivers them
    stream_source(table, handler).poll_once()

    # THEN each of our records has every key sam's record of that kind has, at the top and in `dynamodb`
    ours = {record["eventName"]: record for record in handler.records}
    assert set(ours) == set(generated) == {"INSERT", "MODIFY", "REMOVE"}
    for name, sample in generated.items():
        record = ours[name]
        assert set(sample) - MOTO_DOES_NOT_SUPPLY <= set(record), name
        assert set(sample["dynamodb"]) - MOTO_DOES_NOT_SUPPLY <= set(record["dynamodb"]), name
        for key, value in sample["dynamodb"].items():
            assert type(record["dynamodb"][key]) is type(value), f"{name} dynamodb.{key}"


@pytest.mark.parametrize(
    "response",
    [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}],
    ids=["null response", "empty response", "empty list", "null list"],
)
def test_a_response_lambda_counts_as_complete_success_moves_the_stream_on(
    table: ReportsTable, response: dict[str, Any] | None
) -> None:
    # GIVEN a handler answering with one of the responses Lambda documents as a complete success
    handler = RecordingHandler(lambda call, records: response)
    source = stream_source(table, handler)
    table.put("r1")

    # WHEN the source polls twice
    first = source.poll_once()
    second = source.poll_once()

    # THEN the batch succeeded once and was not delivered again
    assert (first.received, first.failed) == (1, 0)
    assert second.received == 0
    assert handler.batches == [["r1"]]


@pytest.mark.parametrize(
    "failure",
    [{"itemIdentifier": ""}, {"itemIdentifier": None}, {"sequenceNumber": "1"}],
    ids=["empty itemIdentifier", "null itemIdentifier", "bad key name"],
)
def test_a_malformed_batch_item_failure_fails_the_whole_batch_and_counts_against_max_retries(
    table: ReportsTable, failure: dict[str, Any]
) -> None:
    # GIVEN a handler always answering with a batch item failure Lambda documents as a complete failure
    handler = RecordingHandler(lambda call, records: {"batchItemFailures": [failure]})
    source = stream_source(table, handler, max_retries=1)
    table.put("r1")
    table.put("r2")

    # WHEN the source polls three times
    results = [source.poll_once() for _ in range(3)]

    # THEN the whole batch failed, was retried once, and was then dropped
    assert [(r.received, r.failed) for r in results] == [(2, 2), (2, 2), (0, 0)]
    assert handler.batches == [["r1", "r2"], ["r1", "r2"]]


# -- the settings a template's DynamoDB event gives its source ---------------------------------------------


class FakeClock:
    """Wall-clock time the test moves on by hand (record ages, retry pauses, batching windows)."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))  # whole seconds, so the steps below add up exactly

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def aws_client(service: Any) -> Any:
    return boto3.client(service, region_name=REGION)


class FailuresQueue:
    """An SQS queue standing in for DestinationConfig.OnFailure."""

    def __init__(self) -> None:
        self._sqs = boto3.client("sqs", region_name=REGION)
        self.url = self._sqs.create_queue(QueueName="stream-failures")["QueueUrl"]
        self.arn = self._sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.destination = OnFailureDestination.for_arn(self.arn, aws_client)

    def records(self) -> list[Event]:
        answer = self._sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10)
        return [json.loads(message["Body"]) for message in answer.get("Messages", [])]


@pytest.fixture
def failures(stack: DataStack) -> FailuresQueue:
    return FailuresQueue()


def raise_on_poison(call: int, records: list[Event]) -> None:
    if any(r["dynamodb"]["Keys"]["id"]["S"].startswith("poison") for r in records):
        raise ValueError("cannot handle poison")


def test_records_no_filter_matches_are_passed_over_without_an_invocation(table: ReportsTable) -> None:
    # GIVEN a source filtering on the new image, as the template's ReportChanges does
    handler = RecordingHandler()
    only_reports = EventFilter.from_criteria(
        {"Filters": [{"Pattern": '{"dynamodb": {"NewImage": {"entity": {"S": ["report"]}}}}'}]}
    )
    source = stream_source(table, handler, filter=only_reports)
    table.put("r1", entity="report")
    table.put("w1", entity="watch")
    table.delete("r1")  # a REMOVE has no NewImage
    table.put("r2", entity="report")

    # WHEN the source polls until idle
    first = source.poll_once()
    idle = source.poll_once()

    # THEN only the two report records reached the function, the others were passed over and not read again
    assert handler.batches == [["r1", "r2"]]
    assert (first.received, first.filtered) == (2, 2)
    assert (idle.received, idle.filtered) == (0, 0)


def test_a_batch_where_nothing_matches_invokes_nothing_and_the_shard_moves_on(table: ReportsTable) -> None:
    # GIVEN a filter only INSERTs of kind=watch pass, and a stream of other changes then one watch
    handler = RecordingHandler()
    new_watchers = EventFilter.from_criteria(
        {"Filters": [{"Pattern": '{"eventName": ["INSERT"], "dynamodb": {"NewImage": {"kind": {"S": ["watch"]}}}}'}]}
    )
    source = stream_source(table, handler, filter=new_watchers)
    table.put("a", kind="report")
    table.put("a", kind="watch")  # a MODIFY, not an INSERT

    # WHEN the source polls, a watch is inserted, and it polls again
    nothing = source.poll_once()
    table.put("b", kind="watch")
    one = source.poll_once()

    # THEN the first poll invoked nothing, and the later INSERT arrived alone
    assert (nothing.received, nothing.filtered) == (0, 2)
    assert handler.batches == [["b"]]
    assert one.received == 1


def test_bisect_on_error_isolates_a_poison_record_so_the_good_records_beside_it_are_handled(
    table: ReportsTable, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a handler that raises on any batch holding the poison record, among good ones
    handler = RecordingHandler(raise_on_poison)
    source = stream_source(table, handler, bisect_on_error=True, max_retries=1)
    for key in ("g1", "poison", "g2", "g3"):
        table.put(key)

    # WHEN the source polls until idle
    with caplog.at_level(logging.ERROR, logger="local.event_sources"):
        for _ in range(10):
            source.poll_once()

    # THEN the batch was halved until the poison stood alone; every good record was handled once, in order,
    # and only the poison record was given up on after its retry
    assert handler.batches == [
        ["g1", "poison", "g2", "g3"],
        ["g1", "poison"],
        ["g1"],
        ["poison"],
        ["poison"],
        ["g2", "g3"],
    ]
    dropped = [r.getMessage() for r in caplog.records if "dropping" in r.getMessage()]
    assert dropped == ["StreamFunction: dropping 1 stream records after 1 retries"]


def test_without_bisect_a_poison_record_takes_the_whole_batch_down_with_it(table: ReportsTable) -> None:
    # GIVEN the same records and handler, without BisectBatchOnFunctionError
    handler = RecordingHandler(raise_on_poison)
    source = stream_source(table, handler, max_retries=1)
    for key in ("g1", "poison", "g2", "g3"):
        table.put(key)

    # WHEN the source polls until idle
    for _ in range(5):
        source.poll_once()

    # THEN the whole batch was tried twice and dropped: no good record was handled
    assert handler.batches == [["g1", "poison", "g2", "g3"]] * 2


def test_splitting_a_batch_does_not_use_up_its_retries(table: ReportsTable) -> None:
    # GIVEN no retries at all, bisection on, and a poison record at the end of a batch of four
    handler = RecordingHandler(raise_on_poison)
    source = stream_source(table, handler, bisect_on_error=True, max_retries=0)
    for key in ("g1", "g2", "g3", "poison"):
        table.put(key)

    # WHEN the source polls until idle
    for _ in range(10):
        source.poll_once()

    # THEN the splits were free: the poison record alone failed once and was dropped, the rest were handled
    assert handler.batches == [["g1", "g2", "g3", "poison"], ["g1", "g2"], ["g3", "poison"], ["g3"], ["poison"]]


def test_batch_item_failures_are_ignored_unless_the_event_reports_them(table: ReportsTable) -> None:
    # GIVEN a handler that reports its first record failed, and a source without ReportBatchItemFailures
    def first_failed(call: int, records: list[Event]) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": records[0]["dynamodb"]["SequenceNumber"]}]}

    handler = RecordingHandler(first_failed)
    source = stream_source(table, handler, report_batch_item_failures=False)
    table.put("r1")
    table.put("r2")

    # WHEN the source polls twice
    first = source.poll_once()
    second = source.poll_once()

    # THEN Lambda's rule held: the answer is not read, the invocation succeeded, nothing came again
    assert (first.received, first.failed) == (2, 0)
    assert second.received == 0
    assert handler.batches == [["r1", "r2"]]


def test_without_report_batch_item_failures_an_error_still_fails_the_whole_batch(table: ReportsTable) -> None:
    # GIVEN a source without ReportBatchItemFailures and a handler raising once
    def raise_once(call: int, records: list[Event]) -> None:
        if call == 1:
            raise RuntimeError("transient failure")

    handler = RecordingHandler(raise_once)
    source = stream_source(table, handler, report_batch_item_failures=False)
    table.put("r1")

    # WHEN the source polls twice
    results = [source.poll_once() for _ in range(2)]

    # THEN the batch failed and came again
    assert [(r.received, r.failed) for r in results] == [(1, 1), (1, 0)]


def test_a_batch_out_of_retries_goes_to_the_on_failure_destination_as_lambdas_invocation_record(
    table: ReportsTable, failures: FailuresQueue
) -> None:
    # GIVEN a handler failing on the poison records, two retries, and an SQS on-failure destination
    handler = RecordingHandler(raise_on_poison)
    source = stream_source(table, handler, max_retries=2, on_failure=failures.destination)
    table.put("poison-1")
    table.put("poison-2")

    # WHEN the source polls past its retries
    for _ in range(4):
        source.poll_once()

    # THEN the queue holds one invocation record naming the two records, the shard and the stream
    sequence_numbers = [r["dynamodb"]["SequenceNumber"] for r in handler.events[0]["Records"]]
    (record,) = failures.records()
    assert record["version"] == "1.0"
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestContext"]["functionArn"].endswith(":function:StreamFunction")
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    info = record["DDBStreamBatchInfo"]
    assert info["startSequenceNumber"] == sequence_numbers[0]
    assert info["endSequenceNumber"] == sequence_numbers[-1]
    assert info["batchSize"] == 2
    assert info["streamArn"] == table.stream_arn
    assert info["shardId"].startswith("shardId-")
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")
    assert len(handler.events) == 3


def test_records_older_than_the_maximum_age_are_given_up_on_and_sent_to_the_destination(
    table: ReportsTable, failures: FailuresQueue
) -> None:
    # GIVEN a source whose records may be at most 60 s old, retrying forever, and a record that always fails
    clock = FakeClock()
    handler = RecordingHandler(raise_on_poison)
    source = stream_source(
        table, handler, max_retries=None, max_record_age_seconds=60, on_failure=failures.destination, clock=clock
    )
    table.put("poison")

    # WHEN it fails twice, then a minute passes and the source polls again
    source.poll_once()
    source.poll_once()
    clock.advance(120)
    late = source.poll_once()

    # THEN the record was not delivered again but given up on for its age
    assert handler.batches == [["poison"], ["poison"]]
    assert late.received == 0
    (record,) = failures.records()
    assert record["requestContext"]["condition"] == "RecordAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["DDBStreamBatchInfo"]["batchSize"] == 1


def test_minus_one_retry_attempts_retries_until_the_record_is_too_old(table: ReportsTable) -> None:
    # GIVEN MaximumRetryAttempts -1 (Lambda's default: no limit)
    handler = RecordingHandler(raise_on_poison)
    source = stream_source(table, handler, max_retries=-1)
    table.put("poison")

    # WHEN the source polls many times
    for _ in range(8):
        source.poll_once()

    # THEN it is still retrying
    assert handler.batches == [["poison"]] * 8


def test_a_failed_batch_is_retried_after_a_pause_that_grows(table: ReportsTable) -> None:
    # GIVEN a source pausing 1 s before a first retry, doubling up to 3 s
    clock = FakeClock()
    handler = RecordingHandler(raise_on_poison)
    source = stream_source(
        table, handler, max_retries=10, retry_pause_seconds=1, max_retry_pause_seconds=3, clock=clock
    )
    table.put("poison")

    # WHEN it fails, and the source polls at once and at intervals
    def invocations_after(seconds: float) -> int:
        clock.advance(seconds)
        source.poll_once()
        return len(handler.events)

    source.poll_once()
    seen = [invocations_after(0), invocations_after(0.5), invocations_after(0.5)]
    seen += [invocations_after(1.5), invocations_after(0.5), invocations_after(2.5), invocations_after(0.5)]
    seen += [invocations_after(2.5), invocations_after(0.5)]

    # THEN no retry came before its pause (1 s, then 2 s, then at most 3 s) had passed
    assert seen == [1, 1, 2, 2, 3, 3, 4, 4, 5]


def test_a_batching_window_waits_for_more_records_before_invoking(table: ReportsTable) -> None:
    # GIVEN a 5 s batching window and a batch size of 3
    clock = FakeClock()
    handler = RecordingHandler()
    source = stream_source(table, handler, batch_size=3, batching_window_seconds=5, clock=clock)
    table.put("r1")

    # WHEN the source polls at once, after another record, after the window, and when a batch fills
    source.poll_once()
    table.put("r2")
    clock.advance(2)
    source.poll_once()
    before = list(handler.batches)
    clock.advance(3)
    source.poll_once()
    for key in ("r3", "r4", "r5"):
        table.put(key)
    source.poll_once()
    source.poll_once()

    # THEN nothing was invoked inside the window; then the two waiting records; then a full batch at once
    assert before == []
    assert handler.batches == [["r1", "r2"], ["r3", "r4", "r5"]]
