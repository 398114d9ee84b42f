"""Webhooks are signed so any Standard Webhooks library verifies them, and delivered only where checked.

Delivery runs against real HTTP(S) receivers on 127.0.0.1, started in the test; nothing else is contacted.
"""

from __future__ import annotations

import base64
import json
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from reports.callbacks import CallbackTarget, validate_callback_url
from reports.errors import WebhookSecretError
from reports.webhooks import (
    LOCAL_RETRY_SCHEDULE,
    MAX_RETRY_DELAY,
    MIN_RETRY_DELAY,
    RETRY_JITTER,
    STANDARD_RETRY_SCHEDULE,
    USER_AGENT,
    WEBHOOK_EVENT_TYPES,
    DeliveryResult,
    deliver,
    retry_delay,
    retry_schedule,
    retry_window,
    sign,
    webhook_message_id,
    webhook_payload,
)

SECRET = "whsec_" + base64.b64encode(b"async-reports-test-secret-32byte").decode()
REPORT_ID = "01JABCDEFGHJKMNPQRSTVWXYZ0"
REPORT = {
    "id": REPORT_ID,
    "reportType": "COFFEE_SALES",
    "reportDate": "2021-01-01",
    "status": "COMPLETED",
    "completed": True,
    "_links": {"self": {"href": "/api/v1/report/01JABCDEFGHJKMNPQRSTVWXYZ0"}},
}
EVENT_TIME = datetime(2021, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


# --- payload and signature ---------------------------------------------------------------------------------


def test_the_payload_is_the_push_contract_in_compact_stable_json() -> None:
    # WHEN a completion is turned into a webhook body
    payload = webhook_payload("report.completed", REPORT, EVENT_TIME)
    # THEN it is the contract's envelope, compact, with an ISO-8601 UTC timestamp
    assert json.loads(payload) == {"type": "report.completed", "timestamp": "2021-01-02T03:04:05.678Z", "data": REPORT}
    assert b" " not in payload
    assert payload.startswith(b'{"data":{"_links":')
    # AND the same report in another key order, at the same instant in another zone, gives the same bytes
    reordered = dict(reversed(list(REPORT.items())))
    elsewhere = EVENT_TIME.astimezone(timezone(timedelta(hours=-5)))
    assert webhook_payload("report.completed", reordered, elsewhere) == payload


def test_the_payload_accepts_only_the_contracts_event_types_and_aware_times() -> None:
    assert WEBHOOK_EVENT_TYPES == ("report.completed", "report.failed")
    with pytest.raises(ValueError, match="unknown webhook event type"):
        webhook_payload("report.updated", REPORT, EVENT_TIME)
    with pytest.raises(ValueError, match="timezone-aware"):
        webhook_payload("report.failed", REPORT, datetime(2021, 1, 2, 3, 4, 5))


def test_the_official_library_verifies_our_signature() -> None:
    # GIVEN a payload signed now
    payload = webhook_payload("report.completed", REPORT, EVENT_TIME)
    now = datetime.now(UTC)
    headers = sign(SECRET, "msg_1", now, payload)
    # WHEN a receiver verifies it with the standardwebhooks library
    verified = Webhook(SECRET).verify(payload, headers)
    # THEN it accepts it and reads the report back
    assert verified["data"] == REPORT
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-timestamp"] == str(int(now.timestamp()))
    assert headers["webhook-signature"].startswith("v1,")


def test_a_tampered_body_or_timestamp_fails_verification() -> None:
    payload = webhook_payload("report.failed", {**REPORT, "status": "FAILED"}, EVENT_TIME)
    headers = sign(SECRET, "msg_2", datetime.now(UTC), payload)
    receiver = Webhook(SECRET)
    # WHEN the body is altered in transit
    with pytest.raises(WebhookVerificationError):
        receiver.verify(payload.replace(b"FAILED", b"COMPLETED"), headers)
    # WHEN the timestamp is altered in transit (a replay made to look fresh)
    shifted = {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) - 1)}
    with pytest.raises(WebhookVerificationError):
        receiver.verify(payload, shifted)
    # WHEN another secret verifies it
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"another-secret-another-secret!!!").decode()).verify(payload, headers)


