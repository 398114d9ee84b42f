"""Lambda event filtering as the local event sources apply it: the comparison operators Lambda documents,
nested keys into a stream record's images, an SQS body matched as JSON, the template's own patterns, and
refusing patterns Lambda would refuse. No AWS: records are built as the event sources build them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local.event_sources import EventFilter, FilterError, pattern_matches
from local.events import ACCOUNT_ID, sqs_event
from tests.conftest import template

QUEUE_ARN = f"arn:aws:sqs:us-east-1:{ACCOUNT_ID}:async-reports-JobsQueue"


def stream_record(event_name: str = "INSERT", **new_image: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB stream record as Lambda delivers it (``new_image``: attribute -> typed value)."""
    dynamodb: dict[str, Any] = {
        "ApproximateCreationDateTime": 1609502400,
        "Keys": {"id": {"S": "r1"}},
        "SequenceNumber": "100",
        "SizeBytes": 40,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if new_image:
        dynamodb["NewImage"] = {"id": {"S": "r1"}} | new_image
    return {"eventName": event_name, "eventSource": "aws:dynamodb", "dynamodb": dynamodb}


def sqs_record(body: str) -> dict[str, Any]:
    message = {"MessageId": "m1", "ReceiptHandle": "h1", "Body": body}
    record: dict[str, Any] = sqs_event([message], queue_arn=QUEUE_ARN)["Records"][0]
    return record


def stream_filter(*patterns: Any) -> EventFilter:
    return EventFilter.from_criteria({"Filters": [{"Pattern": json.dumps(p)} for p in patterns]})


def sqs_filter(*patterns: Any) -> EventFilter:
    return EventFilter.from_criteria({"Filters": [{"Pattern": json.dumps(p)} for p in patterns]}, sqs=True)


EVENT = {
    "name": "Alice",
    "region": "us-east-1",
    "file": "report.pdf",
    "price": 15,
    "weight": 2.5,
    "state": "running",
    "nothing": None,
    "empty": "",
    "done": True,
    "tags": ["red", "green"],
    "detail": {"kind": "watch", "depth": {"level": 3}},
}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({"name": ["Alice"]}, True),
        ({"name": ["alice"]}, False),  # exact, character by character
        ({"name": ["Bob", "Alice"]}, True),  # or, within one key
        ({"name": ["Alice"], "state": ["running"]}, True),  # and, across keys
        ({"name": ["Alice"], "state": ["stopped"]}, False),
        ({"nothing": [None]}, True),
        ({"name": [None]}, False),
        ({"empty": [""]}, True),
        ({"done": [True]}, True),
        ({"done": ["true"]}, False),
        ({"price": [15]}, True),
        ({"price": ["15"]}, False),  # a number is not its string
        ({"region": [{"prefix": "us-"}]}, True),
        ({"region": [{"prefix": "eu-"}]}, False),
        ({"file": [{"suffix": ".pdf"}]}, True),
        ({"name": [{"equals-ignore-case": "ALICE"}]}, True),
        ({"region": [{"prefix": {"equals-ignore-case": "US-"}}]}, True),
        ({"file": [{"wildcard": "rep*.pdf"}]}, True),
        ({"name": [{"exists": True}]}, True),
        ({"missing": [{"exists": True}]}, False),
        ({"missing": [{"exists": False}]}, True),
        ({"name": [{"exists": False}]}, False),
        ({"state": [{"anything-but": ["stopped", "failed"]}]}, True),
        ({"state": [{"anything-but": "running"}]}, False),
        ({"missing": [{"anything-but": "running"}]}, False),  # anything-but needs the key
        ({"region": [{"anything-but": {"prefix": "eu-"}}]}, True),
        ({"region": [{"anything-but": {"prefix": "us-"}}]}, False),
        ({"price": [{"anything-but": [15]}]}, False),
        ({"price": [{"numeric": ["=", 15]}]}, True),
        ({"price": [{"numeric": [">", 10, "<=", 20]}]}, True),
        ({"price": [{"numeric": [">", 15]}]}, False),
        ({"weight": [{"numeric": [">=", 2.5, "<", 3]}]}, True),
        ({"name": [{"numeric": [">", 0]}]}, False),  # numeric only matches numbers
        ({"tags": ["green"]}, True),  # an array in the record matches when any element does
        ({"tags": ["blue"]}, False),
        ({"detail": {"kind": ["watch"]}}, True),
        ({"detail": {"depth": {"level": [{"numeric": [">", 2]}]}}}, True),
        ({"detail": {"kind": ["report"]}}, False),
        ({"detail": {"missing": [{"exists": False}]}}, True),
        ({"absent": {"kind": ["watch"]}}, False),
        ({"$or": [{"name": ["Bob"]}, {"price": [15]}]}, True),
        ({"$or": [{"name": ["Bob"]}, {"price": [16]}]}, False),
    ],
)
def test_each_lambda_comparison_operator_matches_as_lambda_documents_it(
    pattern: dict[str, Any], expected: bool
) -> None:
    # GIVEN a valid pattern
    EventFilter.from_criteria({"Filters": [{"Pattern": json.dumps(pattern)}]})

    # WHEN it is matched against the event
    # THEN it matches exactly when Lambda would
    assert pattern_matches(pattern, EVENT) is expected


