"""Use case: deliver a report's callback, signed, by one copy of its event at a time.

The Callbacks queue carries the ReportEvents message; the Reports table says where to send it, whether it
was settled already, and who is delivering it now. SNS and SQS deliver at least once, so a copy first takes
the callback's lease (``callback_leases``): a copy that finds another delivering comes back later instead of
POSTing alongside it, and one that finds the callback settled does nothing. Every attempt of one event carries
the same ``webhook-id``, so a receiver can still drop the one repeat this cannot rule out: a POST whose answer
we never recorded (the function stopped between the two), sent again once its lease has lapsed.

Attempts are counted on the report, not by SQS receives, and when the last one fails the report records
``callbackStatus: exhausted`` before the message is set aside in the dead-letter queue.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from reports.callback_leases import Busy, CallbackLeases, Lease
from reports.callbacks import Resolver, check_delivery_target
from reports.errors import CallbackHostUnresolvableError, ValidationError
from reports.model import Report
from reports.store import ReportStore
from reports.webhooks import (
    ATTEMPT_BUDGET_SECONDS,
    CONNECT_READ_TIMEOUT_SECONDS,
    MIN_RETRY_DELAY,
    STANDARD_RETRY_SCHEDULE,
    deliver,
    retry_delay,
    sign,
    webhook_message_id,
    webhook_payload,
)

logger = logging.getLogger(__name__)

DELIVERED = "delivered"
GONE = "gone"
REFUSED = "refused"
EXHAUSTED = "exhausted"

TIME_MARGIN_SECONDS = 5.0
"""What one record needs besides the POST itself: DNS, the lease, settling, the queue."""
LEASE_SECONDS = 60.0
"""Longer than WebhookFunction's timeout, so a lease lapses only when its holder has certainly stopped."""


class Verdict(StrEnum):
    DONE = "done"
    """Delivered, gone (410), refused, or nothing owed: acknowledge the message."""
    RETRY = "retry"
    """An attempt failed: the message comes back after ``retry_in`` seconds for the next one."""
    DEFER = "defer"
    """Not attempted (another copy is delivering, or this invocation is out of time): back in ``retry_in``."""
    DEAD_LETTER = "dead_letter"
    """The attempts ran out, and the report says so: set the message aside in the dead-letter queue."""


