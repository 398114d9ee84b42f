"""Webhooks to a report's ``callbackUrl``, signed per Standard Webhooks (https://www.standardwebhooks.com).

The receiver verifies ``webhook-signature`` with any Standard Webhooks library and deduplicates on
``webhook-id``, which stays the same across our retries. Delivery connects only to an address that
``callbacks.check_delivery_target`` has just approved, never follows redirects and reads almost nothing
back, so a callback URL cannot steer our requests into the network or tie the function up.

urllib3 and standardwebhooks are imported where they are used: the API functions import this module for
its constants and must not pay for them at cold start.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime
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
    target: CallbackTarget, payload: bytes, headers: dict[str, str], *, timeout: float = 10.0
) -> DeliveryResult:
    """POST ``payload`` once to ``target``, pinned to its checked addresses, and classify the outcome.

    The connection goes to ``target.addresses`` (in order, moving on only when one cannot be connected to,
    before anything was sent), while ``Host``, TLS SNI and certificate verification use ``target.host``.
    ``timeout`` bounds connecting and each wait for data; a receiver trickling bytes is bounded by the
    function's own timeout.
    """
    from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError, ReadTimeoutError, SSLError

    request_headers = {name: value for name, value in headers.items() if name.lower() not in _OUR_HEADERS}
    request_headers.update({"Host": target.authority, "Content-Type": "application/json", "User-Agent": USER_AGENT})
    failure = DeliveryResult(delivered=False, retryable=True, status=None, reason=f"{target.host} has no address")
    for address in target.addresses:
        where = f"{target.host} ({_bracketed(address)}:{target.port})"
        pool = _connection_pool(target, address, timeout)
        try:
            response = pool.urlopen(
                "POST",
                target.path_with_query,
                body=payload,
                headers=request_headers,
                retries=False,
                redirect=False,
                preload_content=False,
            )
            try:
                return _classify(response.status, response.headers.get("Location"), _response_excerpt(response))
            finally:
                response.close()
        except NewConnectionError as error:
            failure = _retryable(f"could not connect to {where}: {error.__cause__ or error}")
        except ConnectTimeoutError:
            failure = _retryable(f"connecting to {where} timed out after {timeout:g}s")
        except ReadTimeoutError:
            return _retryable(f"{where} timed out after {timeout:g}s without answering")
        except SSLError as error:
            return _retryable(f"TLS with {where} failed: {error}")
        except (HTTPError, OSError) as error:
            return _retryable(f"request to {where} failed: {error}")
        finally:
            pool.close()
    return failure


def retry_delay(attempt: int, *, base: float = 2.0, cap: float = 300.0, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, ...): exponential backoff with full jitter.

    Full jitter spreads the retries of many failed webhooks over the whole window instead of bunching them
    at the same instants, which is what knocked the receiver over in the first place.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts from 1; got {attempt}")
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 64))
    return (rng or random).uniform(0.0, ceiling)


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


def _connection_pool(target: CallbackTarget, address: str, timeout: float) -> HTTPConnectionPool:
    from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, Timeout

    limits = Timeout(connect=timeout, read=timeout)
    if target.scheme == "https":
        return HTTPSConnectionPool(
            address,
            target.port,
            timeout=limits,
            retries=False,
            maxsize=1,
            cert_reqs="CERT_REQUIRED",
            server_hostname=target.host,
            assert_hostname=target.host,
        )
    return HTTPConnectionPool(address, target.port, timeout=limits, retries=False, maxsize=1)


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
