"""Waiting over the WebSocket API: live progress, and no state lost across a dropped connection.

The server sends the report's current state first on every connection, then every change. So a
reconnect needs no bookkeeping: fetch the report again (its ``_links.websocket.href`` carries a
fresh watch token, and it may already be final), connect, and the replay fills any gap. API
Gateway closes a connection idle for 10 minutes; ``{"action": "ping"}`` every ``ping_interval``
seconds keeps it open (protocol-level pings do not count as activity there).
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import connect

from async_reports_client.errors import AsyncReportsError, ConnectionFailedError, WaitTimeoutError
from async_reports_client.model import Report
from async_reports_client.polling import Backoff, Deadline

if TYPE_CHECKING:
    from async_reports_client.client import Client, _Updates

logger = logging.getLogger("async_reports_client.websocket")

IDLE_LIMIT_SECONDS = 600.0
"""API Gateway closes a WebSocket connection that carried no message for this long."""


def wait_websocket(
    client: Client,
    report: Report | str,
    deadline: Deadline,
    notify: _Updates,
    *,
    ping_interval: float = 300.0,
    backoff: Backoff | None = None,
) -> Report:
    if not 0 < ping_interval < IDLE_LIMIT_SECONDS:
        raise ValueError(f"ping_interval must be between 0 and {IDLE_LIMIT_SECONDS:g} seconds (the idle limit)")
    backoff = backoff or Backoff(max_interval=30.0)
    current = report if isinstance(report, Report) and report.link("websocket") else client.refresh(report)
    failures = 0
    while True:
        notify(current)
        if current.is_final:
            return current
        href = current.link("websocket")
        if not href:
            raise AsyncReportsError("the API sent no _links.websocket for this report; wait by polling instead")
        try:
            final = _watch(client, href, deadline, notify, ping_interval)
        except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError) as error:
            if isinstance(error, InvalidStatus) and error.response.status_code not in (401, 403, 429, 500, 502, 503):
                raise ConnectionFailedError(f"the WebSocket API refused the connection: {error}") from error
            failures += 1
            delay = deadline.clamp(backoff.delay(failures - 1))
            logger.info("WebSocket lost (%s); reconnecting in %.1f s", _describe(error), delay)
            if deadline.expired:
                raise WaitTimeoutError(deadline.seconds or 0, notify.last.data if notify.last else None) from error
            time.sleep(delay)
            # a fresh token (the old one may have expired: 401/403) and the state now
            current = client.refresh(current)
            continue
        if final is None:
            raise WaitTimeoutError(deadline.seconds or 0, notify.last.data if notify.last else None)
        return final


def _watch(client: Client, href: str, deadline: Deadline, notify: _Updates, ping_interval: float) -> Report | None:
    """One connection: the final report, or None when the deadline passes first."""
    open_timeout = deadline.clamp(10.0) or 0.1
    with connect(href, open_timeout=open_timeout, close_timeout=2, max_size=256 * 1024) as ws:
        client.websocket_connections += 1
        next_ping = time.monotonic() + ping_interval
        while True:
            remaining = deadline.remaining()
            if remaining == 0:
                return None
            until_ping = max(0.0, next_ping - time.monotonic())
            try:
                raw = ws.recv(timeout=until_ping if remaining is None else min(until_ping, remaining))
            except TimeoutError:
                if time.monotonic() >= next_ping:
                    ws.send(json.dumps({"action": "ping"}))
                    client.websocket_pings += 1
                    next_ping = time.monotonic() + ping_interval
                continue
            message = _parse(raw)
            kind = message.get("type")
            if kind == "report.updated" and isinstance(message.get("report"), dict):
                notify(Report(message["report"]))
                if notify.last is not None and notify.last.is_final:
                    return notify.last
            elif kind == "error":
                detail = message.get("detail") or message
                raise ConnectionFailedError(f"the WebSocket API refused the watch: {detail}")


def _parse(raw: str | bytes) -> dict[str, Any]:
    try:
        message = json.loads(raw)
    except ValueError:
        logger.warning("ignoring a WebSocket message that is not JSON: %.80r", raw)
        return {}
    return message if isinstance(message, dict) else {}


def _describe(error: BaseException) -> str:
    if isinstance(error, ConnectionClosed):
        return f"closed with {error.rcvd.code if error.rcvd else 1006}"
    if isinstance(error, InvalidStatus):
        return f"handshake answered {error.response.status_code}"
    return type(error).__name__
