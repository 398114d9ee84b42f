"""Lambda-shaped events and context, as API Gateway (REST, proxy integration; WebSocket), SQS and the
Lambda runtime hand them to a handler. The tests and the local runtime build every invocation here, and
``tests/unit/test_events.py`` holds them to the samples in ``events/`` (made like
``sam local generate-event``), so the shapes cannot drift apart."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ACCOUNT_ID = "123456789012"


def api_gateway_event(
    *,
    method: str,
    path: str,
    resource: str,
    path_parameters: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    query: Mapping[str, Sequence[str]] | None = None,
    body: bytes | None = None,
    api_key_id: str | None = None,
    stage: str = "v1",
    base_path: str | None = None,
    source_ip: str = "127.0.0.1",
    api_id: str = "local",
) -> dict[str, Any]:
    """A REST API proxy event for ``path`` (the API's own path, never with the stage) on ``stage``.

    ``requestContext.path`` is the path as the client requested it: ``base_path + path``, where
    ``base_path`` is ``/{stage}`` by default, as on the execute-api URL (``""`` behind a custom domain
    mapped at its root).

    ``headers`` is a mapping, or the request's (name, value) pairs in order: a header sent more than
    once keeps every value in ``multiValueHeaders`` and its last in ``headers``, as API Gateway does.
    """
    pairs = list(headers.items() if isinstance(headers, Mapping) else headers or ())
    multi_headers: dict[str, list[str]] = {}
    for name, value in pairs:
        multi_headers.setdefault(name, []).append(value)
    header_map = {name: values[-1] for name, values in multi_headers.items()}
    multi_query = {k: list(v) for k, v in (query or {}).items()}
    text_body: str | None = None
    is_base64 = False
    if body is not None:
        try:
            text_body = body.decode("utf-8")
        except UnicodeDecodeError:
            text_body, is_base64 = base64.b64encode(body).decode(), True
    now = datetime.now(UTC)
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": header_map or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": dict(path_parameters) if path_parameters else None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": api_id,
            "domainName": f"{api_id}.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": api_id,
            "extendedRequestId": uuid.uuid4().hex[:16],
            "httpMethod": method,
            "identity": {
                "accessKey": None,
                "accountId": None,
                "apiKey": None,
                "apiKeyId": api_key_id,
                "caller": None,
                "cognitoAuthenticationProvider": None,
                "cognitoAuthenticationType": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "principalOrgId": None,
                "sourceIp": source_ip,
                "user": None,
                "userAgent": header_map.get("User-Agent") or header_map.get("user-agent"),
                "userArn": None,
            },
            "path": (f"/{stage}" if base_path is None and stage else base_path or "") + path,
            "protocol": "HTTP/1.1",
            "requestId": str(uuid.uuid4()),
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "resourceId": hashlib.sha1(resource.encode()).hexdigest()[:6],
            "resourcePath": resource,
            "stage": stage,
        },
        "body": text_body,
        "isBase64Encoded": is_base64,
    }


WEBSOCKET_EVENT_TYPES = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}


def websocket_id() -> str:
    """An id shaped like API Gateway's WebSocket ids (connectionId, requestId, messageId): 16 characters
    of URL-safe base64 ending in ``=``, so one can sit in an ``@connections/{id}`` path unescaped."""
    return base64.urlsafe_b64encode(secrets.token_bytes(11)).decode()


def websocket_event(
    route_key: str,
    *,
    connection_id: str,
    connected_at: int,
    domain_name: str,
    api_id: str = "local",
    stage: str = "v1",
    source_ip: str = "127.0.0.1",
    user_agent: str | None = None,
    headers: Mapping[str, Sequence[str]] | None = None,
    query: Mapping[str, Sequence[str]] | None = None,
    body: str | bytes | None = None,
    disconnect_status_code: int = 1005,
    disconnect_reason: str = "Client-side close frame status not set",
    request_id: str | None = None,
) -> dict[str, Any]:
    """A WebSocket API event for a Lambda proxy integration, as API Gateway sends it.

    ``$connect`` carries the handshake's headers and, when the URL has one, its query;
    ``$disconnect`` the close code and reason, with API Gateway's fixed headers unless ``headers`` are
    given; any other route is a message (``body``: text as sent, bytes base64-encoded).
    ``connected_at`` is the connection's start in epoch milliseconds.
    """
    event_type = WEBSOCKET_EVENT_TYPES.get(route_key, "MESSAGE")
    now = datetime.now(UTC)
    request_id = request_id or websocket_id()
    context: dict[str, Any] = {"routeKey": route_key}
    if event_type == "MESSAGE":
        context["messageId"] = websocket_id()
    if event_type == "DISCONNECT":
        context["disconnectStatusCode"] = disconnect_status_code
    context |= {
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "messageDirection": "IN",
    }
    if event_type == "DISCONNECT":
        context["disconnectReason"] = disconnect_reason
    identity = {"sourceIp": source_ip} | ({"userAgent": user_agent} if user_agent is not None else {})
    context |= {
        "stage": stage,
        "connectedAt": connected_at,
        "requestTimeEpoch": int(now.timestamp() * 1000),
        "identity": identity,
        "requestId": request_id,
        "domainName": domain_name,
        "connectionId": connection_id,
        "apiId": api_id,
    }
    event: dict[str, Any] = {}
    if event_type != "MESSAGE":
        if headers is None and event_type == "DISCONNECT":
            headers = {"Host": [domain_name], "x-api-key": [""], "X-Forwarded-For": [""], "x-restapi": [""]}
        multi_headers = {name: list(values) for name, values in (headers or {}).items()}
        event["headers"] = {name: values[-1] for name, values in multi_headers.items() if values}
        event["multiValueHeaders"] = multi_headers
    if event_type == "CONNECT" and query:
        event["queryStringParameters"] = {name: values[-1] for name, values in query.items() if values}
        event["multiValueQueryStringParameters"] = {name: list(values) for name, values in query.items()}
    event["requestContext"] = context
    is_base64 = False
    if event_type == "MESSAGE":
        if isinstance(body, bytes):
            body, is_base64 = base64.b64encode(body).decode(), True
        event["body"] = body
    event["isBase64Encoded"] = is_base64
    return event


SQS_RECORD_ATTRIBUTES = ("ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp")
"""The system attributes every SQS record carries; any others the message has (``AWSTraceHeader``, a FIFO
queue's ``SequenceNumber``, ``MessageGroupId`` and ``MessageDeduplicationId``, ``DeadLetterQueueSourceArn``)
follow them, as Lambda passes on what ``receive_message`` returns for ``All``."""


def sqs_message_attributes(attributes: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``MessageAttributes`` as ``receive_message`` returns them (``StringValue``, ``BinaryValue`` as bytes,
    ``DataType``), in the casing and layout Lambda gives them to a function::

        {"stringValue": "v", "stringListValues": [], "binaryListValues": [], "dataType": "String"}

    with ``binaryValue`` (base64) instead of ``stringValue`` for a ``Binary`` attribute."""
    converted = {}
    for name, attribute in attributes.items():
        value: dict[str, Any] = {}
        if "StringValue" in attribute:
            value["stringValue"] = attribute["StringValue"]
        if "BinaryValue" in attribute:
            raw = attribute["BinaryValue"]
            value["binaryValue"] = base64.b64encode(raw).decode() if isinstance(raw, bytes | bytearray) else str(raw)
        value["stringListValues"] = list(attribute.get("StringListValues") or [])
        value["binaryListValues"] = [
            base64.b64encode(item).decode() if isinstance(item, bytes | bytearray) else str(item)
            for item in attribute.get("BinaryListValues") or []
        ]
        value["dataType"] = attribute["DataType"]
        converted[name] = value
    return converted


def md5_of_message_attributes(attributes: Mapping[str, Mapping[str, Any]]) -> str:
    """SQS's digest of ``MessageAttributes`` (the ``MD5OfMessageAttributes`` it returns): each attribute by
    name, as length-prefixed name, data type, a transport byte (1 string, 2 binary) and length-prefixed value."""
    digest = hashlib.md5()

    def put(data: bytes) -> None:
        digest.update(len(data).to_bytes(4, "big") + data)

    for name in sorted(attributes):
        attribute = attributes[name]
        put(name.encode())
        put(str(attribute["DataType"]).encode())
        if "BinaryValue" in attribute:
            raw = attribute["BinaryValue"]
            digest.update(b"\x02")
            put(bytes(raw) if isinstance(raw, bytes | bytearray) else base64.b64decode(raw))
        else:
            digest.update(b"\x01")
            put(str(attribute.get("StringValue", "")).encode())
    return digest.hexdigest()


def sqs_event(messages: Sequence[Mapping[str, Any]], *, queue_arn: str) -> dict[str, Any]:
    """An SQS event from messages as ``receive_message`` returns them (with ``AttributeNames=All`` and
    ``MessageAttributeNames=All``): system attributes as received, message attributes in Lambda's casing,
    and ``md5OfMessageAttributes`` when the message has any."""
    region = queue_arn.split(":")[3]
    records = []
    now = str(int(time.time() * 1000))
    for message in messages:
        received = message.get("Attributes") or {}
        defaults = {"ApproximateReceiveCount": "1", "SentTimestamp": now, "SenderId": ACCOUNT_ID}
        defaults["ApproximateFirstReceiveTimestamp"] = now
        attributes = {name: received.get(name, defaults[name]) for name in SQS_RECORD_ATTRIBUTES}
        attributes |= {name: value for name, value in received.items() if name not in attributes}
        message_attributes = message.get("MessageAttributes") or {}
        record: dict[str, Any] = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": attributes,
            "messageAttributes": sqs_message_attributes(message_attributes),
        }
        if message_attributes:
            record["md5OfMessageAttributes"] = message.get("MD5OfMessageAttributes") or md5_of_message_attributes(
                message_attributes
            )
        record |= {
            "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": region,
        }
        records.append(record)
    return {"Records": records}


@dataclass
class LambdaContext:
    """What the Lambda runtime passes as ``context``: ids, limits and the time left."""

    function_name: str
    timeout_seconds: int
    memory_limit_in_mb: int = 128
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    region: str = "us-east-1"
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"{datetime.now(UTC):%Y/%m/%d}/[{self.function_version}]{self.aws_request_id.replace('-', '')}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
