"""A small HTTP receiver for report events pushed by webhook (Standard Webhooks) or by an SNS subscription.

Every request is verified before anything is believed: a webhook by its ``webhook-signature`` (HMAC with the
``whsec_`` secret, timestamp within five minutes), an SNS message by its RSA signature and SNS's certificate.
Both senders retry, so events are deduplicated on ``webhook-id`` / ``MessageId``: a retry is acknowledged
again but handed to ``next_event`` once.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import urlsplit

from async_reports_client import sns
from async_reports_client.errors import WebhookVerificationError

logger = logging.getLogger("async_reports_client.webhooks")

MAX_BODY_BYTES = 1024 * 1024
# An oversized body up to this size is read and dropped, so the sender sees the 413 rather than a reset.
MAX_DRAIN_BYTES = 8 * 1024 * 1024
MAX_REMEMBERED_IDS = 10_000
REQUEST_TIMEOUT = 10.0
SECRET_PREFIX = "whsec_"
WEBHOOK_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")

Channel = Literal["webhook", "sns"]


@dataclass(frozen=True)
class ReceivedEvent:
    """One verified event: ``report`` is its ``data`` (the report resource), ``body`` the whole event."""

    channel: Channel
    id: str
    type: str
    report: dict[str, Any]
    body: dict[str, Any]


class _Refused(Exception):
    """Ends a request with a problem+json answer."""

    def __init__(self, status: HTTPStatus, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class WebhookReceiver:
    """Receives report events on ``url`` in background threads; ``next_event`` hands them out.

    ``secret`` verifies webhooks (``None``: every webhook is refused). ``public_url`` is what ``url`` reports
    when the sender reaches us through a tunnel or proxy. ``sns_verifier`` checks SNS messages (default: a
    real ``SnsVerifier``); ``confirm_subscription`` is called with the ``SubscribeURL`` of a verified
    ``SubscriptionConfirmation`` (default: GET it over HTTPS).
    """

    def __init__(
        self,
        secret: str | None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/",
        public_url: str | None = None,
        sns_verifier: sns.SnsVerifier | None = None,
        confirm_subscription: Callable[[str], None] | None = None,
    ) -> None:
        self._webhook = _webhook(secret) if secret is not None else None
        self._host = host
        self._port = port
        self._path = path if path.startswith("/") else "/" + path
        self._public_url = public_url
        self._sns_verifier = sns_verifier or sns.SnsVerifier()
        self._confirm_subscription = confirm_subscription or sns.confirm_subscription
        self._events: list[ReceivedEvent] = []
        self._seen: OrderedDict[tuple[Channel, str], None] = OrderedDict()
        self._arrived = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Where senders should POST: ``public_url`` if given, else ``http://host:port/path`` once started."""
        if self._public_url:
            return self._public_url
        if self._server is None and self._port == 0:
            raise RuntimeError("the receiver has no port until start() binds one")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}{self._path}"

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the receiver is already started")
        server_class = _Server6 if ":" in self._host else _Server
        server = server_class((self._host, self._port), _handler_class(self))
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="webhook-receiver", daemon=True
        )
        self._thread.start()
        logger.info("webhook receiver listening", extra={"url": self.url})

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def next_event(self, timeout: float, report_id: str | None = None) -> ReceivedEvent | None:
        """The oldest event not yet handed out (for ``report_id``, if given), waiting up to ``timeout`` s.

        Events for other reports stay queued for the callers that ask for them.
        """
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                for index, event in enumerate(self._events):
                    if report_id is None or event.report.get("id") == report_id:
                        return self._events.pop(index)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._arrived.wait(remaining)

    # What the request handler calls; each returns the status to answer or raises _Refused.

    def _receive(self, headers: dict[str, str], body: bytes) -> HTTPStatus:
        if any(name in headers for name in WEBHOOK_HEADERS):
            return self._receive_webhook(headers, body)
        if sns.MESSAGE_TYPE_HEADER in headers:
            return self._receive_sns(headers.get(sns.MESSAGE_TYPE_HEADER), _json_object(body, "the SNS message"))
        message = _looks_like_sns(body)
        if message is not None:  # moto's SNS delivers without SNS's headers
            return self._receive_sns(None, message)
        raise _Refused(
            HTTPStatus.BAD_REQUEST,
            "expected a Standard Webhooks request (webhook-id, webhook-timestamp and webhook-signature headers) "
            f"or an Amazon SNS message ({sns.MESSAGE_TYPE_HEADER} header); this request is neither",
        )

    def _receive_webhook(self, headers: dict[str, str], body: bytes) -> HTTPStatus:
        from standardwebhooks.webhooks import WebhookVerificationError as SignatureError

        if self._webhook is None:
            raise _Refused(HTTPStatus.UNAUTHORIZED, "this receiver has no webhook secret, so it cannot verify webhooks")
        missing = [name for name in WEBHOOK_HEADERS if not headers.get(name)]
        if missing:
            raise _Refused(HTTPStatus.UNAUTHORIZED, f"the webhook has no {', '.join(missing)} header")
        text = _utf8(body)
        try:
            self._webhook.verify(text, {name: headers[name] for name in WEBHOOK_HEADERS}, json_parse=False)
        except SignatureError as error:
            raise _Refused(HTTPStatus.UNAUTHORIZED, f"webhook verification failed: {_reason(error)}") from error
        except (ValueError, binascii.Error) as error:  # the library trips over a malformed signature header
            raise _Refused(
                HTTPStatus.UNAUTHORIZED, "webhook verification failed: malformed webhook-signature"
            ) from error
        event = _json_object(body, "the webhook body")
        return self._deliver("webhook", headers["webhook-id"], event)

    def _receive_sns(self, header_type: str | None, message: dict[str, Any]) -> HTTPStatus:
        message_type = message.get("Type")
        if header_type is not None and header_type != message_type:
            raise _Refused(
                HTTPStatus.BAD_REQUEST,
                f"the {sns.MESSAGE_TYPE_HEADER} header says {header_type!r} but the message Type is {message_type!r}",
            )
        try:
            self._sns_verifier.verify(message)
        except WebhookVerificationError as error:
            raise _Refused(HTTPStatus.UNAUTHORIZED, f"SNS message verification failed: {error}") from error
        topic = message.get("TopicArn")
        if message_type == sns.SUBSCRIPTION_CONFIRMATION:
            self._confirm(str(message.get("SubscribeURL")), topic)
            return HTTPStatus.OK
        if message_type == sns.UNSUBSCRIBE_CONFIRMATION:
            logger.info("SNS unsubscribe confirmation received", extra={"topic_arn": topic})
            return HTTPStatus.OK
        event = _json_object(str(message["Message"]).encode("utf-8"), "the SNS notification's Message")
        return self._deliver("sns", str(message["MessageId"]), event)

    def _confirm(self, subscribe_url: str, topic: object) -> None:
        try:
            sns.check_sns_url(subscribe_url)
        except WebhookVerificationError as error:
            raise _Refused(HTTPStatus.BAD_REQUEST, f"not confirming the subscription: {error}") from error
        try:
            self._confirm_subscription(subscribe_url)
        except Exception as error:
            logger.warning("SNS subscription not confirmed", extra={"topic_arn": topic}, exc_info=True)
            raise _Refused(HTTPStatus.BAD_GATEWAY, f"could not confirm the SNS subscription: {error}") from error
        logger.info("SNS subscription confirmed", extra={"topic_arn": topic})

    def _deliver(self, channel: Channel, event_id: str, event: dict[str, Any]) -> HTTPStatus:
        event_type, report = event.get("type"), event.get("data")
        if not isinstance(event_type, str) or not isinstance(report, dict):
            raise _Refused(
                HTTPStatus.BAD_REQUEST, 'a report event is {"type": ..., "timestamp": ..., "data": {report}}'
            )
        received = ReceivedEvent(channel=channel, id=event_id, type=event_type, report=report, body=event)
        with self._arrived:
            if (channel, event_id) in self._seen:
                logger.info("duplicate event acknowledged again", extra={"channel": channel, "event_id": event_id})
                return HTTPStatus.OK
            self._seen[(channel, event_id)] = None
            if len(self._seen) > MAX_REMEMBERED_IDS:
                self._seen.popitem(last=False)
            self._events.append(received)
            self._arrived.notify_all()
        logger.info(
            "event received",
            extra={"channel": channel, "event_id": event_id, "event_type": event_type, "report_id": report.get("id")},
        )
        return HTTPStatus.OK


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


