"""Use case: tell everyone who asked that a report changed.

Fed by the Reports table's stream, so every committed change is seen exactly once per stream
record and no channel can miss one: each watching WebSocket gets ``report.updated`` (a gone
connection is forgotten and never stops the others), and a move to COMPLETED or FAILED is
published once on the ReportEvents topic, with message attributes for subscription filters.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reports.errors import ReportsError
from reports.http import report_resource
from reports.model import Report, ReportStatus
from reports.store import ReportStore
from reports.watchers import ConnectionStore

logger = logging.getLogger(__name__)

UPDATED = "report.updated"
EVENT_TYPES = {ReportStatus.COMPLETED: "report.completed", ReportStatus.FAILED: "report.failed"}


class Pusher:
    """The WebSocket API's @connections endpoint."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def push(self, connection_id: str, message: dict[str, Any]) -> bool:
        """False when the connection is gone (410); other failures are logged, and the others still get theirs."""
        try:
            self._client.post_to_connection(ConnectionId=connection_id, Data=json.dumps(message).encode())
        except self._client.exceptions.GoneException:
            return False
        except Exception:
            logger.warning("push failed", extra={"connection_id": connection_id}, exc_info=True)
        return True


class EventPublisher:
    """The ReportEvents topic."""

    def __init__(self, client: Any, topic_arn: str) -> None:
        self._client = client
        self._topic_arn = topic_arn

    def publish(self, message: dict[str, Any], attributes: dict[str, str]) -> None:
        try:
            self._client.publish(
                TopicArn=self._topic_arn,
                Message=json.dumps(message, separators=(",", ":")),
                MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
            )
        except Exception as error:
            raise ReportsError(f"could not publish to the ReportEvents topic: {error}") from error


@dataclass(frozen=True)
class Notified:
    pushed: int
    forgotten: int
    published: bool


def updated_message(report: Report, pdf_uri: str | None = None) -> dict[str, Any]:
    return {"type": UPDATED, "report": report_resource(report, base_path="", pdf_uri=pdf_uri)}


def final_event(report: Report, *, timestamp: datetime, pdf_uri: str | None = None) -> dict[str, Any]:
    """The webhook and SNS event: ``{"type", "timestamp", "data": report}`` (DESIGN.md)."""
    return {
        "type": EVENT_TYPES[report.status],
        "timestamp": timestamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "data": report_resource(report, base_path="", pdf_uri=pdf_uri),
    }


def notify_change(
    old: Report | None,
    new: Report,
    *,
    watchers: ConnectionStore,
    pusher: Pusher,
    publisher: EventPublisher,
    now: datetime,
    presign: Callable[[Report], str | None] = lambda report: None,
) -> Notified:
    if old is not None and old.version == new.version:
        return Notified(0, 0, False)  # bookkeeping only (a callback settled): nothing a watcher sees
    pdf_uri = presign(new) if new.completed else None
    message = updated_message(new, pdf_uri)
    pushed = forgotten = 0
    for connection_id in watchers.watchers(new.id):
        if not watchers.claim_push(connection_id, new.id, new.version):
            continue  # already sent this version or a newer one (the replay at connection won the race)
        if pusher.push(connection_id, message):
            pushed += 1
        else:
            watchers.forget_watch(connection_id, new.id)
            forgotten += 1
    published = False
    if new.status.is_final and (old is None or old.status != new.status):
        publisher.publish(
            final_event(new, timestamp=now, pdf_uri=pdf_uri),
            {
                "eventType": EVENT_TYPES[new.status],
                "reportType": new.report_type,
                "status": new.status.value,
                "tenant": new.tenant,
                "hasCallback": "true" if new.callback_url else "false",
            },
        )
        published = True
    return Notified(pushed, forgotten, published)


def replay_current_state(
    connection_id: str,
    report_id: str,
    *,
    store: ReportStore,
    watchers: ConnectionStore,
    pusher: Pusher,
    presign: Callable[[Report], str | None] = lambda report: None,
) -> bool:
    """A new watcher gets the report as it is now, so connecting after completion still tells it."""
    report = store.get(report_id)
    if report is None:
        return False
    if not watchers.claim_push(connection_id, report_id, report.version):
        return True  # a change already brought this version (or a newer one) to the watcher
    if pusher.push(connection_id, updated_message(report, presign(report) if report.completed else None)):
        return True
    watchers.forget_watch(connection_id, report_id)
    return False