@dataclass(frozen=True)
class DeliveryOutcome:
    verdict: Verdict
    reason: str
    status: int | None = None
    retry_in: float = 0.0
    attempt: int | None = None


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard to try: attempts, the wait between them, and how long one may take."""

    max_attempts: int
    retry_schedule: tuple[float, ...] = STANDARD_RETRY_SCHEDULE
    allow_loopback: bool = False
    timeout: float = CONNECT_READ_TIMEOUT_SECONDS
    budget: float = ATTEMPT_BUDGET_SECONDS
    lease_seconds: float = LEASE_SECONDS

    @property
    def time_needed(self) -> float:
        """Seconds of invocation a record needs before it may be tried."""
        return self.budget + TIME_MARGIN_SECONDS


def deliver_callback(
    message: str,
    *,
    store: ReportStore,
    leases: CallbackLeases,
    secret: str,
    now: datetime,
    time_left: float,
    policy: DeliveryPolicy,
    resolve: Resolver | None = None,
    presign: Callable[[Report], str | None] = lambda report: None,
) -> DeliveryOutcome:
    """Try the callback ``message`` announces once, if it is owed, free and there is ``time_left`` to finish.

    A completed report's ``pdfUri`` is presigned again for each attempt: the one in the event was
    good for minutes, and a retry may come hours later. Only that field differs between attempts;
    the ``webhook-id`` stays the same."""
    event = json.loads(message)
    report_id, event_type = str(event["data"]["id"]), str(event["type"])
    report = store.get(report_id)
    settled = _settled(report)
    if settled is not None or report is None or report.callback_url is None:
        return settled or DeliveryOutcome(Verdict.DONE, "no callback is owed")
    if time_left < policy.time_needed:
        # Returned untried and visible at once: another invocation, with its whole timeout, takes it.
        return DeliveryOutcome(
            Verdict.DEFER, f"{time_left:.1f}s left in this invocation; an attempt may need {policy.time_needed:g}s"
        )
    claim = leases.claim(report_id, now, policy.lease_seconds)
    if isinstance(claim, Busy):
        return _busy(claim, store.get(report_id), now)
    try:
        target = check_delivery_target(report.callback_url, allow_loopback=policy.allow_loopback, resolve=resolve)
    except CallbackHostUnresolvableError as error:
        return _failed(claim, error.detail, None, store=store, leases=leases, now=now, policy=policy)
    except ValidationError as error:
        # It passed at submit time; its host now resolves somewhere it must not go.
        store.settle_callback(report_id, REFUSED, now)
        logger.warning("callback refused at delivery", extra={"report_id": report_id, "detail": error.detail})
        return DeliveryOutcome(Verdict.DONE, error.detail, attempt=claim.attempt)
    occurred = datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00"))
    data = dict(event["data"])
    if report.completed and (fresh := presign(report)):
        data["pdfUri"] = fresh
    payload = webhook_payload(event_type, data, occurred)
    headers = sign(secret, webhook_message_id(report_id, event_type), now, payload)
    result = deliver(target, payload, headers, timeout=policy.timeout, budget=policy.budget)
    if result.delivered:
        store.settle_callback(report_id, DELIVERED, now)
        return DeliveryOutcome(Verdict.DONE, "delivered", result.status, attempt=claim.attempt)
    if result.gone:
        store.settle_callback(report_id, GONE, now)
        return DeliveryOutcome(Verdict.DONE, "the receiver answered 410 Gone", result.status, attempt=claim.attempt)
    return _failed(claim, result.reason, result.status, store=store, leases=leases, now=now, policy=policy)


def _settled(report: Report | None) -> DeliveryOutcome | None:
    if report is None or not report.callback_status:
        return None
    if report.callback_status == EXHAUSTED:
        # Recorded, but the message may not have reached the dead-letter queue yet (or this is another copy).
        return DeliveryOutcome(Verdict.DEAD_LETTER, "its attempts ran out earlier")
    return DeliveryOutcome(Verdict.DONE, f"already {report.callback_status}")


def _busy(claim: Busy, report: Report | None, now: datetime) -> DeliveryOutcome:
    settled = _settled(report)
    if settled is not None:
        return settled
    if report is None or report.callback_url is None:
        return DeliveryOutcome(Verdict.DONE, "no callback is owed")
    if claim.until is None:
        # The lease was released between our claim and our look: free again, so try again soon.
        return DeliveryOutcome(Verdict.DEFER, "another copy has just finished an attempt", retry_in=MIN_RETRY_DELAY)
    wait = max(MIN_RETRY_DELAY, claim.until - now.timestamp())
    return DeliveryOutcome(Verdict.DEFER, f"another copy is delivering it (for up to {wait:.0f}s)", retry_in=wait)


def _failed(
    lease: Lease,
    reason: str,
    status: int | None,
    *,
    store: ReportStore,
    leases: CallbackLeases,
    now: datetime,
    policy: DeliveryPolicy,
) -> DeliveryOutcome:
    if lease.attempt >= policy.max_attempts:
        store.settle_callback(lease.report_id, EXHAUSTED, now)
        logger.warning(
            "callback attempts exhausted",
            extra={"report_id": lease.report_id, "attempts": lease.attempt, "reason": reason},
        )
        return DeliveryOutcome(
            Verdict.DEAD_LETTER,
            f"attempt {lease.attempt} of {policy.max_attempts} failed ({reason}); no more attempts",
            status,
            attempt=lease.attempt,
        )
    leases.release(lease)
    delay = retry_delay(lease.attempt, schedule=policy.retry_schedule)
    return DeliveryOutcome(Verdict.RETRY, reason, status, retry_in=delay, attempt=lease.attempt)
