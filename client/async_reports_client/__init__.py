"""Python client for the async-reports API, and the ``async-reports`` command line."""

from async_reports_client.client import Client
from async_reports_client.errors import (
    ApiError,
    AsyncReportsError,
    ConnectionFailedError,
    ReportFailedError,
    WaitTimeoutError,
    WebhookVerificationError,
)
from async_reports_client.model import Report
from async_reports_client.polling import Backoff, parse_retry_after

__all__ = [
    "ApiError",
    "AsyncReportsError",
    "Backoff",
    "Client",
    "ConnectionFailedError",
    "Report",
    "ReportFailedError",
    "WaitTimeoutError",
    "WebhookVerificationError",
    "parse_retry_after",
]
__version__ = "0.1.0"
