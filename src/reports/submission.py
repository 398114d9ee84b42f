"""Use case: accept a report request. Storage first, then the queue; nothing left half-done."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from reports.errors import EnqueueError, ReportsError, TransitionRejectedError
from reports.idempotency import Claim, IdempotencyInFlightError, IdempotencyStore
from reports.jobs import Job, JobQueue
from reports.model import Report, ReportRequest, ReportStatus, epoch_seconds, new_report_id
from reports.store import ReportStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Submission:
    report: Report
    replayed: bool
    """True when an Idempotency-Key matched an earlier request and its report is returned."""


def submit_report(
    request: ReportRequest,
    *,
    tenant: str,
    idempotency_key: str | None,
    store: ReportStore,
    queue: JobQueue,
    idempotency: IdempotencyStore,
    now: datetime,
    retention_days: int,
    new_id: Callable[[datetime], str] = new_report_id,
) -> Submission:
    """Persist the report as QUEUED, then enqueue its job.

    If the queue refuses the job, the report is deleted again (and the key released) before the
    error reaches the client, so no record waits QUEUED for a job that does not exist.
    """
    report_id = new_id(now)
    claim: Claim | None = None
    if idempotency_key:
        claim = idempotency.claim(tenant, idempotency_key, request.canonical(), report_id, now)
        if not claim.fresh:
            earlier = store.get(claim.report_id)
            if earlier is not None and earlier.tenant == tenant:
                return Submission(earlier, replayed=True)
            if claim.in_flight_until >= epoch_seconds(now):
                raise IdempotencyInFlightError("a request with this Idempotency-Key is still being processed")
            claim = idempotency.take_over(claim, now)
        report_id = claim.report_id

    report = Report(
        id=report_id,
        tenant=tenant,
        report_type=request.report_type,
        report_date=request.report_date,
        status=ReportStatus.QUEUED,
        created_at=now,
        updated_at=now,
        expires_at=epoch_seconds(now + timedelta(days=retention_days)),
        callback_url=request.callback_url,
    )
    try:
        store.create(report)
    except TransitionRejectedError:
        # Same id already stored: a racing retry of this very key got there first.
        earlier = store.get(report_id)
        if earlier is not None and earlier.tenant == tenant:
            return Submission(earlier, replayed=True)
        raise
    except ReportsError:
        _release(idempotency, claim)
        raise

    try:
        queue.enqueue(Job(report_id))
    except EnqueueError:
        _compensate(store, report_id)
        _release(idempotency, claim)
        raise

    if claim is not None:
        try:
            idempotency.complete(claim)
        except ReportsError:
            # The report exists and is queued; a retry with this key will find and replay it.
            logger.warning("idempotency key left in flight", extra={"report_id": report_id}, exc_info=True)
    return Submission(report, replayed=False)


def _compensate(store: ReportStore, report_id: str) -> None:
    try:
        store.delete_queued(report_id)
    except ReportsError:
        logger.error("could not remove report after failed enqueue", extra={"report_id": report_id}, exc_info=True)


def _release(idempotency: IdempotencyStore, claim: Claim | None) -> None:
    if claim is None:
        return
    try:
        idempotency.release(claim)
    except ReportsError:
        logger.warning("could not release idempotency key", extra={"record": claim.record_id}, exc_info=True)
