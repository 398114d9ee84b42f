"""Watch tokens: a short-lived, signed grant to watch one report of one tenant over the WebSocket.

``<payload>.<signature>``, both base64url: the payload names the report, the tenant and the expiry;
the signature is HMAC-SHA256 under a key only the functions know. Stateless, so ``$connect`` and
``subscribe`` can check a token without a table read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from reports.errors import ReportsError

WATCH_TOKEN_SECONDS = 15 * 60


class WatchTokenError(ReportsError):
    """A missing, malformed, forged or expired watch token."""


@dataclass(frozen=True)
class WatchGrant:
    report_id: str
    tenant: str
    expires_at: int


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(key: str, payload: str) -> str:
    return _encode(hmac.new(key.encode(), _utf8(payload), hashlib.sha256).digest())


def _utf8(text: str) -> bytes:
    """Any str encodes, lone surrogates too (a JSON ``subscribe`` body can carry ``"\\ud800"``)."""
    return text.encode("utf-8", errors="surrogatepass")


def _signature_matches(key: str, payload: str, signature: str) -> bool:
    """Constant-time, on bytes: ``hmac.compare_digest`` raises TypeError for a str that is not ASCII,
    and a token arrives from anyone (``abc.é`` must be a refusal, not a 500)."""
    expected = _signature(key, payload).encode()
    return hmac.compare_digest(_utf8(signature), expected)


def issue_watch_token(
    key: str, *, report_id: str, tenant: str, now: datetime, seconds: int = WATCH_TOKEN_SECONDS
) -> str:
    expires = int((now + timedelta(seconds=seconds)).timestamp())
    payload = _encode(json.dumps({"r": report_id, "t": tenant, "e": expires}, separators=(",", ":")).encode())
    return f"{payload}.{_signature(key, payload)}"


def verify_watch_token(key: str, token: object, *, now: datetime) -> WatchGrant:
    """The grant a token carries; ``WatchTokenError`` for anything else, whatever a client sent."""
    if not token:
        raise WatchTokenError("a watch token is required (the report's _links.websocket.href carries one)")
    if not isinstance(token, str):
        raise WatchTokenError("the watch token is not valid")
    payload, _, signature = token.partition(".")
    if not payload or not signature or not _signature_matches(key, payload, signature):
        raise WatchTokenError("the watch token is not valid")
    try:
        data = json.loads(_decode(payload))
        grant = WatchGrant(report_id=str(data["r"]), tenant=str(data["t"]), expires_at=int(data["e"]))
    except (ValueError, KeyError, TypeError):
        raise WatchTokenError("the watch token is not valid") from None
    if grant.expires_at < now.timestamp():
        raise WatchTokenError("the watch token has expired; GET the report for a fresh link")
    return grant
