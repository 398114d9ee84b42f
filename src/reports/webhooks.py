"""Webhooks to a report's ``callbackUrl``, signed per Standard Webhooks (https://www.standardwebhooks.com).

The receiver verifies ``webhook-signature`` with any Standard Webhooks library and deduplicates on
``webhook-id``, which stays the same across our retries. Delivery connects only to an address that
``callbacks.check_delivery_target`` has just approved, never follows redirects, reads almost nothing
back and gives up after ``ATTEMPT_BUDGET_SECONDS`` in all, so a callback URL can neither steer our
requests into the network nor tie the function up. Failed deliveries are retried on the schedule
Standard Webhooks' reference implementation (Svix) uses: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h...

urllib3 and standardwebhooks are imported where they are used: the API functions import this module for
its constants and must not pay for them at cold start.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import json
import math
import random
import re
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from reports.errors import WebhookSecretError

if TYPE_CHECKING:
    from urllib3 import HTTPConnectionPool

    from reports.callbacks import CallbackTarget

WEBHOOK_EVENT_TYPES = ("report.completed", "report.failed")
SECRET_PREFIX = "whsec_"
USER_AGENT = "async-reports-webhooks/1"
MAX_RESPONSE_BYTES = 512
MAX_REASON_LENGTH = 300

CONNECT_READ_TIMEOUT_SECONDS = 10.0
"""Bounds connecting to one address, and each wait for data from it."""
ATTEMPT_BUDGET_SECONDS = 15.0
"""Bounds one whole attempt: every address tried, and an answer trickled a byte at a time (Svix allows 15 s)."""

STANDARD_RETRY_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0)
"""Seconds before retry 1, 2, ...; the last repeats. With 8 attempts a receiver may be down for a day."""
LOCAL_RETRY_SCHEDULE = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
"""Local mode's: the receiver is a developer's process on this machine, and nobody waits hours to see a retry."""
RETRY_JITTER = 0.2
"""Each delay is drawn within +-20 % of the schedule's, so the retries of one outage do not arrive together."""
MIN_RETRY_DELAY = 1.0
MAX_RETRY_DELAY = 43200.0 - 300.0
"""SQS holds a message invisible for at most 12 h counted from its receive, and the attempt took some of that."""

_MESSAGE_ID = re.compile(r"[\x21-\x7e]{1,255}")
# Headers deliver() sets itself; a caller's copy of them is dropped rather than sent twice.
_OUR_HEADERS = frozenset({"host", "content-type", "user-agent", "content-length", "transfer-encoding"})


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What one attempt achieved, and whether another attempt could change it."""

    delivered: bool
    retryable: bool
    status: int | None
    reason: str

    @property
    def gone(self) -> bool:
        """The receiver answered 410: it wants no more deliveries, now or later."""
        return self.status == 410 and not self.retryable


def webhook_message_id(report_id: str, event_type: str) -> str:
    """The ``webhook-id`` of a report's event: derived, not random, so every retry carries the same one."""
    return f"msg_{report_id}_{event_type.replace('.', '_')}"


def webhook_payload(event_type: str, report_resource: dict[str, Any], timestamp: datetime) -> bytes:
    """The body of a webhook: compact, keys sorted, ASCII only, so a retry rebuilds exactly the same bytes."""
    if event_type not in WEBHOOK_EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}; expected one of {WEBHOOK_EVENT_TYPES}")
    document = {"type": event_type, "timestamp": _iso_utc(timestamp), "data": report_resource}
    return json.dumps(document, separators=(",", ":"), sort_keys=True, ensure_ascii=True, allow_nan=False).encode()


