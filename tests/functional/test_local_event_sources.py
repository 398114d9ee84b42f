"""The local runtime's event sources as the template declares them: every setting of an SQS or DynamoDB event
reaches its source (read back from ``runtime.sources`` after a real start, from the real template and from
edited copies), settings AWS would refuse are refused, settings not implemented are named in a warning, and
SQS sources honour FilterCriteria, FunctionResponseTypes and a BatchSize above ten against moto."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from moto import mock_aws

from local.event_sources import (
    DynamoDBStreamEventSource,
    EventFilter,
    FilterError,
    SqsEventSource,
    event_sources_from_template,
)
from local.functions import LocalFunction
from local.runtime import LocalRuntime, RuntimeConfig
from local.template import DataStack, SamTemplate, TemplateError, create_data_stack
from tests.conftest import REGION, template

Event = dict[str, Any]


def aws_client(service: Any) -> Any:
    return boto3.client(service, region_name=REGION)


class Recorder:
    """A handler keeping each event; ``answer(records)`` is what it returns (or raises)."""

    def __init__(self, answer: Any = None) -> None:
        self.events: list[Event] = []
        self._answer = answer

    def __call__(self, event: Event, context: Any) -> Any:
        self.events.append(json.loads(json.dumps(event)))
        return self._answer(event["Records"]) if callable(self._answer) else self._answer

    @property
    def bodies(self) -> list[list[str]]:
        return [[record["body"] for record in event["Records"]] for event in self.events]


class Queue:
    def __init__(self, name: str = "work") -> None:
        self.sqs = aws_client("sqs")
        self.url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]
        self.arn = attributes["QueueArn"]

    def send(self, *bodies: str, **options: Any) -> None:
        for body in bodies:
            self.sqs.send_message(QueueUrl=self.url, MessageBody=body, **options)

    def left(self) -> int:
        """Messages still in the queue, visible or not."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=names)["Attributes"]
        return sum(int(attributes[name]) for name in names)

    def source(self, handler: Any, **options: Any) -> SqsEventSource:
        return SqsEventSource(
            self.sqs,
            queue_url=self.url,
            queue_arn=self.arn,
            handler=handler,
            function_name="QueueFunction",
            timeout_seconds=10,
            retry_delay_seconds=0,
            **options,
        )


@pytest.fixture
def queue(stack: DataStack) -> Queue:
    return Queue()


# -- SQS sources against moto ------------------------------------------------------------------------------


def test_messages_no_filter_matches_are_deleted_without_an_invocation(queue: Queue) -> None:
    # GIVEN a source that only takes version-1 jobs, and a queue of jobs of both versions and plain text
    handler = Recorder()
    only_v1 = EventFilter.from_criteria({"Filters": [{"Pattern": '{"body": {"version": [1]}}'}]}, sqs=True)
    source = queue.source(handler, filter=only_v1)
    queue.send('{"version": 1, "n": 1}', '{"version": 2, "n": 2}', "not json", '{"version": 1, "n": 3}')

    # WHEN the source drains the queue
    result = source.poll_once()

    # THEN the function saw only the version-1 jobs, and the queue is empty: the rest were acknowledged
    assert handler.bodies == [['{"version": 1, "n": 1}', '{"version": 1, "n": 3}']]
    assert (result.received, result.failed, result.filtered) == (2, 0, 2)
    assert queue.left() == 0


def test_a_batch_where_no_message_matches_invokes_nothing(queue: Queue) -> None:
    handler = Recorder()
    only_v1 = EventFilter.from_criteria({"Filters": [{"Pattern": '{"body": {"version": [1]}}'}]}, sqs=True)
    queue.send('{"version": 2}')

    result = queue.source(handler, filter=only_v1).poll_once()

    assert handler.events == []
    assert (result.received, result.filtered) == (0, 1)
    assert queue.left() == 0


def failing_second(records: list[Event]) -> Event:
    return {"batchItemFailures": [{"itemIdentifier": records[1]["messageId"]}]}


