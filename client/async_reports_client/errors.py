"""What can go wrong, as exceptions a caller can tell apart (and the CLI maps to exit codes)."""

from __future__ import annotations

from typing import Any


class AsyncReportsError(Exception):
    """Base of every error this client raises."""

    exit_code = 1


class ApiError(AsyncReportsError):
    """The API refused the request; ``detail`` is the problem+json ``detail`` (RFC 9457)."""

    exit_code = 3

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.title = str(problem.get("title") or "")
        self.detail = str(problem.get("detail") or problem.get("message") or self.title or f"HTTP {status}")
        super().__init__(f"{status} {self.title}: {self.detail}" if self.title else f"{status}: {self.detail}")


class ReportFailedError(AsyncReportsError):
    """The report ended FAILED; ``report`` is its final state, ``code`` and ``message`` its error."""

    exit_code = 1

    def __init__(self, report: dict[str, Any]) -> None:
        self.report = report
        error = report.get("error") or {}
        self.code = str(error.get("code") or "FAILED")
        self.message = str(error.get("message") or "the report failed")
        super().__init__(f"report {report.get('id')} failed: {self.code}: {self.message}")


class WaitTimeoutError(AsyncReportsError):
    """The report was not final within the overall timeout; ``last`` is the last state seen, if any."""

    exit_code = 4

    def __init__(self, timeout: float, last: dict[str, Any] | None) -> None:
        self.timeout = timeout
        self.last = last
        status = f" (last seen {last.get('status')})" if last else ""
        super().__init__(f"report not final after {timeout:g} s{status}")


class ConnectionFailedError(AsyncReportsError):
    """The API (or the WebSocket API) could not be reached, even after retries."""

    exit_code = 5


class WebhookVerificationError(AsyncReportsError):
    """A webhook or SNS message whose signature, timestamp or origin does not check out."""

    exit_code = 6
