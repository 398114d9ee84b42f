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

ENQUEUE_SECONDS = 7.0
"""Time to try the SQS send and, if it fails, the DynamoDB delete that undoes the report: one
attempt each at the clients' timeouts (1 s to connect, 2 s to read), with margin."""


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
    time_left: Callable[[], float] | None = None,
) -> Submission:
    """Persist the report as QUEUED, then enqueue its job.

    If the queue refuses the job, the report is deleted again (and the key released) before the
    error reaches the client, so no record waits QUEUED for a job that does not exist. With
    ``time_left`` (seconds before the function is stopped), the report is undone rather than left
    behind when too little time remains to enqueue and undo. A retry with the same key of a
    request that died between storing and enqueueing sends the job then.
    """
    report_id = new_id(now)
    claim: Claim | None = None
    if idempotency_key:
        claim = idempotency.claim(tenant, idempotency_key, request.canonical(), report_id, now)
        if not claim.fresh:
            earlier = store.get(claim.report_id)
            mine = earlier is not None and earlier.tenant == tenant
            if earlier is not None and mine and not _job_unconfirmed(earlier, claim):
                return Submission(earlier, replayed=True)
            if claim.in_flight_until >= epoch_seconds(now):
                raise IdempotencyInFlightError("a request with this Idempotency-Key is still being processed")
            claim = idempotency.take_over(claim, now)
            if earlier is not None and mine:
                # Its first request stored the report and died before its job was confirmed: send
                # the job (again; a duplicate job is harmless), so the report cannot wait forever.
                _enqueue(earlier.id, store=store, queue=queue, idempotency=idempotency, claim=claim)
                _complete(idempotency, claim, earlier.id)
                return Submission(earlier, replayed=True)
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

    if time_left is not None and time_left() < ENQUEUE_SECONDS:
        # Not enough time left to enqueue and, if that fails, to undo: undo now, while we can.
        _compensate(store, report_id)
        _release(idempotency, claim)
        raise EnqueueError("ran out of time before the job could be queued")
    _enqueue(report_id, store=store, queue=queue, idempotency=idempotency, claim=claim)
    _complete(idempotency, claim, report_id)
    return Submission(report, replayed=False)


BACKSTOP_DELAY_SECONDS = 900
"""SQS's longest delay: far beyond a render's 60 s timeout, so the backstop job never meets a live
render; it finds the report final and is acknowledged without work."""


def send_backstop_job(stored: Report, *, inserted: bool, queue: JobQueue) -> bool:
    """A second, delayed job for a report just stored QUEUED (from the Reports table's stream).

    The submit path enqueues at once; if its function died between storing the report and
    sending the job (a timeout, a crash), this job renders the report 15 minutes later instead of
    leaving it QUEUED forever. When the first job did its work, this one is a no-op. Only the
    insert of a QUEUED report calls for one (the event source's filter says the same).
    """
    if not inserted or stored.status is not ReportStatus.QUEUED:
        return False
    queue.enqueue(Job(stored.id), delay_seconds=BACKSTOP_DELAY_SECONDS)
    return True


def _job_unconfirmed(report: Report, claim: Claim) -> bool:
    """A QUEUED report whose request never completed its claim may have no job in the queue."""
    return report.status is ReportStatus.QUEUED and claim.in_flight_until > 0


def _enqueue(
    report_id: str, *, store: ReportStore, queue: JobQueue, idempotency: IdempotencyStore, claim: Claim | None
) -> None:
    try:
        queue.enqueue(Job(report_id))
    except EnqueueError:
        _compensate(store, report_id)
        _release(idempotency, claim)
        raise


def _complete(idempotency: IdempotencyStore, claim: Claim | None, report_id: str) -> None:
    if claim is None:
        return
    try:
        idempotency.complete(claim)
    except ReportsError:
        # The report exists and is queued; a retry with this key enqueues it again and replays it.
        logger.warning("idempotency key left in flight", extra={"report_id": report_id}, exc_info=True)


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
