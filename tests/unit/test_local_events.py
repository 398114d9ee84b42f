"""local.events against the SAM CLI's own samples: every key ``sam local generate-event`` puts in an API
Gateway proxy event or an SQS event is in ours, and the context behaves as the Lambda runtime's does."""

from __future__ import annotations

import base64
import http.client
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from handlers._api import base_path_of
from local.events import ACCOUNT_ID, LambdaContext, api_gateway_event, md5_of_message_attributes, sqs_event
from local.gateway import serve
from tests.fake_gateway import FakeFunction, fake_gateway
from tests.sam_events import generate_event

QUEUE_ARN = f"arn:aws:sqs:us-east-1:{ACCOUNT_ID}:async-reports-JobsQueue"

# Keys sam generates that our events leave out on purpose. None: every key is present (the values of
# some are null, as API Gateway sends them when there is nothing to put there).
INTENTIONALLY_ABSENT: frozenset[str] = frozenset()


def proxy_event() -> dict[str, Any]:
    return api_gateway_event(
        method="GET",
        path="/api/v1/report/01KAQ9Z3M2C7V4N8P6R5T0W1XY",
        resource="/api/v1/report/{id}",
        path_parameters={"id": "01KAQ9Z3M2C7V4N8P6R5T0W1XY"},
        headers={"User-Agent": "pytest", "x-api-key": "local-dev-key"},
        query={"foo": ["bar"]},
        body=b'{"test": "body"}',
        api_key_id="tenant-a",
    )


def missing(generated: dict[str, Any], ours: dict[str, Any]) -> set[str]:
    return set(generated) - set(ours) - INTENTIONALLY_ABSENT


def test_the_proxy_event_has_every_top_level_key_sam_generates() -> None:
    # GIVEN sam's aws-proxy sample
    generated = generate_event("apigateway", "aws-proxy")

    # WHEN we build a proxy event
    ours = proxy_event()

    # THEN no top-level key of sam's is missing from ours
    assert missing(generated, ours) == set()


def test_the_proxy_event_has_every_request_context_and_identity_key_sam_generates() -> None:
    # GIVEN sam's aws-proxy sample
    generated = generate_event("apigateway", "aws-proxy")["requestContext"]

    # WHEN we build a proxy event
    ours = proxy_event()["requestContext"]

    # THEN no requestContext key and no identity key of sam's is missing from ours
    assert missing(generated, ours) == set()
    assert missing(generated["identity"], ours["identity"]) == set()


def test_the_proxy_event_values_have_the_types_sam_generates() -> None:
    # GIVEN sam's aws-proxy sample and our event for a request with a body, a query and path parameters
    generated = generate_event("apigateway", "aws-proxy")
    ours = proxy_event()

    # WHEN the values are compared where both are given
    def mistyped(sample: dict[str, Any], event: dict[str, Any]) -> list[str]:
        return [
            key
            for key, value in sample.items()
            if value is not None and event.get(key) is not None and type(event[key]) is not type(value)
        ]

    # THEN each has sam's type (a dict where sam has a dict, an int epoch, a bool isBase64Encoded)
    assert mistyped(generated, ours) == []
    assert mistyped(generated["requestContext"], ours["requestContext"]) == []
    assert mistyped(generated["requestContext"]["identity"], ours["requestContext"]["identity"]) == []
    assert ours["requestContext"]["identity"]["apiKeyId"] == "tenant-a"
    assert ours["pathParameters"] == {"id": "01KAQ9Z3M2C7V4N8P6R5T0W1XY"}
    assert ours["multiValueQueryStringParameters"] == {"foo": ["bar"]}


def test_the_sqs_event_has_every_record_and_attribute_key_sam_generates() -> None:
    # GIVEN sam's receive-message sample
    generated = generate_event("sqs", "receive-message")["Records"][0]
    message = {
        "MessageId": "19dd0b57-b21e-4ac1-bd88-01bbb068cb78",
        "ReceiptHandle": "MessageReceiptHandle",
        "Body": "Hello from SQS!",
        "Attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1523232000000"},
    }

    # WHEN we build an SQS event from a message as receive_message returns it
    event = sqs_event([message], queue_arn=QUEUE_ARN)

    # THEN its record has every key of sam's record and of its attributes, with sam's fixed values
    (record,) = event["Records"]
    assert missing(generated, record) == set()
    assert missing(generated["attributes"], record["attributes"]) == set()
    assert record["eventSource"] == generated["eventSource"] == "aws:sqs"
    assert record["md5OfBody"] == generated["md5OfBody"]
    assert record["eventSourceARN"] == QUEUE_ARN
    assert record["awsRegion"] == "us-east-1"
    assert record["attributes"]["ApproximateReceiveCount"] == "2"