def sign(secret: str, message_id: str, timestamp: datetime, payload: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for ``payload``, signed by the standardwebhooks library itself.

    ``timestamp`` is the moment of this attempt (receivers refuse ones more than five minutes off), so a retry
    signs again with a new timestamp but the same ``message_id``.
    """
    from standardwebhooks.webhooks import Webhook

    _check_secret(secret)
    if not _MESSAGE_ID.fullmatch(message_id):
        raise ValueError("webhook message id must be 1 to 255 visible ASCII characters")
    moment = _as_utc(timestamp)
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError("webhook payload must be UTF-8 JSON") from error
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(math.floor(moment.timestamp())),
        # The library reads a naive or aware datetime as UTC wall time, so it gets the UTC one.
        "webhook-signature": Webhook(secret).sign(msg_id=message_id, timestamp=moment, data=text),
    }


def deliver(
    target: CallbackTarget,
    payload: bytes,
    headers: dict[str, str],
    *,
    timeout: float = CONNECT_READ_TIMEOUT_SECONDS,
    budget: float = ATTEMPT_BUDGET_SECONDS,
) -> DeliveryResult:
    """POST ``payload`` once to ``target``, pinned to its checked addresses, and classify the outcome.

    The connection goes to ``target.addresses`` (in order, moving on only when one cannot be connected to,
    before anything was sent), while ``Host``, TLS SNI and certificate verification use ``target.host``.
    ``timeout`` bounds connecting and each wait for data; ``budget`` bounds the whole attempt, however many
    addresses are tried and however slowly the receiver trickles its answer: when it runs out, the sockets
    are shut, so the caller knows how long an attempt can take and plans its batch around it.
    """
    request_headers = {name: value for name, value in headers.items() if name.lower() not in _OUR_HEADERS}
    request_headers.update({"Host": target.authority, "Content-Type": "application/json", "User-Agent": USER_AGENT})
    failure = DeliveryResult(delivered=False, retryable=True, status=None, reason=f"{target.host} has no address")
    over_budget = _retryable(f"{target.host} took longer than {budget:g}s in all; attempt abandoned")
    deadline = time.monotonic() + budget
    with _Watchdog(budget) as watchdog:
        for address in target.addresses:
            left = deadline - time.monotonic()
            if left <= 0:
                return over_budget
            failure, try_next = _post(
                target, address, payload, request_headers, timeout=min(timeout, left), total=left, watchdog=watchdog
            )
            if watchdog.fired and failure.retryable:
                return over_budget  # whatever the socket said last, it was the watchdog that shut it
            if not try_next:
                return failure
    return failure


def _post(
    target: CallbackTarget,
    address: str,
    payload: bytes,
    headers: dict[str, str],
    *,
    timeout: float,
    total: float,
    watchdog: _Watchdog,
) -> tuple[DeliveryResult, bool]:
    """One POST to one address: the outcome, and whether the next address may be tried (nothing was sent)."""
    from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError, ReadTimeoutError, SSLError

    where = f"{target.host} ({_bracketed(address)}:{target.port})"
    pool = _connection_pool(target, address, timeout, total, watchdog)
    try:
        response = pool.urlopen(
            "POST",
            target.path_with_query,
            body=payload,
            headers=headers,
            retries=False,
            redirect=False,
            preload_content=False,
        )
        try:
            return _classify(response.status, response.headers.get("Location"), _response_excerpt(response)), False
        finally:
            response.close()
    except NewConnectionError as error:
        return _retryable(f"could not connect to {where}: {error.__cause__ or error}"), True
    except ConnectTimeoutError:
        return _retryable(f"connecting to {where} timed out after {timeout:g}s"), True
    except ReadTimeoutError:
        return _retryable(f"{where} timed out after {timeout:g}s without answering"), False
    except SSLError as error:
        return _retryable(f"TLS with {where} failed: {error}"), False
    except (HTTPError, OSError) as error:
        return _retryable(f"request to {where} failed: {error}"), False
    finally:
        pool.close()


def retry_delay(
    attempt: int,
    *,
    schedule: tuple[float, ...] = STANDARD_RETRY_SCHEDULE,
    jitter: float = RETRY_JITTER,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1, 2, ...) before the next one.

    The schedule's entry for that attempt (its last entry once past the end), spread by ``jitter`` either way,
    never under ``MIN_RETRY_DELAY`` (a receiver that just failed is not hammered) nor over what SQS can hold.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts from 1; got {attempt}")
    if not schedule:
        raise ValueError("a retry schedule needs at least one delay")
    nominal = schedule[min(attempt, len(schedule)) - 1]
    drawn = nominal * (rng or random).uniform(1.0 - jitter, 1.0 + jitter)
    return min(MAX_RETRY_DELAY, max(MIN_RETRY_DELAY, drawn))


def retry_schedule(configured: tuple[float, ...], *, local: bool) -> tuple[float, ...]:
    """The schedule in force: the configured one (``WEBHOOK_RETRY_SCHEDULE``), else the standard one, or in
    local mode the quick one, so ``make run`` and the end-to-end tests see retries in seconds."""
    if configured:
        return configured
    return LOCAL_RETRY_SCHEDULE if local else STANDARD_RETRY_SCHEDULE


def retry_window(schedule: tuple[float, ...], max_attempts: int) -> float:
    """Nominal seconds from the first attempt to the last: how long a receiver may be down and still get it."""
    return sum(schedule[min(attempt, len(schedule)) - 1] for attempt in range(1, max_attempts))


def _check_secret(secret: str) -> None:
    """Refuse what the library would quietly accept: its decoder drops characters that are not base64."""
    if not secret.startswith(SECRET_PREFIX):
        raise WebhookSecretError(f"the webhook secret must be {SECRET_PREFIX} followed by base64")
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error as error:
        raise WebhookSecretError(f"the webhook secret after {SECRET_PREFIX} is not valid base64") from error
    if not key:
        raise WebhookSecretError(f"the webhook secret after {SECRET_PREFIX} is empty")


class _Watchdog:
    """Shuts an attempt's sockets once its budget is spent.

    Socket timeouts bound each wait for data, not the whole answer: a receiver sending a byte every few
    seconds would hold a timeout-only client for as long as it liked. Shutting the socket down from this
    timer's thread ends whatever call is blocked on it (TLS handshake included) at once.
    """

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, seconds), self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._timer.cancel()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.fired:
                _shut(sock)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    # A socket already closed has given up its descriptor (Python sets it to -1), so this never reaches
    # another connection that reused the number.
    with contextlib.suppress(OSError):  # closed already, or never connected: nothing left to stop
        sock.shutdown(socket.SHUT_RDWR)


def _connection_pool(
    target: CallbackTarget, address: str, timeout: float, total: float, watchdog: _Watchdog
) -> HTTPConnectionPool:
    from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, Timeout

    http_connection, https_connection = _watched_connection_classes()
    limits = Timeout(connect=timeout, read=timeout, total=total)
    pool: HTTPConnectionPool
    if target.scheme == "https":
        pool = HTTPSConnectionPool(
            address,
            target.port,
            timeout=limits,
            retries=False,
            maxsize=1,
            cert_reqs="CERT_REQUIRED",
            server_hostname=target.host,
            assert_hostname=target.host,
            watchdog=watchdog,
        )
        pool.ConnectionCls = https_connection
    else:
        pool = HTTPConnectionPool(address, target.port, timeout=limits, retries=False, maxsize=1, watchdog=watchdog)
        pool.ConnectionCls = http_connection
    return pool


@functools.cache
def _watched_connection_classes() -> tuple[Any, Any]:
    """urllib3's connections, handing each socket to the attempt's watchdog as soon as it exists.

    Built on first use: urllib3 is not imported until a delivery needs it.
    """
    from urllib3.connection import HTTPConnection, HTTPSConnection

    class Watched(HTTPConnection):
        def __init__(self, *args: Any, watchdog: _Watchdog, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._watchdog = watchdog

        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            self._watchdog.watch(sock)
            return sock

    class WatchedHTTPConnection(Watched):
        """An http:// callback's connection."""

    class WatchedHTTPSConnection(Watched, HTTPSConnection):
        """An https:// callback's connection: TLS to the name, over the socket pinned to its checked address."""

    return WatchedHTTPConnection, WatchedHTTPSConnection


def _classify(status: int, location: str | None, excerpt: str) -> DeliveryResult:
    if 200 <= status < 300:
        return DeliveryResult(delivered=True, retryable=False, status=status, reason=f"delivered (HTTP {status})")
    if status == 410:
        return DeliveryResult(
            delivered=False, retryable=False, status=status, reason="gone (HTTP 410): the receiver wants no more"
        )
    if 300 <= status < 400:
        reason = f"redirect (HTTP {status}) to {_printable(location or '?')} not followed"
    else:
        reason = f"HTTP {status}" + (f": {excerpt}" if excerpt else "")
    return DeliveryResult(delivered=False, retryable=True, status=status, reason=reason[:MAX_REASON_LENGTH])


def _retryable(reason: str) -> DeliveryResult:
    return DeliveryResult(delivered=False, retryable=True, status=None, reason=_printable(reason)[:MAX_REASON_LENGTH])


def _response_excerpt(response: Any) -> str:
    """A little of the answer, for the log: one read of at most ``MAX_RESPONSE_BYTES``, errors ignored."""
    if 200 <= response.status < 300:
        return ""
    try:
        chunk: bytes = response.read1(MAX_RESPONSE_BYTES)
    except Exception:  # the status has decided already; a broken body changes nothing
        return ""
    return _printable(chunk.decode("utf-8", errors="replace"))[:200]


def _printable(text: str) -> str:
    return " ".join("".join(char if char.isprintable() else " " for char in text).split())


def _bracketed(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("webhook timestamps must be timezone-aware; a naive datetime is ambiguous")
    return moment.astimezone(UTC)


def _iso_utc(moment: datetime) -> str:
    return _as_utc(moment).isoformat(timespec="milliseconds").replace("+00:00", "Z")
