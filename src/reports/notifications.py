"""Use case: tell everyone who asked that a report changed.

Fed by the Reports table's stream, so no committed change is missed: each watching WebSocket gets
``report.updated`` for every version, in order, each once, and a move to COMPLETED or FAILED is
published on the ReportEvents topic, with message attributes for subscription filters.

Delivery is at least once, never at most once: a push is claimed before it is sent (see
``reports.watchers``), and a push that may succeed later (throttled, 5xx, network) gives its claim
back and fails the stream record, after the other watchers got theirs, so the stream's retry sends
that version again. Only a gone connection (410) is not retried: it is forgotten, every watch of it.
A final event is published once per event id: a marker on the Idempotency table records that SNS
accepted it, so a stream retry (which resumes from the first failed record, and so re-runs the ones
after it) does not publish it again. Only a crash between SNS accepting it and the marker's write
publishes it twice, with the same ``eventId`` both times, for subscribers to de-duplicate.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from reports.errors import ReportsError, StoreUnavailableError
from reports.http import report_resource
from reports.model import Report, ReportStatus
from reports.store import ReportStore
from reports.watchers import ConnectionStore, PushClaim
from reports.webhooks import webhook_message_id

logger = logging.getLogger(__name__)

UPDATED = "report.updated"
EVENT_TYPES = {ReportStatus.COMPLETED: "report.completed", ReportStatus.FAILED: "report.failed"}
PUBLISHED_MARKER_LIFETIME = timedelta(days=7)
"""Longer than a stream record can be retried (DynamoDB Streams keep records 24 hours)."""


class PushFailedError(ReportsError):
    """A push that may go through if tried again: throttled, a 5xx, or no answer."""


class ChangeHeldBackError(ReportsError):
    """A report's later change, not sent because an earlier one failed in the same batch."""


class PushResult(StrEnum):
    SENT = "sent"
    GONE = "gone"
    """410: the connection is closed; it will never take a message again."""
    REFUSED = "refused"
    """The message can never be sent as it is (too large); retrying would change nothing."""


class Pusher:
    """The WebSocket API's @connections endpoint."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def push(self, connection_id: str, message: dict[str, Any]) -> PushResult:
        """``PushFailedError`` when another try may succeed; a gone connection or a message that can
        never be sent is an answer, not an error."""
        try:
            self._client.post_to_connection(ConnectionId=connection_id, Data=json.dumps(message).encode())
        except self._client.exceptions.GoneException:
            return PushResult.GONE
        except self._client.exceptions.PayloadTooLargeException:
            logger.error("push refused: message too large", extra={"connection_id": connection_id})
            return PushResult.REFUSED
        except Exception as error:
            raise PushFailedError(f"could not push to connection {connection_id}: {error}") from error
        return PushResult.SENT

    def reply(self, connection_id: str, message: dict[str, Any]) -> None:
        """An answer to the client's own message (pong, an error): best effort, as the client can ask again."""
        try:
            self.push(connection_id, message)
        except PushFailedError:
            logger.warning("reply failed", extra={"connection_id": connection_id}, exc_info=True)


class PublishedEvents:
    """Which final events the ReportEvents topic accepted: one marker item per event on the
    Idempotency table (``published:<eventId>``, which no idempotency key's ``tenant#key`` can be).
    That table has no stream, so a marker triggers nothing."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def was_published(self, event_id: str) -> bool:
        try:
            answer = self._client.get_item(TableName=self._table, Key=self._key(event_id), ConsistentRead=True)
        except Exception as error:
            raise StoreUnavailableError(f"could not read the published-event marker: {error}") from error
        return "Item" in answer

    def record(self, event_id: str, now: datetime) -> None:
        expires = int((now + PUBLISHED_MARKER_LIFETIME).timestamp())
        try:
            self._client.put_item(
                TableName=self._table,
                Item=self._key(event_id) | {"status": {"S": "PUBLISHED"}, "expiration": {"N": str(expires)}},
                ConditionExpression="attribute_not_exists(id)",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return  # recorded already
        except Exception as error:
            raise StoreUnavailableError(f"could not record the published event: {error}") from error

    @staticmethod
    def _key(event_id: str) -> dict[str, Any]:
        return {"id": {"S": f"published:{event_id}"}}


class EventPublisher:
    """The ReportEvents topic, publishing each event id once (see ``PublishedEvents``)."""

    def __init__(self, client: Any, topic_arn: str, published: PublishedEvents) -> None:
        self._client = client
        self._topic_arn = topic_arn
        self._published = published

    def publish_once(self, event_id: str, message: dict[str, Any], attributes: dict[str, str], now: datetime) -> bool:
        """False when this event was published already. ``eventId`` goes in the message and its attributes."""
        if self._published.was_published(event_id):
            return False
        try:
            self._client.publish(
                TopicArn=self._topic_arn,
                Message=json.dumps({"eventId": event_id} | message, separators=(",", ":")),
                MessageAttributes={
                    name: {"DataType": "String", "StringValue": value}
                    for name, value in ({"eventId": event_id} | attributes).items()
                },
            )
        except Exception as error:
            raise ReportsError(f"could not publish to the ReportEvents topic: {error}") from error
        try:
            self._published.record(event_id, now)
        except StoreUnavailableError:
            # Published: failing the record now would only publish it again. A later retry of this
            # record may still do so; it carries the same eventId.
            logger.warning("published event not recorded", extra={"event_id": event_id}, exc_info=True)
        return True


@dataclass(frozen=True)
class Notified:
    pushed: int
    forgotten: int
    published: bool


class BatchOrder:
    """One stream batch: once a report's change failed, its later changes in the batch fail too,
    unsent. The stream's retry resumes from the first failed record, so they come again after it,
    in order; sent now, they would claim newer versions and the retried one would be refused."""

    def __init__(self) -> None:
        self._failed: set[str] = set()

    @contextmanager
    def change_of(self, report_id: str) -> Iterator[None]:
        if report_id in self._failed:
            raise ChangeHeldBackError(f"an earlier change of report {report_id} failed in this batch")
        try:
            yield
        except Exception:
            self._failed.add(report_id)
            raise


def updated_message(report: Report, *, base_path: str, pdf_uri: str | None = None) -> dict[str, Any]:
    return {"type": UPDATED, "report": report_resource(report, base_path=base_path, pdf_uri=pdf_uri)}


def final_event_id(report: Report) -> str:
    """The id of a report's final event: the ``webhook-id`` its callback carries, on SNS as ``eventId``."""
    return webhook_message_id(report.id, EVENT_TYPES[report.status])