def test_a_body_that_is_not_utf8_arrives_base64_encoded_as_api_gateway_sends_binary() -> None:
    # GIVEN a request body that is not text
    body = bytes(range(256))

    # WHEN it is put in a proxy event
    event = api_gateway_event(method="POST", path="/api/v1/report", resource="/api/v1/report", body=body)

    # THEN the event says so and carries it base64-encoded, as sam's sample does
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


def test_the_context_starts_with_the_whole_timeout_left_and_counts_down() -> None:
    # GIVEN a context for a function with a 3 s timeout
    context = LambdaContext(function_name="SubmitFunction", timeout_seconds=3)

    # WHEN the time left is read at once, and again a little later
    at_start = context.get_remaining_time_in_millis()
    time.sleep(0.05)
    later = context.get_remaining_time_in_millis()

    # THEN it starts at the timeout in milliseconds and decreases
    assert 3000 - 50 < at_start <= 3000
    assert at_start - later >= 40


def test_the_context_never_reports_negative_time_left() -> None:
    # GIVEN a context whose deadline has passed
    context = LambdaContext(function_name="SubmitFunction", timeout_seconds=0)

    # WHEN the time left is read
    time.sleep(0.01)

    # THEN it is zero
    assert context.get_remaining_time_in_millis() == 0


