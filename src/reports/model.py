"""The report, its status machine and the validation of requests. Pure: no boto3, no matplotlib."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from reports.errors import ValidationError


class ReportStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"

    @property
    def is_final(self) -> bool:
        return self in (ReportStatus.COMPLETED, ReportStatus.FAILED)


# Which status a write may start from to reach a status. RUNNING -> RUNNING is a redelivered job
# taking over after a crash; nothing ever leaves COMPLETED or FAILED.
ALLOWED_SOURCES: Mapping[ReportStatus, frozenset[ReportStatus]] = {
    ReportStatus.RUNNING: frozenset({ReportStatus.QUEUED, ReportStatus.RUNNING}),
    ReportStatus.COMPLETED: frozenset({ReportStatus.RUNNING}),
    ReportStatus.FAILED: frozenset({ReportStatus.QUEUED, ReportStatus.RUNNING}),
}


def can_move(current: ReportStatus, target: ReportStatus) -> bool:
    return current in ALLOWED_SOURCES.get(target, frozenset())


@dataclass(frozen=True)
class Progress:
    step: str
    percent: int


@dataclass(frozen=True)
class ReportErrorInfo:
    code: str
    message: str


@dataclass(frozen=True)
class Report:
    """One report request and everything known about it. The store's copy is the truth."""

    id: str
    tenant: str
    report_type: str
    report_date: date
    status: ReportStatus
    created_at: datetime
    updated_at: datetime
    expires_at: int
    """Epoch seconds; DynamoDB TTL removes the record after the PDF's lifecycle expiry."""
    version: int = 1
    attempts: int = 0
    started_at: datetime | None = None
    completed_at: datetime | None = None
    progress: Progress | None = None
    error: ReportErrorInfo | None = None
    pdf_key: str | None = None
    callback_url: str | None = None
    callback_status: str | None = None
    """``delivered`` or ``gone`` once the callback has been settled; None while it is owed."""

    @property
    def completed(self) -> bool:
        return self.status is ReportStatus.COMPLETED

    def with_changes(self, **changes: Any) -> Report:
        return replace(self, **changes)


@dataclass(frozen=True)
class ReportRequest:
    """A validated ``POST /api/v1/report`` body."""

    report_type: str
    report_date: date
    callback_url: str | None = None

    def canonical(self) -> dict[str, str]:
        """The request as a stable mapping: what an idempotency key is compared against."""
        canonical = {"reportType": self.report_type, "reportDate": self.report_date.isoformat()}
        if self.callback_url:
            canonical["callbackUrl"] = self.callback_url
        return canonical


REQUEST_FIELDS = ("reportType", "reportDate")
OPTIONAL_FIELDS = ("callbackUrl",)
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def parse_report_request(
    body: Any,
    *,
    known_types: Collection[str],
    today: date,
    check_callback: Callable[[str], str] | None = None,
) -> ReportRequest:
    """Validate a decoded JSON body; every problem is a ``ValidationError`` a person can act on.

    ``check_callback`` vets a ``callbackUrl`` (SSRF rules need DNS, so it is passed in) and returns
    it as it will be called; without it a callbackUrl is refused.
    """
    if not isinstance(body, dict):
        raise ValidationError(f"the request body must be a JSON object, got {_json_kind(body)}")
    unknown = sorted(set(body) - set(REQUEST_FIELDS) - set(OPTIONAL_FIELDS))
    if unknown:
        allowed = ", ".join(REQUEST_FIELDS + OPTIONAL_FIELDS)
        raise ValidationError(f"unknown field {unknown[0]!r}; allowed fields are {allowed}", field=unknown[0])
    for name in REQUEST_FIELDS:
        if name not in body:
            raise ValidationError(f"{name} is required", field=name)
        if not isinstance(body[name], str):
            raise ValidationError(f"{name} must be a string, got {_json_kind(body[name])}", field=name)

    report_type = body["reportType"].strip()
    if report_type not in known_types:
        choices = ", ".join(sorted(known_types))
        raise ValidationError(f"unknown reportType {report_type!r}; choose one of: {choices}", field="reportType")

    raw_date = body["reportDate"].strip()
    match = _ISO_DATE.match(raw_date)
    if not match:
        raise ValidationError(f"reportDate must be a date as YYYY-MM-DD, got {raw_date!r}", field="reportDate")
    try:
        report_date = date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise ValidationError(f"reportDate {raw_date} is not a calendar date", field="reportDate") from None
    if report_date > today:
        raise ValidationError(
            f"reportDate {raw_date} is in the future; the latest date is {today.isoformat()}", field="reportDate"
        )
    callback_url = None
    if body.get("callbackUrl") is not None:
        if not isinstance(body["callbackUrl"], str):
            raise ValidationError(
                f"callbackUrl must be a string, got {_json_kind(body['callbackUrl'])}", field="callbackUrl"
            )
        if check_callback is None:
            raise ValidationError("callbackUrl is not accepted here; poll the report instead", field="callbackUrl")
        callback_url = check_callback(body["callbackUrl"].strip())
    return ReportRequest(report_type=report_type, report_date=report_date, callback_url=callback_url)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


# --- identifiers -------------------------------------------------------------------------------

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
REPORT_ID_PATTERN = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


def new_report_id(now: datetime | None = None) -> str:
    """A ULID: 48 bits of milliseconds then 80 random bits, so ids sort by creation time."""
    millis = int((now or datetime.now(UTC)).timestamp() * 1000)
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def is_report_id(value: str) -> bool:
    return bool(REPORT_ID_PATTERN.match(value))


# --- pacing ------------------------------------------------------------------------------------

MIN_RETRY_AFTER = 1
MAX_RETRY_AFTER = 30


def suggest_retry_after(report: Report, *, now: datetime, expected_seconds: float) -> int:
    """Seconds a poller should wait before asking again, from how long reports of this type take.

    Until the expected end of the report, the hint points at that end; once a report is overdue,
    the hint grows with its age (a fifth of it), so a stuck report is not hammered.
    """
    elapsed = max(0.0, (now - report.created_at).total_seconds())
    remaining = expected_seconds - elapsed
    seconds = math.ceil(remaining) if remaining > 0 else math.ceil(elapsed / 5)
    return max(MIN_RETRY_AFTER, min(MAX_RETRY_AFTER, seconds))


def epoch_seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def utc_now() -> datetime:
    """Aware UTC now with millisecond precision (what the store keeps)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
