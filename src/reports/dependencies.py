"""Wiring: each adapter built once per process from settings and the shared clients.

Handlers call these factories; tests swap the environment under moto and call
``clear_dependencies()`` so the next call builds against it.
"""

from __future__ import annotations

import base64
from functools import cache
from typing import TYPE_CHECKING

from reports import clients
from reports.settings import SettingsError, settings

if TYPE_CHECKING:  # imported where first needed: each function loads only the adapters it uses
    from reports.files import ReportFiles
    from reports.idempotency import DynamoIdempotencyStore
    from reports.jobs import JobQueue
    from reports.model import Report
    from reports.notifications import EventPublisher, Pusher
    from reports.retrieval import DurationEstimates
    from reports.sales_archive import SalesArchive
    from reports.store import DynamoReportStore
    from reports.watchers import ConnectionStore


@cache
def report_store() -> DynamoReportStore:
    from reports.store import DynamoReportStore

    return DynamoReportStore(clients.dynamodb(), settings().reports_table)


@cache
def idempotency_store() -> DynamoIdempotencyStore:
    from reports.idempotency import DynamoIdempotencyStore

    config = settings()
    return DynamoIdempotencyStore(
        clients.dynamodb(), config.idempotency_table, expires_seconds=config.idempotency_expires_seconds
    )


@cache
def job_queue() -> JobQueue:
    from reports.jobs import JobQueue

    return JobQueue(clients.sqs(), settings().jobs_queue_url)


@cache
def report_files() -> ReportFiles:
    from reports.files import ReportFiles

    return ReportFiles(clients.s3(), settings().files_bucket)


@cache
def sales_archive() -> SalesArchive:
    from reports.sales_archive import SalesArchive

    return SalesArchive(clients.s3(), settings().sales_bucket)


def presign_report_pdf(report: Report) -> str | None:
    """A short-lived download URL of the report's PDF (None before it has one), named for the user."""
    if not report.pdf_key:
        return None
    from reports.http import pdf_filename

    return report_files().presign_pdf(
        report.pdf_key, filename=pdf_filename(report), expires_seconds=settings().presign_expires_seconds
    )


@cache
def duration_estimates() -> DurationEstimates:
    from reports.retrieval import DurationEstimates

    return DurationEstimates(report_store())


def clear_dependencies() -> None:
    for factory in (report_store, idempotency_store, job_queue, report_files, sales_archive, duration_estimates):
        factory.cache_clear()
    clear_push_dependencies()
    settings.cache_clear()
    clients.clear_clients()


@cache
def connection_store() -> ConnectionStore:
    from reports.watchers import ConnectionStore

    return ConnectionStore(clients.dynamodb(), settings().connections_table)


@cache
def pusher() -> Pusher:
    from reports.notifications import Pusher

    return Pusher(clients.connections(settings().websocket_management_url))


@cache
def event_publisher() -> EventPublisher:
    from reports.notifications import EventPublisher, PublishedEvents

    config = settings()
    return EventPublisher(
        clients.sns(), config.report_events_topic_arn, PublishedEvents(clients.dynamodb(), config.idempotency_table)
    )


@cache
def watch_token_key() -> str:
    """The HMAC key of watch tokens: TOKEN_SECRET locally, else Secrets Manager, once per process."""
    config = settings()
    if config.token_secret:
        return config.token_secret
    if not config.token_secret_arn:
        raise SettingsError("neither TOKEN_SECRET nor TOKEN_SECRET_ARN is set")
    return str(clients.secretsmanager().get_secret_value(SecretId=config.token_secret_arn)["SecretString"])


@cache
def webhook_signing_secret() -> str:
    """The whsec_ key: WEBHOOK_SECRET locally, else whsec_ + base64 of the Secrets Manager value."""
    config = settings()
    if config.webhook_secret:
        return config.webhook_secret
    if not config.webhook_secret_arn:
        raise SettingsError("neither WEBHOOK_SECRET nor WEBHOOK_SECRET_ARN is set")
    value = str(clients.secretsmanager().get_secret_value(SecretId=config.webhook_secret_arn)["SecretString"])
    return "whsec_" + base64.b64encode(value.encode()).decode()


def clear_push_dependencies() -> None:
    for factory in (connection_store, pusher, event_publisher, watch_token_key, webhook_signing_secret):
        factory.cache_clear()
