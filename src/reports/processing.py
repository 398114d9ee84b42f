"""Use case: turn a queued job into a PDF, exactly once, whatever SQS redelivers.

Retryable faults (an outage, a crash) propagate so SQS delivers the job again and, after
``maxReceiveCount`` receives, moves it to the dead-letter queue, where ``abandon_job`` marks the
report FAILED. Faults that no retry can cure (``ReportFailure``: no data, unknown type) fail the
report at once and acknowledge the job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from reports.catalog import RenderInput, ReportDefinition, get_definition
from reports.errors import NoDataError, ReportFailure, ReportsError, TransitionRejectedError, UnknownReportTypeError
from reports.files import ReportFiles, pdf_key
from reports.jobs import Job
from reports.model import Progress, Report, ReportErrorInfo, utc_now
from reports.sales_archive import SalesArchive
from reports.store import ReportStore

logger = logging.getLogger(__name__)

ABANDONED = "PROCESSING_FAILED"


class Outcome(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    """Nothing to do: the report is gone, already final, or finished by a concurrent delivery."""


@dataclass(frozen=True)
class ProcessResult:
    outcome: Outcome
    report: Report | None
    rendered: bool = False


class ProgressWriter:
    """Writes steps to the store. Progress is advisory: a lost progress write never fails a report."""

    def __init__(self, store: ReportStore, report_id: str, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._report_id = report_id
        self._clock = clock

    def __call__(self, step: str, percent: int) -> None:
        try:
            self._store.set_progress(self._report_id, Progress(step, percent), self._clock())
        except TransitionRejectedError:
            logger.info("progress not recorded", extra={"report_id": self._report_id, "step": step})
        except ReportsError:
            logger.warning("progress write failed", extra={"report_id": self._report_id}, exc_info=True)


def process_job(
    job: Job,
    *,
    store: ReportStore,
    files: ReportFiles,
    sales: SalesArchive,
    catalog: Callable[[str], ReportDefinition | None] = get_definition,
    clock: Callable[[], datetime] = utc_now,
) -> ProcessResult:
    report = store.get(job.report_id)
    if report is None or report.status.is_final:
        logger.info("job needs no work", extra={"report_id": job.report_id})
        return ProcessResult(Outcome.SKIPPED, report)
    try:
        report = store.start(report.id, clock())
    except TransitionRejectedError:
        return ProcessResult(Outcome.SKIPPED, store.get(job.report_id))

    key = pdf_key(report.tenant, report.id)
    rendered = False
    try:
        if files.pdf_exists(key, report_id=report.id):
            # An earlier delivery uploaded the PDF and died before recording it: reuse it.
            logger.info("reusing uploaded PDF", extra={"report_id": report.id})
        else:
            pdf = _render(report, store=store, sales=sales, catalog=catalog, clock=clock)
            rendered = True
            ProgressWriter(store, report.id, clock)("uploading", 90)
            files.put_pdf(key, pdf, report_id=report.id)
    except ReportFailure as failure:
        return _fail(store, report, ReportErrorInfo(failure.code, failure.message), clock)

    try:
        report = store.complete(report.id, key, clock())
    except TransitionRejectedError:
        return ProcessResult(Outcome.SKIPPED, store.get(job.report_id), rendered)
    if report.completed_at is not None:
        try:
            store.record_duration(report.report_type, (report.completed_at - report.created_at).total_seconds())
        except ReportsError:
            logger.warning("duration not recorded", extra={"report_id": report.id}, exc_info=True)
    return ProcessResult(Outcome.COMPLETED, report, rendered)


def _render(
    report: Report,
    *,
    store: ReportStore,
    sales: SalesArchive,
    catalog: Callable[[str], ReportDefinition | None],
    clock: Callable[[], datetime],
) -> bytes:
    definition = catalog(report.report_type)
    if definition is None:
        raise UnknownReportTypeError(f"report type {report.report_type} is no longer offered")
    progress = ProgressWriter(store, report.id, clock)
    progress("fetching data", 10)
    start, end = definition.period(report.report_date)
    records = sales.load(start, end)
    if not records:
        period = start.isoformat() if start == end else f"{start.isoformat()} to {end.isoformat()}"
        raise NoDataError(f"there are no sales records for {period}")
    return definition.render(
        RenderInput(
            report_id=report.id,
            report_date=report.report_date,
            start=start,
            end=end,
            records=records,
            generated_at=clock(),
            progress=progress,
        )
    )


def _fail(store: ReportStore, report: Report, error: ReportErrorInfo, clock: Callable[[], datetime]) -> ProcessResult:
    try:
        failed = store.fail(report.id, error, clock())
    except TransitionRejectedError:
        return ProcessResult(Outcome.SKIPPED, store.get(report.id))
    logger.info("report failed", extra={"report_id": report.id, "code": error.code})
    return ProcessResult(Outcome.FAILED, failed)


def abandon_job(job: Job, *, store: ReportStore, clock: Callable[[], datetime] = utc_now) -> ProcessResult:
    """A job that exhausted its receives in the dead-letter queue: its report fails, visibly."""
    report = store.get(job.report_id)
    if report is None or report.status.is_final:
        return ProcessResult(Outcome.SKIPPED, report)
    message = (
        f"the report could not be produced after {max(report.attempts, 1)} attempts; "
        "the failure was logged for the operators"
    )
    try:
        failed = store.fail(job.report_id, ReportErrorInfo(ABANDONED, message), clock())
    except TransitionRejectedError:
        return ProcessResult(Outcome.SKIPPED, store.get(job.report_id))
    logger.error("report abandoned after retries", extra={"report_id": job.report_id, "attempts": report.attempts})
    return ProcessResult(Outcome.FAILED, failed)