def test_retries_keep_the_webhook_id_and_sign_afresh() -> None:
    # GIVEN the id derived for a report's event
    message_id = webhook_message_id(REPORT_ID, "report.completed")
    payload = webhook_payload("report.completed", REPORT, EVENT_TIME)
    first_attempt = datetime.now(UTC) - timedelta(seconds=90)
    # WHEN the same message is signed on two attempts
    first = sign(SECRET, message_id, first_attempt, payload)
    second = sign(SECRET, webhook_message_id(REPORT_ID, "report.completed"), datetime.now(UTC), payload)
    # THEN the receiver sees one webhook-id to deduplicate on, each attempt verifiable on its own
    assert first["webhook-id"] == second["webhook-id"] == f"msg_{REPORT_ID}_report_completed"
    assert first["webhook-signature"] != second["webhook-signature"]
    Webhook(SECRET).verify(payload, first)
    Webhook(SECRET).verify(payload, second)
    assert webhook_message_id(REPORT_ID, "report.failed") != message_id


def test_signing_reads_an_aware_timestamp_in_any_zone_as_the_same_instant() -> None:
    payload = webhook_payload("report.completed", REPORT, EVENT_TIME)
    now = datetime.now(UTC)
    in_tokyo = now.astimezone(timezone(timedelta(hours=9)))
    assert sign(SECRET, "msg_3", in_tokyo, payload) == sign(SECRET, "msg_3", now, payload)
    with pytest.raises(ValueError, match="timezone-aware"):
        sign(SECRET, "msg_3", now.replace(tzinfo=None), payload)


def test_an_unpadded_secret_signs_as_the_library_reads_it() -> None:
    unpadded = "whsec_" + base64.b64encode(b"twenty-five-byte-secret!!").decode().rstrip("=")
    payload = webhook_payload("report.completed", REPORT, EVENT_TIME)
    Webhook(unpadded).verify(payload, sign(unpadded, "msg_4", datetime.now(UTC), payload))


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        ("c2VjcmV0", "must be whsec_ followed by base64"),
        ("WHSEC_c2VjcmV0", "must be whsec_ followed by base64"),
        ("whsec_", "is empty"),
        ("whsec_not base64!", "is not valid base64"),
        ("whsec_c2Vj*cmV0", "is not valid base64"),
    ],
)
def test_a_secret_that_is_not_whsec_base64_is_refused_clearly(secret: str, expected: str) -> None:
    # WHEN signing with a malformed secret (the library alone would quietly drop the bad characters)
    with pytest.raises(WebhookSecretError, match=expected) as raised:
        sign(secret, "msg_5", datetime.now(UTC), b"{}")
    # THEN the error says what a secret must look like, without echoing it
    encoded = secret.removeprefix("whsec_")
    assert not encoded or encoded not in str(raised.value)


def test_a_message_id_must_be_a_plain_header_value() -> None:
    for bad in ("", "msg 1", "msg\r\nX-Injected: 1", "x" * 256):
        with pytest.raises(ValueError, match="message id"):
            sign(SECRET, bad, datetime.now(UTC), b"{}")