def test_reported_item_failures_stay_in_the_queue_when_the_event_declares_report_batch_item_failures(
    queue: Queue,
) -> None:
    # GIVEN a source with ReportBatchItemFailures and a handler reporting the second message failed
    handler = Recorder(failing_second)
    queue.send("a", "b", "c")

    # WHEN it polls once
    result = queue.source(handler, report_batch_item_failures=True).poll_once()

    # THEN only that message is left
    assert (result.received, result.failed) == (3, 1)
    assert queue.left() == 1


def test_reported_item_failures_mean_nothing_without_report_batch_item_failures(queue: Queue) -> None:
    # GIVEN the same handler, and a source whose event does not declare ReportBatchItemFailures
    handler = Recorder(failing_second)
    queue.send("a", "b", "c")

    # WHEN it polls once
    result = queue.source(handler, report_batch_item_failures=False).poll_once()

    # THEN, as on AWS, the answer is ignored: the batch succeeded and every message was deleted
    assert (result.received, result.failed) == (3, 0)
    assert queue.left() == 0


@pytest.mark.parametrize("report", [True, False], ids=["reporting", "not reporting"])
def test_an_error_fails_the_whole_batch_either_way(queue: Queue, report: bool) -> None:
    def boom(records: list[Event]) -> None:
        raise RuntimeError("boom")

    queue.send("a", "b")

    result = queue.source(Recorder(boom), report_batch_item_failures=report).poll_once()

    assert (result.received, result.failed) == (2, 2)
    assert queue.left() == 2


def test_an_item_failure_naming_a_message_not_in_the_batch_fails_the_whole_batch(queue: Queue) -> None:
    handler = Recorder({"batchItemFailures": [{"itemIdentifier": "no-such-message"}]})
    queue.send("a", "b")

    result = queue.source(handler).poll_once()

    assert (result.received, result.failed) == (2, 2)
    assert queue.left() == 2


def test_a_batch_size_above_ten_is_gathered_over_several_receives(queue: Queue) -> None:
    # GIVEN 25 messages waiting and a source with BatchSize 25 and a batching window
    handler = Recorder()
    queue.send(*(str(n) for n in range(25)))
    source = queue.source(handler, batch_size=25, batching_window_seconds=2)
    receives: list[int] = []
    real_receive = queue.sqs.receive_message

    def counting_receive(**kwargs: Any) -> Any:
        receives.append(kwargs["MaxNumberOfMessages"])
        return real_receive(**kwargs)

    queue.sqs.receive_message = counting_receive

    # WHEN it polls once
    result = source.poll_once()

    # THEN the function got all 25 in one invocation, received ten at most at a time
    assert result.received == 25
    assert len(handler.events) == 1
    assert sorted(int(body) for body in handler.bodies[0]) == list(range(25))
    assert receives == [10, 10, 5]
    assert queue.left() == 0


def test_a_batching_window_stops_gathering_when_it_runs_out(queue: Queue) -> None:
    # GIVEN 3 messages waiting, a BatchSize of 20 and a 1 s window
    handler = Recorder()
    queue.send("a", "b", "c")

    # WHEN the source polls
    result = queue.source(handler, batch_size=20, batching_window_seconds=1).poll_once()

    # THEN after the window it invoked with what it had
    assert result.received == 3
    assert handler.bodies == [["a", "b", "c"]]