def _handler_class(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "async-reports-client-webhooks"
        timeout = REQUEST_TIMEOUT  # a sender that stalls mid-request frees its thread

        def do_POST(self) -> None:
            try:
                if not self._on_path():
                    raise _Refused(HTTPStatus.NOT_FOUND, f"events are received on {receiver._path}")
                body = self._read_body()
                headers = {name.lower(): value for name, value in self.headers.items()}
                status = receiver._receive(headers, body)
            except _Refused as refusal:
                logger.info(
                    "request refused",
                    extra={"status": int(refusal.status), "detail": refusal.detail, "path": self.path},
                )
                self._send_problem(refusal.status, refusal.detail)
                return
            except Exception:
                logger.exception("webhook receiver failed on a request")
                self._send_problem(HTTPStatus.INTERNAL_SERVER_ERROR, "the receiver failed; see its log")
                return
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _refuse_method(self) -> None:
            if self._on_path():
                self._send_problem(HTTPStatus.METHOD_NOT_ALLOWED, "events are POSTed", allow="POST")
            else:
                self._send_problem(HTTPStatus.NOT_FOUND, f"events are received on {receiver._path}")

        do_GET = do_HEAD = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _refuse_method

        def _on_path(self) -> bool:
            return urlsplit(self.path).path == receiver._path

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding"):
                raise _Refused(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length, not chunked")
            declared = self.headers.get("Content-Length")
            if declared is None:
                raise _Refused(HTTPStatus.LENGTH_REQUIRED, "the request has no Content-Length")
            try:
                length = int(declared)
            except ValueError:
                raise _Refused(HTTPStatus.BAD_REQUEST, f"Content-Length {declared!r} is not a number") from None
            if length < 0:
                raise _Refused(HTTPStatus.BAD_REQUEST, f"Content-Length {declared!r} is negative")
            if length > MAX_BODY_BYTES:
                self._drain(length)
                raise _Refused(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    f"the body is {length} bytes; at most {MAX_BODY_BYTES} are read",
                )
            body = self.rfile.read(length)
            if len(body) != length:
                raise _Refused(HTTPStatus.BAD_REQUEST, f"the body ended after {len(body)} of {length} bytes")
            return body

        def _drain(self, length: int) -> None:
            if length > MAX_DRAIN_BYTES:
                self.close_connection = True
                return
            while length > 0:
                chunk = self.rfile.read(min(length, 64 * 1024))
                if not chunk:
                    break
                length -= len(chunk)

        def _send_problem(self, status: HTTPStatus, detail: str, *, allow: str | None = None) -> None:
            problem = {"type": "about:blank", "title": status.phrase, "status": int(status), "detail": detail}
            payload = json.dumps(problem).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/problem+json")
            self.send_header("Content-Length", str(len(payload)))
            if allow:
                self.send_header("Allow", allow)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("%s " + format, self.address_string(), *args)

    return Handler


def _webhook(secret: str) -> Any:
    """A standardwebhooks ``Webhook``, after the checks the library skips (it drops non-base64 characters)."""
    from standardwebhooks.webhooks import Webhook

    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error as error:
        raise ValueError(f"the webhook secret must be {SECRET_PREFIX} followed by base64") from error
    if not key:
        raise ValueError("the webhook secret is empty")
    return Webhook(secret)


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        document = json.loads(_utf8(body))
    except (ValueError, RecursionError) as error:
        raise _Refused(HTTPStatus.BAD_REQUEST, f"{what} is not JSON: {error}") from error
    if not isinstance(document, dict):
        raise _Refused(HTTPStatus.BAD_REQUEST, f"{what} is not a JSON object")
    return document


def _looks_like_sns(body: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if isinstance(document, dict) and document.get("Type") in sns.MESSAGE_TYPES and "SignatureVersion" in document:
        return document
    return None


def _utf8(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _Refused(HTTPStatus.BAD_REQUEST, "the body is not UTF-8") from error


def _reason(error: Exception) -> str:
    """The library's terse messages, in words a sender can act on."""
    text = str(error)
    return {
        "Message timestamp too old": "webhook-timestamp is more than 5 minutes in the past",
        "Message timestamp too new": "webhook-timestamp is more than 5 minutes in the future",
        "No matching signature found": "webhook-signature does not match the body (wrong secret or altered body)",
        "Invalid Signature Headers": "webhook-timestamp is not a number of seconds",
    }.get(text, text)