# --- a receiver on 127.0.0.1 -------------------------------------------------------------------------------


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: Any) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (as a refused TLS handshake does) is expected here, not a test failure."""


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server in a thread that answers every POST the same way and remembers what it got."""

    status: int = 200
    answer_headers: dict[str, str] = field(default_factory=dict)
    answer_body: bytes = b""
    delay: float = 0.0
    tls: ssl.SSLContext | None = None
    host: str = "127.0.0.1"
    requests: list[Received] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)
    server: QuietServer | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def url(self, path: str = "/hooks/reports?tenant=t1") -> str:
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{path}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                if receiver.delay:
                    receiver.released.wait(receiver.delay)
                self.send_response(receiver.status)
                for name, value in receiver.answer_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(receiver.answer_body)))
                self.end_headers()
                self.wfile.write(receiver.answer_body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: pytest shows failures, not access logs."""

        self.server = QuietServer((self.host, 0), Handler)
        if self.tls is not None:
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.released.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def start(**options: Any) -> Receiver:
        started.append(Receiver(**options).start())
        return started[-1]

    yield start
    for each in started:
        each.stop()


def local_target(url: str) -> CallbackTarget:
    """What local mode's checks make of a loopback URL (a real check, not a hand-built target)."""
    return validate_callback_url(url, allow_loopback=True)


def signed(payload: bytes) -> dict[str, str]:
    return sign(SECRET, "msg_delivery", datetime.now(UTC), payload)


PAYLOAD = webhook_payload("report.completed", REPORT, EVENT_TIME)


# --- delivery ----------------------------------------------------------------------------------------------


def test_a_2xx_answer_is_a_delivery_and_the_receiver_can_verify_exactly_what_it_got(
    receiver: Callable[..., Receiver],
) -> None:
    # GIVEN a receiver that answers 200
    hook = receiver(status=200)
    headers = signed(PAYLOAD)
    # WHEN the webhook is delivered
    result = deliver(local_target(hook.url()), PAYLOAD, headers)
    # THEN it counts as delivered, and nothing needs retrying
    assert result == DeliveryResult(delivered=True, retryable=False, status=200, reason="delivered (HTTP 200)")
    # AND the receiver got the exact signed bytes, our headers, and verifies them with the official library
    [request] = hook.requests
    assert request.path == "/hooks/reports?tenant=t1"
    assert request.body == PAYLOAD
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == USER_AGENT == "async-reports-webhooks/1"
    assert request.headers["Host"] == f"127.0.0.1:{hook.port}"
    assert {name: request.headers[name] for name in headers} == headers
    assert Webhook(SECRET).verify(request.body, request.headers)["data"] == REPORT


def test_a_204_is_a_delivery(receiver: Callable[..., Receiver]) -> None:
    hook = receiver(status=204)
    assert deliver(local_target(hook.url()), PAYLOAD, signed(PAYLOAD)).delivered


@pytest.mark.parametrize("status", [500, 503, 429, 400, 404])
def test_any_other_status_is_retryable(receiver: Callable[..., Receiver], status: int) -> None:
    # GIVEN a receiver that fails
    hook = receiver(status=status, answer_body=b"upstream\n down " + b"x" * 5000)
    # WHEN the webhook is delivered
    result = deliver(local_target(hook.url()), PAYLOAD, signed(PAYLOAD))
    # THEN it is worth another attempt, and the reason carries the status and a short excerpt of the answer
    assert (result.delivered, result.retryable, result.status, result.gone) == (False, True, status, False)
    assert result.reason.startswith(f"HTTP {status}: upstream down xxx")
    assert len(result.reason) <= 300


def test_410_gone_is_final(receiver: Callable[..., Receiver]) -> None:
    # GIVEN a receiver that has retired the endpoint
    hook = receiver(status=410)
    # WHEN the webhook is delivered
    result = deliver(local_target(hook.url()), PAYLOAD, signed(PAYLOAD))
    # THEN it is neither delivered nor to be retried
    assert (result.delivered, result.retryable, result.status, result.gone) == (False, False, 410, True)
    assert "gone" in result.reason


def test_a_redirect_is_not_followed(receiver: Callable[..., Receiver]) -> None:
    # GIVEN a receiver that redirects to another server
    elsewhere = receiver(status=200)
    hook = receiver(status=302, answer_headers={"Location": elsewhere.url("/stolen")})
    # WHEN the webhook is delivered
    result = deliver(local_target(hook.url()), PAYLOAD, signed(PAYLOAD))
    # THEN the redirect is reported, retryable, and the redirect's target never heard from us
    assert (result.delivered, result.retryable, result.status) == (False, True, 302)
    assert result.reason == f"redirect (HTTP 302) to {elsewhere.url('/stolen')} not followed"
    assert len(hook.requests) == 1
    assert elsewhere.requests == []


def test_a_receiver_slower_than_the_timeout_is_retryable(receiver: Callable[..., Receiver]) -> None:
    # GIVEN a receiver that takes far longer than we wait
    hook = receiver(status=200, delay=10.0)
    started = time.monotonic()
    # WHEN the webhook is delivered with a short timeout
    result = deliver(local_target(hook.url()), PAYLOAD, signed(PAYLOAD), timeout=0.3)
    # THEN we give up on time and call it retryable
    assert time.monotonic() - started < 3.0
    assert (result.delivered, result.retryable, result.status) == (False, True, None)
    assert "timed out" in result.reason


def test_a_refused_connection_is_retryable() -> None:
    # GIVEN a loopback port nobody listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # WHEN the webhook is delivered there
    result = deliver(local_target(f"http://127.0.0.1:{port}/hooks"), PAYLOAD, signed(PAYLOAD), timeout=2.0)
    # THEN it is retryable, saying it could not connect
    assert (result.delivered, result.retryable, result.status) == (False, True, None)
    assert result.reason.startswith(f"could not connect to 127.0.0.1 (127.0.0.1:{port})")


def test_delivery_connects_to_the_pinned_address_whatever_the_host_name(receiver: Callable[..., Receiver]) -> None:
    # GIVEN a target checked as example.invalid, pinned to the address the check approved
    hook = receiver(status=200)
    target = CallbackTarget(
        url=f"http://example.invalid:{hook.port}/hooks",
        scheme="http",
        host="example.invalid",
        port=hook.port,
        path_with_query="/hooks",
        addresses=("127.0.0.1",),
    )
    # WHEN it is delivered, with a caller header that tries to change the Host
    result = deliver(target, PAYLOAD, {**signed(PAYLOAD), "host": "169.254.169.254"})
    # THEN no lookup of the name happened (it has none), the pinned address got it, and Host names the URL's host
    assert result.delivered
    [request] = hook.requests
    assert request.headers["Host"] == f"example.invalid:{hook.port}"
    assert request.path == "/hooks"


def test_delivery_moves_to_the_next_address_only_when_one_cannot_be_connected_to(
    receiver: Callable[..., Receiver],
) -> None:
    # GIVEN a target with two addresses, the first of which refuses connections
    hook = receiver(status=200)
    target = CallbackTarget(
        url=f"http://dual.invalid:{hook.port}/hooks",
        scheme="http",
        host="dual.invalid",
        port=hook.port,
        path_with_query="/hooks",
        addresses=("127.0.0.2", "127.0.0.1"),
    )
    # WHEN it is delivered
    result = deliver(target, PAYLOAD, signed(PAYLOAD), timeout=2.0)
    # THEN the second address received it once
    assert result.delivered
    assert len(hook.requests) == 1


def test_delivery_reaches_an_ipv6_address_with_a_bracketed_host_header(receiver: Callable[..., Receiver]) -> None:
    # GIVEN a receiver on the IPv6 loopback, where the machine has one
    try:
        hook = receiver(status=204, host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    # WHEN the webhook is delivered to it
    result = deliver(local_target(hook.url("/v6")), PAYLOAD, signed(PAYLOAD))
    # THEN it arrives, with the address in brackets in the Host header
    assert result.delivered
    assert hook.requests[0].headers["Host"] == f"[::1]:{hook.port}"


# --- HTTPS: pinned address, original name for SNI and the certificate --------------------------------------


@dataclass
class Pki:
    ca_file: Path
    server: ssl.SSLContext
    server_names: list[str | None]


@pytest.fixture
def pki(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Pki:
    """A throwaway CA, trusted through SSL_CERT_FILE, and a server certificate for example.invalid only."""
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("async-reports test CA"))
        .issuer_name(name("async-reports test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("example.invalid"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("example.invalid")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    chain = tmp_path / "server.pem"
    chain.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(chain)
    server_names: list[str | None] = []
    server.sni_callback = lambda _socket, server_name, _context: server_names.append(server_name)
    # OpenSSL reads SSL_CERT_FILE when urllib3 loads the default trust store, so deliver() is unchanged.
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    return Pki(ca_file=ca_file, server=server, server_names=server_names)


def https_target(port: int, host: str) -> CallbackTarget:
    return CallbackTarget(
        url=f"https://{host}:{port}/hooks",
        scheme="https",
        host=host,
        port=port,
        path_with_query="/hooks",
        addresses=("127.0.0.1",),
    )


def test_https_delivery_to_a_pinned_address_verifies_the_certificate_of_the_host_name(
    receiver: Callable[..., Receiver], pki: Pki
) -> None:
    # GIVEN an HTTPS receiver on 127.0.0.1 holding a certificate for example.invalid
    hook = receiver(status=200, tls=pki.server)
    # WHEN a target for example.invalid, pinned to 127.0.0.1, is delivered
    result = deliver(https_target(hook.port, "example.invalid"), PAYLOAD, signed(PAYLOAD), timeout=5.0)
    # THEN TLS asked for example.invalid (SNI), accepted its certificate, and Host named it too
    assert result.delivered, result.reason
    assert pki.server_names == ["example.invalid"]
    [request] = hook.requests
    assert request.headers["Host"] == f"example.invalid:{hook.port}"
    assert request.body == PAYLOAD


def test_https_delivery_refuses_a_certificate_for_another_name(receiver: Callable[..., Receiver], pki: Pki) -> None:
    # GIVEN the same receiver, but a target whose host name its certificate does not cover
    hook = receiver(status=200, tls=pki.server)
    # WHEN it is delivered
    result = deliver(https_target(hook.port, "other.invalid"), PAYLOAD, signed(PAYLOAD), timeout=5.0)
    # THEN the TLS check fails before any request is sent, as a retryable failure
    assert (result.delivered, result.retryable, result.status) == (False, True, None)
    assert result.reason.startswith("TLS with other.invalid (127.0.0.1:")
    assert "doesn't match 'example.invalid'" in result.reason
    assert hook.requests == []


# --- a bounded attempt ------------------------------------------------------------------------------------


class Trickler:
    """A raw TCP receiver that reads the request, then sends its status line a space every ``interval`` seconds
    for ``seconds`` before finishing it with 200: each byte beats any per-read timeout, the whole takes ages."""

    def __init__(self, *, interval: float = 0.1, seconds: float = 8.0) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.stopped = threading.Event()
        self.interval, self.seconds = interval, seconds
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection:
            connection.recv(65536)
            began = time.monotonic()
            try:
                connection.sendall(b"HTTP/1.1 ")
                while time.monotonic() - began < self.seconds and not self.stopped.is_set():
                    connection.sendall(b" ")
                    time.sleep(self.interval)
                connection.sendall(b"200 OK\r\nContent-Length: 0\r\n\r\n")
            except OSError:
                return  # we hung up on it: the point of the test

    def stop(self) -> None:
        self.stopped.set()
        self.listener.close()


def test_an_attempt_ends_when_its_budget_is_spent_even_if_the_receiver_keeps_trickling() -> None:
    # GIVEN a receiver that sends its answer a byte at a time, each byte well inside the read timeout
    trickler = Trickler(interval=0.1, seconds=8.0)
    try:
        started = time.monotonic()
        # WHEN a webhook is delivered to it with a 1 s read timeout and a 1.5 s budget for the whole attempt
        result = deliver(
            local_target(f"http://127.0.0.1:{trickler.port}/hooks"), PAYLOAD, signed(PAYLOAD), timeout=1.0, budget=1.5
        )
        elapsed = time.monotonic() - started
    finally:
        trickler.stop()
    # THEN the attempt ends on budget, not when the receiver finally finishes, and is worth another try
    assert elapsed < 3.0
    assert (result.delivered, result.retryable, result.status) == (False, True, None)
    assert result.reason == "127.0.0.1 took longer than 1.5s in all; attempt abandoned"


def test_the_budget_also_covers_every_address_tried() -> None:
    # GIVEN two addresses whose receivers both trickle
    first, second = Trickler(seconds=8.0), Trickler(seconds=8.0)
    target = CallbackTarget(
        url="http://dual.invalid/hooks",
        scheme="http",
        host="dual.invalid",
        port=first.port,
        path_with_query="/hooks",
        addresses=("127.0.0.1", "127.0.0.1"),
    )
    try:
        started = time.monotonic()
        # WHEN the webhook is delivered with a 1 s budget
        result = deliver(target, PAYLOAD, signed(PAYLOAD), timeout=5.0, budget=1.0)
        elapsed = time.monotonic() - started
    finally:
        first.stop()
        second.stop()
    # THEN one budget covers the attempt, not one per address or per read
    assert elapsed < 2.5
    assert not result.delivered
    assert "took longer than 1s in all" in result.reason


def test_a_quick_receiver_is_unaffected_by_the_budget(receiver: Callable[..., Receiver]) -> None:
    # GIVEN a receiver that answers at once
    hook = receiver(status=200)
    # WHEN several webhooks are delivered with a small budget each
    results = [deliver(local_target(hook.url()), PAYLOAD, signed(PAYLOAD), budget=2.0) for _ in range(3)]
    time.sleep(2.2)  # past every budget: a watchdog left running would now shut a socket someone else owns
    # THEN each was delivered, and nothing fires later
    assert all(result.delivered for result in results)
    assert deliver(local_target(hook.url()), PAYLOAD, signed(PAYLOAD), budget=2.0).delivered


def test_the_webhook_function_always_has_time_for_a_whole_attempt() -> None:
    from reports.deliveries import TIME_MARGIN_SECONDS
    from reports.webhooks import ATTEMPT_BUDGET_SECONDS, CONNECT_READ_TIMEOUT_SECONDS
    from tests.conftest import template

    # GIVEN the webhook function as the template declares it, and its queue
    function = template().functions()["WebhookFunction"]
    queue = template().resources["CallbacksQueue"]["Properties"]
    # THEN one attempt (and the writes around it) fits in an invocation, so the first record of a batch is
    # always tried; the rest are tried only while that still holds
    assert ATTEMPT_BUDGET_SECONDS >= CONNECT_READ_TIMEOUT_SECONDS
    assert function.timeout >= ATTEMPT_BUDGET_SECONDS + TIME_MARGIN_SECONDS
    # AND a batch the function could not finish is not offered again while it may still be running
    assert int(queue["VisibilityTimeout"]) >= 6 * function.timeout


# --- backoff -----------------------------------------------------------------------------------------------


class Highest(random.Random):
    """Always the top of the range."""

    def uniform(self, a: float, b: float) -> float:
        return b


class Lowest(random.Random):
    """Always the bottom of the range."""

    def uniform(self, a: float, b: float) -> float:
        return a


def test_retries_follow_the_standard_webhooks_schedule_within_the_jitter() -> None:
    # WHEN the delays after successive failed attempts are read at both ends of the jitter
    highest = [retry_delay(attempt, rng=Highest()) for attempt in range(1, 9)]
    lowest = [retry_delay(attempt, rng=Lowest()) for attempt in range(1, 9)]
    # THEN they follow 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, then 10 h again, each within 20 % either way
    nominal = [5, 300, 1800, 7200, 18000, 36000, 36000, 36000]
    assert STANDARD_RETRY_SCHEDULE == (5, 300, 1800, 7200, 18000, 36000)
    assert highest == pytest.approx([min(1.2 * n, MAX_RETRY_DELAY) for n in nominal])
    assert lowest == pytest.approx([0.8 * n for n in nominal])


def test_a_retry_never_comes_sooner_than_the_minimum_nor_later_than_sqs_can_hold() -> None:
    # GIVEN schedules too short and too long for what SQS visibility allows
    # WHEN delays are drawn from them
    # THEN they are held to at least a second and to SQS's 12 hours (counted from the receive) less the attempt
    assert retry_delay(1, schedule=(0.0,), rng=Lowest()) == MIN_RETRY_DELAY == 1.0
    assert retry_delay(1, schedule=(50_000.0,), rng=Highest()) == MAX_RETRY_DELAY
    assert MAX_RETRY_DELAY <= 43200 - 60
    assert retry_delay(7, rng=Highest()) == MAX_RETRY_DELAY  # 10 h + 20 % is past it


def test_retry_delays_spread_within_the_jitter_and_repeat_with_a_seed() -> None:
    # GIVEN a seeded generator
    rng = random.Random(7)
    # WHEN many delays are drawn for the second retry
    delays = [retry_delay(2, rng=rng) for _ in range(500)]
    # THEN they spread over 240 to 360 s, not bunched at one instant
    assert all(240.0 <= delay <= 360.0 for delay in delays)
    assert min(delays) < 250.0
    assert max(delays) > 350.0
    # AND the same seed gives the same schedule
    assert [retry_delay(n, rng=random.Random(42)) for n in range(1, 6)] == [
        retry_delay(n, rng=random.Random(42)) for n in range(1, 6)
    ]


def test_retry_delay_counts_attempts_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        retry_delay(0)
    with pytest.raises(ValueError, match="at least one delay"):
        retry_delay(1, schedule=())
    assert 4.0 <= retry_delay(1) <= 6.0


def test_the_default_attempts_cover_a_receiver_down_for_a_day() -> None:
    from tests.conftest import template

    # GIVEN the template's default number of attempts and the standard schedule
    attempts = int(template().document["Parameters"]["WebhookMaxAttempts"]["Default"])
    # WHEN the time from the first attempt to the last is added up
    window = retry_window(STANDARD_RETRY_SCHEDULE, attempts)
    # THEN a receiver that is down for a day (even with every delay drawn short) still gets the webhook
    assert window * (1 - RETRY_JITTER) >= 20 * 3600
    assert window >= 24 * 3600
    # AND the callbacks queue keeps the message that long
    assert int(template().resources["CallbacksQueue"]["Properties"]["MessageRetentionPeriod"]) > window * 1.2


def test_local_mode_retries_in_seconds_and_a_configured_schedule_wins_everywhere() -> None:
    # WHEN nothing is configured
    # THEN a deployment uses the standard schedule and local mode the quick one
    assert retry_schedule((), local=False) == STANDARD_RETRY_SCHEDULE
    assert retry_schedule((), local=True) == LOCAL_RETRY_SCHEDULE
    assert max(LOCAL_RETRY_SCHEDULE[:2]) <= 2.0
    # WHEN a schedule is configured (WEBHOOK_RETRY_SCHEDULE)
    # THEN it is the one used, in either mode
    assert retry_schedule((1.0, 60.0), local=False) == retry_schedule((1.0, 60.0), local=True) == (1.0, 60.0)