def test_message_attributes_arrive_in_lambdas_casing_with_their_digest_and_the_trace_header(queue: Queue) -> None:
    # GIVEN a message sent with string, number and binary attributes and an X-Ray trace header
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    queue.send(
        '{"reportId": "r1"}',
        MessageAttributes={
            "eventType": {"DataType": "String", "StringValue": "report.completed"},
            "attempt": {"DataType": "Number", "StringValue": "2"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
        },
        MessageSystemAttributes={"AWSTraceHeader": {"DataType": "String", "StringValue": trace}},
    )
    sent_digest = queue.sqs.receive_message(QueueUrl=queue.url, MessageAttributeNames=["All"], VisibilityTimeout=0)[
        "Messages"
    ][0]["MD5OfMessageAttributes"]
    handler = Recorder()

    # WHEN the source delivers it
    queue.source(handler).poll_once()

    # THEN the record has Lambda's attribute layout, SQS's digest of them, and the trace header
    (record,) = handler.events[0]["Records"]
    assert record["messageAttributes"] == {
        "eventType": {
            "stringValue": "report.completed",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        },
        "attempt": {"stringValue": "2", "stringListValues": [], "binaryListValues": [], "dataType": "Number"},
        "blob": {"binaryValue": "AP8=", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"},
    }
    assert record["md5OfMessageAttributes"] == sent_digest
    assert record["attributes"]["AWSTraceHeader"] == trace
    assert record["attributes"]["ApproximateReceiveCount"] == "2"  # the digest check above received it once
    # AND Powertools, as the handlers read records, finds the values
    parsed = SQSRecord(record)
    event_type = parsed.message_attributes["eventType"]
    assert event_type is not None
    assert event_type.string_value == "report.completed"
    assert parsed.attributes.aws_trace_header == trace


# -- sources built from a template ------------------------------------------------------------------------


def local_functions(sam: SamTemplate) -> dict[str, LocalFunction]:
    return {name: LocalFunction(spec) for name, spec in sam.functions().items()}


def build(sam: SamTemplate, stack: DataStack) -> list[SqsEventSource | DynamoDBStreamEventSource]:
    return event_sources_from_template(local_functions(sam), stack, aws_client, lambda function, name: Recorder())


def by_event(sources: list[Any]) -> dict[str, Any]:
    return {f"{source.function_name}.{source.event_name}": source for source in sources}


def template_events(sam: SamTemplate, kind: str) -> dict[str, dict[str, Any]]:
    return {
        f"{function}.{name}": event["Properties"]
        for function, spec in sam.functions().items()
        for name, event in spec.events.items()
        if event.get("Type") == kind
    }


def assert_sources_follow_the_template(sources: list[Any], sam: SamTemplate, stack: DataStack) -> None:
    """Each SQS and DynamoDB event of ``sam`` has a source holding the event's own settings."""
    built = by_event(sources)
    queues, streams = template_events(sam, "SQS"), template_events(sam, "DynamoDB")
    assert set(built) == set(queues) | set(streams)
    for name, props in queues.items():
        source = built[name]
        assert isinstance(source, SqsEventSource), name
        assert source.queue_arn == stack.resolve(props["Queue"]), name
        assert source.batch_size == int(props.get("BatchSize", 10)), name
        assert source.batching_window_seconds == int(props.get("MaximumBatchingWindowInSeconds", 0)), name
        assert source.report_batch_item_failures == (
            "ReportBatchItemFailures" in props.get("FunctionResponseTypes", [])
        )
        assert source.filter == EventFilter.from_criteria(props.get("FilterCriteria"), sqs=True), name
    for name, props in streams.items():
        source = built[name]
        assert isinstance(source, DynamoDBStreamEventSource), name
        assert source.stream_arn == stack.resolve(props["Stream"]), name
        assert source.batch_size == int(props.get("BatchSize", 100)), name
        assert source.starting_position == props["StartingPosition"], name
        retries = int(props.get("MaximumRetryAttempts", -1))
        assert source.max_retries == (None if retries == -1 else retries), name
        age = int(props.get("MaximumRecordAgeInSeconds", -1))
        assert source.max_record_age_seconds == (None if age == -1 else age), name
        assert source.bisect_on_error is bool(props.get("BisectBatchOnFunctionError", False)), name
        assert source.report_batch_item_failures == (
            "ReportBatchItemFailures" in props.get("FunctionResponseTypes", [])
        )
        assert source.filter == EventFilter.from_criteria(props.get("FilterCriteria")), name
        on_failure = (props.get("DestinationConfig") or {}).get("OnFailure")
        if on_failure is None:
            assert source.on_failure is None, name
        else:
            assert source.on_failure is not None, name
            assert source.on_failure.arn == stack.resolve(on_failure["Destination"]), name


def test_the_real_templates_events_each_get_a_source_with_their_settings(stack: DataStack) -> None:
    # GIVEN the real template's stack
    # WHEN its event sources are built
    sources = build(template(), stack)

    # THEN each SQS and DynamoDB event has a source with its own settings, and the stream settings the
    # auditor found ignored are there
    assert_sources_follow_the_template(sources, template(), stack)
    report_changes = by_event(sources)["NotifyFunction.ReportChanges"]
    assert report_changes.filter
    assert report_changes.bisect_on_error
    assert report_changes.max_retries is not None


def edited_template() -> SamTemplate:
    """The real template with every setting of a few events changed, an unimplemented property, a disabled
    event, an event type the runtime does not run, and a queue of its own for stream failures."""
    document = copy.deepcopy(template().document)
    resources = document["Resources"]
    resources["CopyStreamFailures"] = {"Type": "AWS::SQS::Queue", "Properties": {}}
    events = {name: resource["Properties"].get("Events") or {} for name, resource in resources.items()}
    events["NotifyFunction"]["ReportChanges"]["Properties"] = {
        "Stream": {"Fn::GetAtt": ["ReportsTable", "StreamArn"]},
        "StartingPosition": "LATEST",
        "BatchSize": 7,
        "MaximumRetryAttempts": 2,
        "MaximumRecordAgeInSeconds": 600,
        "BisectBatchOnFunctionError": False,
        "ParallelizationFactor": 2,
        "DestinationConfig": {
            "OnFailure": {"Type": "SQS", "Destination": {"Fn::GetAtt": ["CopyStreamFailures", "Arn"]}}
        },
        "FilterCriteria": {
            "Filters": [{"Pattern": '{"eventName": ["MODIFY"]}'}, {"Pattern": '{"eventName": ["REMOVE"]}'}]
        },
    }
    events["ProcessFunction"]["RenderJobs"]["Properties"] = {
        "Queue": {"Fn::GetAtt": ["JobsQueue", "Arn"]},
        "BatchSize": 25,
        "MaximumBatchingWindowInSeconds": 2,
        "FilterCriteria": {"Filters": [{"Pattern": '{"body": {"version": [1]}}'}]},
    }
    events["DeadLetterFunction"]["ExhaustedJobs"]["Properties"]["Enabled"] = False
    events["WebhookFunction"]["Nightly"] = {"Type": "Schedule", "Properties": {"Schedule": "rate(1 day)"}}
    return SamTemplate(document=document)


@pytest.fixture
def edited() -> Iterator[tuple[SamTemplate, DataStack]]:
    sam = edited_template()
    with mock_aws():
        yield sam, create_data_stack(boto3.Session(region_name=REGION), sam)


def test_an_edited_templates_settings_reach_its_sources_and_unimplemented_ones_are_named(
    edited: tuple[SamTemplate, DataStack], caplog: pytest.LogCaptureFixture
) -> None:
    sam, stack = edited

    # WHEN its event sources are built
    with caplog.at_level(logging.WARNING, logger="local.event_sources"):
        sources = build(sam, stack)

    # THEN the changed settings are there, the disabled event has no source, and warnings name what is ignored
    built = by_event(sources)
    assert "DeadLetterFunction.ExhaustedJobs" not in built
    jobs = built["ProcessFunction.RenderJobs"]
    assert (jobs.batch_size, jobs.batching_window_seconds, jobs.report_batch_item_failures) == (25, 2, False)
    assert jobs.filter.patterns == ({"body": {"version": [1]}},)
    changes = built["NotifyFunction.ReportChanges"]
    assert (changes.starting_position, changes.batch_size, changes.max_retries) == ("LATEST", 7, 2)
    assert (changes.max_record_age_seconds, changes.bisect_on_error) == (600, False)
    assert changes.report_batch_item_failures is False
    assert changes.filter.patterns == ({"eventName": ["MODIFY"]}, {"eventName": ["REMOVE"]})
    assert changes.on_failure.arn == stack.get_att("CopyStreamFailures", "Arn")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("NotifyFunction.Events.ReportChanges.ParallelizationFactor is not implemented" in w for w in warnings)
    assert any("WebhookFunction.Events.Nightly: events of type Schedule" in w for w in warnings)
    enabled = copy.deepcopy(sam)
    enabled.document["Resources"]["DeadLetterFunction"]["Properties"]["Events"]["ExhaustedJobs"]["Properties"].pop(
        "Enabled"
    )
    assert_sources_follow_the_template(build(enabled, stack), enabled, stack)


def test_the_real_template_starts_no_warnings_about_its_event_sources(
    stack: DataStack, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="local.event_sources"):
        build(template(), stack)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def edit_event(sam: SamTemplate, function: str, event: str, **props: Any) -> SamTemplate:
    document = copy.deepcopy(sam.document)
    document["Resources"][function]["Properties"]["Events"][event]["Properties"].update(props)
    return SamTemplate(document=document)


@pytest.mark.parametrize(
    ("function", "event", "props", "says"),
    [
        ("ProcessFunction", "RenderJobs", {"BatchSize": 25}, "needs MaximumBatchingWindowInSeconds"),
        ("ProcessFunction", "RenderJobs", {"BatchSize": 0}, "RenderJobs.BatchSize must be 1 to 10000"),
        ("ProcessFunction", "RenderJobs", {"FunctionResponseTypes": ["Partial"]}, "FunctionResponseTypes"),
        (
            "ProcessFunction",
            "RenderJobs",
            {"FilterCriteria": {"Filters": [{"Pattern": '{"body": "x"}'}]}},
            "RenderJobs.FilterCriteria.Filters[0].Pattern.body",
        ),
        ("NotifyFunction", "ReportChanges", {"StartingPosition": "AT_TIMESTAMP"}, "StartingPosition"),
        ("NotifyFunction", "ReportChanges", {"MaximumRecordAgeInSeconds": 10}, "MaximumRecordAgeInSeconds"),
        ("NotifyFunction", "ReportChanges", {"MaximumRetryAttempts": -2}, "MaximumRetryAttempts"),
        ("NotifyFunction", "ReportChanges", {"BisectBatchOnFunctionError": "maybe"}, "BisectBatchOnFunctionError"),
        (
            "NotifyFunction",
            "ReportChanges",
            {"DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": ["NoSuchQueue", "Arn"]}}}},
            "OnFailure.Destination",
        ),
    ],
)
def test_a_setting_aws_would_refuse_is_refused_naming_the_event_and_property(
    stack: DataStack, function: str, event: str, props: dict[str, Any], says: str
) -> None:
    sam = edit_event(template(), function, event, **props)
    with pytest.raises(TemplateError) as raised:
        build(sam, stack)
    assert says in str(raised.value)
    assert f"{function}.Events.{event}" in str(raised.value)
    if "FilterCriteria" in props:
        assert isinstance(raised.value, FilterError)


