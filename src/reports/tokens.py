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
    return _encode(hmac.new(key.encode(), payload.encode(), hashlib.sha256).digest())


def issue_watch_token(
    key: str, *, report_id: str, tenant: str, now: datetime, seconds: int = WATCH_TOKEN_SECONDS
) -> str:
    expires = int((now + timedelta(seconds=seconds)).timestamp())
    payload = _encode(json.dumps({"r": report_id, "t": tenant, "e": expires}, separators=(",", ":")).encode())
    return f"{payload}.{_signature(key, payload)}"


def verify_watch_token(key: str, token: str | None, *, now: datetime) -> WatchGrant:
    if not token:
        raise WatchTokenError("a watch token is required (the report's _links.websocket.href carries one)")
    payload, _, signature = token.partition(".")
    if not payload or not signature or not hmac.compare_digest(signature, _signature(key, payload)):
        raise WatchTokenError("the watch token is not valid")
    try:
        data = json.loads(_decode(payload))
        grant = WatchGrant(report_id=str(data["r"]), tenant=str(data["t"]), expires_at=int(data["e"]))
    except (ValueError, KeyError, TypeError):
        raise WatchTokenError("the watch token is not valid") from None
    if grant.expires_at < now.timestamp():
        raise WatchTokenError("the watch token has expired; GET the report for a fresh link")
    return grant
