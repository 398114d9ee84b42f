"""Use case: look a report up for its tenant, and estimate when a pending one will be done."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from reports.catalog import get_definition
from reports.errors import ReportNotFoundError, ReportsError
from reports.model import Report, epoch_seconds, is_report_id
from reports.store import ReportStore

DEFAULT_EXPECTED_SECONDS = 5.0


def find_report(store: ReportStore, report_id: str, *, tenant: str, now: datetime) -> Report:
    """Another tenant's report is indistinguishable from a missing one (no id probing).

    A report past its retention is gone even before DynamoDB's TTL (which deletes lazily, often
    days later) removes it: its PDF has been expired from S3 by then.
    """
    report = store.get(report_id) if is_report_id(report_id) else None
    if report is None or report.tenant != tenant:
        raise ReportNotFoundError(f"there is no report {report_id!r} for this API key")
    if report.expires_at <= epoch_seconds(now):
        raise ReportNotFoundError(
            f"report {report_id!r} expired on {datetime.fromtimestamp(report.expires_at, UTC):%Y-%m-%d}; "
            "submit it again for a new copy"
        )
    return report


class DurationEstimates:
    """Mean submit-to-completion time per report type, cached per process for ``ttl_seconds``.

    Until a type has finished once, its catalog ``expected_seconds`` stands in.
    """

    def __init__(
        self, store: ReportStore, *, ttl_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, float]] = {}

    def expected_seconds(self, report_type: str) -> float:
        now = self._clock()
        cached = self._cache.get(report_type)
        if cached and now - cached[0] < self._ttl:
            return cached[1]
        try:
            measured = self._store.mean_duration(report_type)
        except ReportsError:
            measured = None
        if measured is None:
            definition = get_definition(report_type)
            measured = definition.expected_seconds if definition else DEFAULT_EXPECTED_SECONDS
        self._cache[report_type] = (now, measured)
        return measured