def test_the_context_names_the_function_by_a_lambda_arn_and_each_request_by_a_unique_id() -> None:
    # GIVEN many contexts for one function
    contexts = [LambdaContext(function_name="ProcessFunction", timeout_seconds=60) for _ in range(100)]

    # WHEN their ARNs and request ids are read
    arns = {context.invoked_function_arn for context in contexts}
    request_ids = [context.aws_request_id for context in contexts]

    # THEN the ARN is the function's Lambda ARN, and every request id is a distinct UUID
    assert arns == {f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:ProcessFunction"}
    assert re.fullmatch(r"arn:aws:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]+", arns.pop())
    assert len(set(request_ids)) == len(request_ids)
    uuid_pattern = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
    assert all(re.fullmatch(uuid_pattern, request_id) for request_id in request_ids)
    assert contexts[0].function_name == "ProcessFunction"
    assert contexts[0].log_group_name == "/aws/lambda/ProcessFunction"


# -- SQS message and system attributes, as Lambda passes them ----------------------------------------------

RECEIVED_ATTRIBUTES: dict[str, dict[str, Any]] = {
    "eventType": {"StringValue": "report.completed", "DataType": "String"},
    "blob": {"BinaryValue": b"\x00\x01", "DataType": "Binary"},
    "attempt": {"StringValue": "5", "DataType": "Number.int"},
}
SQS_DIGEST = "33312a179587388bd39c8300bebb621e"
"""The MD5OfMessageAttributes SQS answers send_message with for RECEIVED_ATTRIBUTES (asked of moto 5.2)."""


def received(**extra: Any) -> dict[str, Any]:
    """A message as ``receive_message`` returns it with AttributeNames and MessageAttributeNames All."""
    return {
        "MessageId": "19dd0b57-b21e-4ac1-bd88-01bbb068cb78",
        "ReceiptHandle": "MessageReceiptHandle",
        "Body": "{}",
        "Attributes": {
            "SenderId": "AIDAIT2UOQQY3AUEKVGXU",
            "SentTimestamp": "1609502400000",
            "ApproximateReceiveCount": "1",
            "ApproximateFirstReceiveTimestamp": "1609502400100",
        },
    } | extra


def test_sqs_message_attributes_are_in_lambdas_casing_not_boto3s() -> None:
    # GIVEN a message with string, binary and number attributes, as boto3 receives it
    message = received(MessageAttributes=RECEIVED_ATTRIBUTES)

    # WHEN it becomes an SQS event
    (record,) = sqs_event([message], queue_arn=QUEUE_ARN)["Records"]

    # THEN each attribute has Lambda's keys: stringValue or binaryValue (base64), both lists, dataType
    assert record["messageAttributes"] == {
        "eventType": {
            "stringValue": "report.completed",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        },
        "blob": {"binaryValue": "AAE=", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"},
        "attempt": {"stringValue": "5", "stringListValues": [], "binaryListValues": [], "dataType": "Number.int"},
    }


def test_sqs_records_carry_the_digest_of_their_message_attributes() -> None:
    # GIVEN the same attributes, once with SQS's digest as received and once without it
    with_digest = received(MessageAttributes=RECEIVED_ATTRIBUTES, MD5OfMessageAttributes=SQS_DIGEST)
    without = received(MessageAttributes=RECEIVED_ATTRIBUTES)

    # WHEN they become SQS events
    records = sqs_event([with_digest, without], queue_arn=QUEUE_ARN)["Records"]

    # THEN both records carry SQS's digest (computed as SQS computes it when not given)
    assert [r["md5OfMessageAttributes"] for r in records] == [SQS_DIGEST, SQS_DIGEST]
    assert md5_of_message_attributes(RECEIVED_ATTRIBUTES) == SQS_DIGEST


def test_a_message_without_attributes_has_an_empty_map_and_no_digest() -> None:
    (record,) = sqs_event([received()], queue_arn=QUEUE_ARN)["Records"]
    assert record["messageAttributes"] == {}
    assert "md5OfMessageAttributes" not in record


def test_system_attributes_beyond_the_usual_four_are_kept() -> None:
    # GIVEN a message from a FIFO queue with a trace header, as received with AttributeNames All
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    message = received()
    message["Attributes"] |= {
        "AWSTraceHeader": trace,
        "MessageGroupId": "tenant-a",
        "MessageDeduplicationId": "d1",
        "SequenceNumber": "18849496460467696128",
    }

    # WHEN it becomes an SQS event
    (record,) = sqs_event([message], queue_arn=QUEUE_ARN)["Records"]

    # THEN the record's attributes keep them all, the usual four first
    assert list(record["attributes"])[:4] == [
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    ]
    assert record["attributes"]["AWSTraceHeader"] == trace
    assert record["attributes"]["MessageGroupId"] == "tenant-a"
    assert record["attributes"]["SequenceNumber"] == "18849496460467696128"


# -- API Gateway requests: repeated headers, the stage, request bodies -------------------------------------


def test_a_header_sent_twice_keeps_both_values_in_multi_value_headers_and_its_last_in_headers() -> None:
    event = api_gateway_event(
        method="GET",
        path="/x",
        resource="/x",
        headers=[("X-Dup", "a"), ("Accept", "*/*"), ("X-Dup", "b")],
    )
    assert event["multiValueHeaders"] == {"X-Dup": ["a", "b"], "Accept": ["*/*"]}
    assert event["headers"] == {"X-Dup": "b", "Accept": "*/*"}


def test_request_context_path_is_the_path_as_requested_on_the_stage() -> None:
    execute_api = api_gateway_event(method="GET", path="/api/v1/report", resource="/api/v1/report", stage="prod")
    custom_domain = api_gateway_event(
        method="GET", path="/api/v1/report", resource="/api/v1/report", stage="prod", base_path=""
    )
    assert (execute_api["path"], execute_api["requestContext"]["path"]) == ("/api/v1/report", "/prod/api/v1/report")
    assert (custom_domain["path"], custom_domain["requestContext"]["path"]) == ("/api/v1/report", "/api/v1/report")
    assert execute_api["requestContext"]["stage"] == custom_domain["requestContext"]["stage"] == "prod"


KEY = "unit-key"


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Iterator[tuple[str, int, dict[str, FakeFunction]]]:
    """The template's REST API over real HTTP with fake functions: (host, port, functions)."""
    parameters = getattr(request, "param", None)
    gateway, functions = fake_gateway({KEY: "tenant-a"}, parameters=parameters)
    server = serve(gateway, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", int(server.server_address[1]), functions
    finally:
        server.shutdown()
        server.server_close()


def raw_request(host: str, port: int, request: bytes) -> bytes:
    """Send bytes as they are and read the answer until the server closes or answers in full."""
    with socket.create_connection((host, port), timeout=10) as connection:
        connection.sendall(request)
        connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
        return answer


def post(body_headers: str, body: bytes = b"") -> bytes:
    head = f"POST /api/v1/report HTTP/1.1\r\nHost: localhost\r\nx-api-key: {KEY}\r\n{body_headers}\r\n"
    return head.encode() + body


def test_repeated_request_headers_reach_the_function_in_multi_value_headers(
    served: tuple[str, int, dict[str, FakeFunction]],
) -> None:
    host, port, functions = served
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.putrequest("GET", "/api/v1/report/r1")
    connection.putheader("x-api-key", KEY)
    connection.putheader("X-Dup", "a")
    connection.putheader("X-Dup", "b")
    connection.endheaders()
    assert connection.getresponse().status == 200
    (event,) = functions["StatusFunction"].events
    assert event["multiValueHeaders"]["X-Dup"] == ["a", "b"]
    assert event["headers"]["X-Dup"] == "b"


@pytest.mark.parametrize(
    ("served", "stage"), [(None, "v1"), ({"StageName": "prod"}, "prod")], indirect=["served"], ids=["v1", "prod"]
)
def test_request_context_stage_is_the_templates_stage_name_and_the_api_answers_under_it(
    served: tuple[str, int, dict[str, FakeFunction]], stage: str
) -> None:
    # GIVEN the API on the template's stage (the StageName parameter: v1 by default, or as given)
    host, port, functions = served

    # WHEN a report is read at the root, and at the stage-prefixed path of the execute-api URL
    for path in ("/api/v1/report/r1", f"/{stage}/api/v1/report/r1"):
        connection = http.client.HTTPConnection(host, port, timeout=10)
        connection.request("GET", path, headers={"x-api-key": KEY})
        assert connection.getresponse().status == 200
    at_root, under_stage = functions["StatusFunction"].events

    # THEN both carry the stage's name; path is the API's own path; requestContext.path is as requested,
    # so the links a function derives from it (base_path_of) lead back to where the client called
    assert at_root["requestContext"]["stage"] == under_stage["requestContext"]["stage"] == stage
    assert at_root["path"] == under_stage["path"] == "/api/v1/report/r1"
    assert under_stage["pathParameters"] == {"id": "r1"}
    assert at_root["requestContext"]["path"] == "/api/v1/report/r1"
    assert under_stage["requestContext"]["path"] == f"/{stage}/api/v1/report/r1"
    assert (base_path_of(at_root), base_path_of(under_stage)) == ("", f"/{stage}")


def test_a_chunked_request_body_is_read_whole(served: tuple[str, int, dict[str, FakeFunction]]) -> None:
    # GIVEN a body sent in chunks (one with an extension), then a trailer
    host, port, functions = served
    chunks = b'7\r\n{"repor\r\n17;ext=1\r\ntType": "COFFEE_SALES"}\r\n0\r\nX-Trailer: t\r\n\r\n'

    # WHEN it is posted
    answer = raw_request(host, port, post("Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n", chunks))

    # THEN the function got the whole body
    assert answer.startswith(b"HTTP/1.1 200")
    (event,) = functions["SubmitFunction"].events
    assert event["body"] == '{"reportType": "COFFEE_SALES"}'


def test_the_connection_stays_usable_after_a_chunked_request(served: tuple[str, int, dict[str, FakeFunction]]) -> None:
    host, port, functions = served
    first = post("Transfer-Encoding: chunked\r\n", b"2\r\n{}\r\n0\r\n\r\n")
    second = post("Content-Length: 2\r\nConnection: close\r\n", b"{}")
    answer = raw_request(host, port, first + second)
    assert answer.count(b"HTTP/1.1 200") == 2
    assert [e["body"] for e in functions["SubmitFunction"].events] == ["{}", "{}"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ("Content-Length: abc\r\n", 400),
        ("Content-Length: -1\r\n", 400),
        ("Content-Length: 1e3\r\n", 400),
        ("Content-Length: 2\r\nContent-Length: 3\r\n", 400),
        ("Transfer-Encoding: gzip, chunked\r\n", 501),
    ],
    ids=["not a number", "negative", "exponent", "two lengths", "unknown coding"],
)
def test_a_body_that_cannot_be_framed_is_answered_not_dropped(
    served: tuple[str, int, dict[str, FakeFunction]], headers: str, status: int
) -> None:
    # WHEN a request's body length cannot be read
    host, port, functions = served
    answer = raw_request(host, port, post(headers, b"{}"))

    # THEN the server answers the status (and closes), and no function is invoked
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(f"HTTP/1.1 {status}".encode()), answer
    assert b"Connection: close" in rest
    assert json.loads(rest.split(b"\r\n\r\n", 1)[1])["message"]
    assert functions["SubmitFunction"].events == []


def test_a_broken_chunked_body_is_answered_400(served: tuple[str, int, dict[str, FakeFunction]]) -> None:
    host, port, functions = served
    answer = raw_request(host, port, post("Transfer-Encoding: chunked\r\n", b"zz\r\n{}\r\n0\r\n\r\n"))
    assert answer.startswith(b"HTTP/1.1 400")
    assert functions["SubmitFunction"].events == []
