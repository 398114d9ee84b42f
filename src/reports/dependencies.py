"""Wiring: each adapter built once per process from settings and the shared clients.

Handlers call these factories; tests swap the environment under moto and call
``clear_dependencies()`` so the next call builds against it.
"""

from __future__ import annotations

from functools import cache

from reports import clients
from reports.files import ReportFiles
from reports.idempotency import DynamoIdempotencyStore
from reports.jobs import JobQueue
from reports.retrieval import DurationEstimates
from reports.sales_archive import SalesArchive
from reports.settings import settings
from reports.store import DynamoReportStore


@cache
def report_store() -> DynamoReportStore:
    return DynamoReportStore(clients.dynamodb(), settings().reports_table)


@cache
def idempotency_store() -> DynamoIdempotencyStore:
    config = settings()
    return DynamoIdempotencyStore(
        clients.dynamodb(), config.idempotency_table, expires_seconds=config.idempotency_expires_seconds
    )


@cache
def job_queue() -> JobQueue:
    return JobQueue(clients.sqs(), settings().jobs_queue_url)


@cache
def report_files() -> ReportFiles:
    return ReportFiles(clients.s3(), settings().files_bucket)


@cache
def sales_archive() -> SalesArchive:
    return SalesArchive(clients.s3(), settings().sales_bucket)


@cache
def duration_estimates() -> DurationEstimates:
    return DurationEstimates(report_store())


def clear_dependencies() -> None:
    for factory in (report_store, idempotency_store, job_queue, report_files, sales_archive, duration_estimates):
        factory.cache_clear()
    settings.cache_clear()
    clients.clear_clients()