# -- the running runtime ------------------------------------------------------------------------------------


def runtime_config(template_path: Path | None = None) -> RuntimeConfig:
    options: dict[str, Any] = {"template_path": template_path} if template_path else {}
    return RuntimeConfig(api_port=0, ws_port=0, web_dir=None, **options)


def test_the_started_runtime_polls_a_source_per_template_event_with_its_settings() -> None:
    # WHEN the runtime starts from the real template
    with LocalRuntime(runtime_config()) as runtime:
        assert runtime.stack is not None
        # THEN runtime.sources holds one source per SQS and DynamoDB event, each with its settings
        assert_sources_follow_the_template(runtime.sources, template(), runtime.stack)
        running = {thread.name for thread in runtime._threads}
        for source in runtime.sources:
            kind = "sqs" if isinstance(source, SqsEventSource) else "stream"
            assert f"{kind}-{source.function_name}-{source.event_name}" in running


def test_the_started_runtime_builds_its_sources_from_the_template_it_is_given(tmp_path: Path) -> None:
    # GIVEN an edited copy of the template
    sam = edited_template()
    path = tmp_path / "template.yaml"
    path.write_text(json.dumps(sam.document))  # JSON is YAML; the intrinsics are in their long form

    # WHEN the runtime starts from it
    with LocalRuntime(runtime_config(path)) as runtime:
        assert runtime.stack is not None
        # THEN its sources carry the copy's settings, not the real template's
        assert_sources_follow_the_template(runtime.sources, edit_without_disabled(sam), runtime.stack)
        changes = by_event(runtime.sources)["NotifyFunction.ReportChanges"]
        assert (changes.batch_size, changes.max_retries, changes.starting_position) == (7, 2, "LATEST")


def edit_without_disabled(sam: SamTemplate) -> SamTemplate:
    """``sam`` without its disabled event (which has no source)."""
    document = copy.deepcopy(sam.document)
    del document["Resources"]["DeadLetterFunction"]["Properties"]["Events"]["ExhaustedJobs"]
    return SamTemplate(document=document)