def test_a_nested_key_reaches_into_a_stream_records_new_image() -> None:
    # GIVEN a filter on dynamodb.NewImage.entity.S
    only_reports = stream_filter({"dynamodb": {"NewImage": {"entity": {"S": ["report"]}}}})

    # WHEN records of a report, of another entity, and a removal (no NewImage) are matched
    report = stream_record(entity={"S": "report"})
    other = stream_record(entity={"S": "watch"})
    removal = stream_record("REMOVE")

    # THEN only the report's record passes
    assert [only_reports.matches(r) for r in (report, other, removal)] == [True, False, False]


def test_a_record_matching_any_one_of_several_filters_passes() -> None:
    # GIVEN two filters
    either = stream_filter({"eventName": ["REMOVE"]}, {"dynamodb": {"NewImage": {"kind": {"S": ["watch"]}}}})

    # THEN a record matching either passes, and one matching neither does not
    assert either.matches(stream_record("REMOVE"))
    assert either.matches(stream_record(kind={"S": "watch"}))
    assert not either.matches(stream_record(kind={"S": "report"}))


def test_no_filter_criteria_lets_every_record_through() -> None:
    assert EventFilter.from_criteria(None).matches(stream_record())
    assert EventFilter.from_criteria({}).matches(stream_record())
    assert not EventFilter.from_criteria(None)


def test_the_templates_own_stream_filters_pick_the_records_their_functions_expect() -> None:
    # GIVEN every DynamoDB event of the template that declares a filter
    filtered = {
        f"{function}.{name}": EventFilter.from_criteria(event["Properties"]["FilterCriteria"])
        for function, spec in template().functions().items()
        for name, event in spec.events.items()
        if event.get("Type") == "DynamoDB" and "FilterCriteria" in event.get("Properties", {})
    }
    assert "NotifyFunction.ReportChanges" in filtered
    assert "NotifyFunction.NewWatchers" in filtered

    # WHEN records of a report, a new watch and a watch's removal are matched
    report_changed = stream_record("MODIFY", entity={"S": "report"}, status={"S": "RUNNING"})
    watch_added = stream_record("INSERT", kind={"S": "watch"})
    watch_removed = stream_record("REMOVE")

    # THEN report changes reach ReportChanges, new watchers NewWatchers, and removals neither
    report_changes, new_watchers = filtered["NotifyFunction.ReportChanges"], filtered["NotifyFunction.NewWatchers"]
    assert [report_changes.matches(r) for r in (report_changed, watch_added, watch_removed)] == [True, False, False]
    assert [new_watchers.matches(r) for r in (report_changed, watch_added, watch_removed)] == [False, True, False]


def test_an_sqs_body_is_matched_as_json_under_body() -> None:
    # GIVEN a filter on a field of the JSON body
    only_v1 = sqs_filter({"body": {"version": [1], "kind": [{"prefix": "coffee"}]}})

    # THEN a body with those values passes and one without does not
    assert only_v1.matches(sqs_record('{"version": 1, "kind": "coffee-sales"}'))
    assert not only_v1.matches(sqs_record('{"version": 2, "kind": "coffee-sales"}'))


@pytest.mark.parametrize(
    ("body", "pattern", "expected"),
    [
        ("plain text", {"body": [{"prefix": "plain"}]}, True),  # plain string and plain-string rule
        ('{"a": 1}', {"body": {"a": [1]}}, True),  # JSON and JSON rule
        ("plain text", {"body": {"a": [1]}}, False),  # plain string, JSON rule: dropped
        ('{"a": 1}', {"body": [{"prefix": "{"}]}, False),  # JSON, plain-string rule: dropped
        ("plain text", {"messageId": ["m1"]}, True),  # no rule on body: metadata only
        ('{"a": 1}', {"messageId": ["m1"]}, True),
    ],
    ids=["plain/plain", "json/json", "plain/json", "json/plain", "plain/none", "json/none"],
)
def test_an_sqs_body_whose_format_differs_from_its_rule_is_dropped_as_lambda_does(
    body: str, pattern: dict[str, Any], expected: bool
) -> None:
    assert sqs_filter(pattern).matches(sqs_record(body)) is expected


@pytest.mark.parametrize(
    "pattern",
    [
        "not json",
        "[]",
        "{}",
        '{"name": "Alice"}',  # a leaf must be an array
        '{"name": []}',
        '{"name": [{"regex": "A.*"}]}',
        '{"price": [{"numeric": [">>", 1]}]}',
        '{"price": [{"numeric": [">", "1"]}]}',
        '{"price": [{"numeric": [">", 1, "<"]}]}',
        '{"name": [{"prefix": 1}]}',
        '{"name": [{"exists": "yes"}]}',
        '{"name": [{"anything-but": []}]}',
        '{"name": [{"prefix": "a", "suffix": "b"}]}',
    ],
)
def test_a_pattern_lambda_would_refuse_is_refused_naming_where_it_is(pattern: str) -> None:
    with pytest.raises(FilterError) as raised:
        EventFilter.from_criteria({"Filters": [{"Pattern": pattern}]}, where="F.Events.E.FilterCriteria")
    assert "F.Events.E.FilterCriteria.Filters[0].Pattern" in str(raised.value)


def test_more_filters_than_lambda_allows_are_refused() -> None:
    criteria = {"Filters": [{"Pattern": json.dumps({"n": [i]})} for i in range(11)]}
    with pytest.raises(FilterError, match="at most 10"):
        EventFilter.from_criteria(criteria)