def final_event(report: Report, *, timestamp: datetime, base_path: str, pdf_uri: str | None = None) -> dict[str, Any]:
    """The webhook and SNS event: ``{"type", "timestamp", "data": report}`` (DESIGN.md)."""
    return {
        "type": EVENT_TYPES[report.status],
        "timestamp": timestamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "data": report_resource(report, base_path=base_path, pdf_uri=pdf_uri),
    }


def notify_change(
    old: Report | None,
    new: Report,
    *,
    watchers: ConnectionStore,
    pusher: Pusher,
    publisher: EventPublisher,
    now: datetime,
    deadline: datetime,
    base_path: str,
    presign: Callable[[Report], str | None] = lambda report: None,
) -> Notified:
    """Push ``new`` to every watcher and publish it if final. Raises ``PushFailedError`` after the
    others were served when a push to one may succeed later, so the stream sends the change again
    (watchers already sent it are not sent it twice). ``deadline``: when this invocation ends."""
    if old is not None and old.version == new.version:
        return Notified(0, 0, False)  # bookkeeping only (a callback settled): nothing a watcher sees
    pdf_uri = presign(new) if new.completed else None
    message = updated_message(new, base_path=base_path, pdf_uri=pdf_uri)
    pushed = forgotten = 0
    failures: list[ReportsError] = []
    for connection_id in watchers.watchers(new.id):
        try:
            claim = watchers.claim_push(connection_id, new.id, new.version, now=now, lease_until=deadline)
            if claim is None:
                continue  # sent already (a retry, or the replay at connection won the race)
            result = _send(claim, message, watchers=watchers, pusher=pusher)
        except (PushFailedError, StoreUnavailableError) as error:
            logger.warning("push to a watcher failed", extra={"connection_id": connection_id, "error": str(error)})
            failures.append(error)
            continue
        pushed += result is PushResult.SENT
        forgotten += result is PushResult.GONE
    published = False
    if new.status.is_final and (old is None or old.status != new.status):
        published = publisher.publish_once(
            final_event_id(new),
            final_event(new, timestamp=now, base_path=base_path, pdf_uri=pdf_uri),
            {
                "eventType": EVENT_TYPES[new.status],
                "reportType": new.report_type,
                "status": new.status.value,
                "tenant": new.tenant,
                "hasCallback": "true" if new.callback_url else "false",
            },
            now,
        )
    if failures:
        raise PushFailedError(f"{len(failures)} watcher(s) of report {new.id} not sent version {new.version}")
    return Notified(pushed, forgotten, published)


def replay_current_state(
    connection_id: str,
    report_id: str,
    *,
    store: ReportStore,
    watchers: ConnectionStore,
    pusher: Pusher,
    now: datetime,
    deadline: datetime,
    base_path: str,
    presign: Callable[[Report], str | None] = lambda report: None,
) -> PushResult | None:
    """A new watcher gets the report as it is now, so connecting after completion still tells it,
    unless the stream has begun sending it the report's changes: then those are its first message,
    and every one after it follows in order. None when nothing was sent."""
    report = store.get(report_id)
    if report is None:
        return None
    claim = watchers.claim_first_push(connection_id, report_id, report.version, now=now, lease_until=deadline)
    if claim is None:
        return None
    message = updated_message(report, base_path=base_path, pdf_uri=presign(report) if report.completed else None)
    return _send(claim, message, watchers=watchers, pusher=pusher)


def _send(claim: PushClaim, message: dict[str, Any], *, watchers: ConnectionStore, pusher: Pusher) -> PushResult:
    try:
        result = pusher.push(claim.connection_id, message)
    except PushFailedError:
        try:
            watchers.release_push(claim)
        except StoreUnavailableError:  # the claim's lease runs out instead, and the retry takes it
            logger.warning("push claim not given back", extra={"connection_id": claim.connection_id}, exc_info=True)
        raise
    if result is PushResult.GONE:
        watchers.forget_connection(claim.connection_id)
        return result
    try:
        watchers.confirm_push(claim)
    except StoreUnavailableError:  # sent: at worst a retry after the lease sends it again
        logger.warning("push not confirmed", extra={"connection_id": claim.connection_id}, exc_info=True)
    return result
