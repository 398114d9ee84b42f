"""Errors of the domain and its adapters.

Adapters translate ``botocore`` errors into these, so callers never branch on AWS error codes.
``ReportFailure`` subclasses carry a stable ``code`` that ends up in the report's ``error`` field.
"""

from __future__ import annotations


class ReportsError(Exception):
    """Base of every error this package raises on purpose."""


class ValidationError(ReportsError):
    """A request that can never succeed as sent (HTTP 400)."""

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class ReportNotFoundError(ReportsError):
    """No report with that id for that tenant."""


class TransitionRejectedError(ReportsError):
    """A conditional status write lost: the report was not in a state that allows the change."""


class StoreUnavailableError(ReportsError):
    """The report store could not be reached or refused the call (throttling, outage)."""


class EnqueueError(ReportsError):
    """The job could not be handed to the queue."""


class FileStoreError(ReportsError):
    """S3 refused or failed a call."""


class ReportFailure(ReportsError):
    """A report that cannot be produced; retrying will not help. ``code`` is shown to the client."""

    code = "REPORT_FAILED"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NoDataError(ReportFailure):
    """No sales records exist for the period the report covers."""

    code = "NO_DATA"


class UnknownReportTypeError(ReportFailure):
    """The report type is not in the catalog (for example removed after the job was queued)."""

    code = "UNKNOWN_REPORT_TYPE"


class CallbackHostUnresolvableError(ValidationError):
    """The callback host did not resolve: refused at submit time, but perhaps transient at delivery time."""


class WebhookSecretError(ReportsError):
    """The webhook signing secret is not a ``whsec_`` base64 value: a deployment mistake, not the client's."""
