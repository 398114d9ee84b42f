"""local.events against the SAM CLI's own samples: every key ``sam local generate-event`` puts in an API
Gateway proxy event or an SQS event is in ours, and the context behaves as the Lambda runtime's does."""

from __future__ import annotations

import base64
import re
import time
from typing import Any

from local.events import ACCOUNT_ID, LambdaContext, api_gateway_event, sqs_event
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
