"""The only reader of ``os.environ``. Names are constants here; values are validated on first use.

``template.yaml`` supplies every variable through ``Globals`` (with ``!Ref``/``!GetAtt``), the
local runtime resolves the same template, and tests set them through ``monkeypatch``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

REPORTS_TABLE = "REPORTS_TABLE"
IDEMPOTENCY_TABLE = "IDEMPOTENCY_TABLE"
FILES_BUCKET = "FILES_BUCKET"
SALES_BUCKET = "SALES_BUCKET"
JOBS_QUEUE_URL = "JOBS_QUEUE_URL"
REPORT_RETENTION_DAYS = "REPORT_RETENTION_DAYS"
PRESIGN_EXPIRES_SECONDS = "PRESIGN_EXPIRES_SECONDS"
IDEMPOTENCY_EXPIRES_SECONDS = "IDEMPOTENCY_EXPIRES_SECONDS"
CONNECTIONS_TABLE = "CONNECTIONS_TABLE"
REPORT_EVENTS_TOPIC_ARN = "REPORT_EVENTS_TOPIC_ARN"
WEBSOCKET_URL = "WEBSOCKET_URL"
WEBSOCKET_MANAGEMENT_URL = "WEBSOCKET_MANAGEMENT_URL"
TOKEN_SECRET_ARN = "TOKEN_SECRET_ARN"
WEBHOOK_SECRET_ARN = "WEBHOOK_SECRET_ARN"
TOKEN_SECRET = "TOKEN_SECRET"
"""Local mode only: the watch-token key itself, instead of TOKEN_SECRET_ARN."""
WEBHOOK_SECRET = "WEBHOOK_SECRET"
"""Local mode only: the whsec_ signing key itself, instead of WEBHOOK_SECRET_ARN."""
ALLOW_LOOPBACK_CALLBACKS = "ALLOW_LOOPBACK_CALLBACKS"
"""Local mode only: callbacks to 127.0.0.1 are allowed (never private or link-local addresses)."""
API_BASE_PATH = "API_BASE_PATH"
"""The prefix in front of the REST API's own paths as clients reach it (``/<StageName>`` on
execute-api, empty locally), for the links in pushed and published reports, which answer no request
to read it from."""
WEBHOOK_MAX_ATTEMPTS = "WEBHOOK_MAX_ATTEMPTS"
"""WebhookFunction: attempts at one callback before it is recorded exhausted and set aside (WebhookMaxAttempts)."""
WEBHOOK_RETRY_SCHEDULE = "WEBHOOK_RETRY_SCHEDULE"
"""WebhookFunction: seconds before retry 1, 2, ... (``5,300,1800``; the last repeats). Empty: the standard
schedule, or seconds-long retries in local mode (WebhookRetrySchedule)."""
CALLBACKS_DEAD_LETTER_QUEUE_URL = "CALLBACKS_DEAD_LETTER_QUEUE_URL"
"""WebhookFunction: where a callback whose attempts ran out is set aside."""
CORS_ALLOW_ORIGIN = "CORS_ALLOW_ORIGIN"
"""The origin whose pages may read the REST API's answers (``*`` for any): template's CorsAllowOrigin."""
DEFAULT_CORS_ALLOW_ORIGIN = "*"


class SettingsError(RuntimeError):
    """A required environment variable is missing or malformed."""


def _require(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise SettingsError(f"environment variable {name} is not set; template.yaml's Globals provide it")
    return value


def _seconds_list(name: str) -> tuple[float, ...]:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return ()
    try:
        values = tuple(float(part) for part in raw.split(","))
    except ValueError:
        raise SettingsError(f"environment variable {name} must be seconds separated by commas, got {raw!r}") from None
    if not all(0 <= value < float("inf") for value in values):
        raise SettingsError(f"environment variable {name} must hold finite, non-negative seconds, got {raw!r}")
    return values


def _int(name: str, default: int, *, minimum: int = 1) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"environment variable {name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"environment variable {name} must be at least {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    reports_table: str
    idempotency_table: str
    files_bucket: str
    sales_bucket: str
    jobs_queue_url: str
    report_retention_days: int
    presign_expires_seconds: int
    idempotency_expires_seconds: int
    connections_table: str
    report_events_topic_arn: str
    websocket_url: str
    websocket_management_url: str
    token_secret_arn: str
    webhook_secret_arn: str
    token_secret: str
    webhook_secret: str
    allow_loopback_callbacks: bool
    api_base_path: str = ""
    webhook_max_attempts: int = 8
    webhook_retry_schedule: tuple[float, ...] = ()
    callbacks_dead_letter_queue_url: str = ""


@cache
def settings() -> Settings:
    """Read once per process (cold start); raises ``SettingsError`` naming what is missing."""
    return Settings(
        reports_table=_require(REPORTS_TABLE),
        idempotency_table=_require(IDEMPOTENCY_TABLE),
        files_bucket=_require(FILES_BUCKET),
        sales_bucket=_require(SALES_BUCKET),
        jobs_queue_url=_require(JOBS_QUEUE_URL),
        report_retention_days=_int(REPORT_RETENTION_DAYS, 30),
        presign_expires_seconds=_int(PRESIGN_EXPIRES_SECONDS, 300),
        idempotency_expires_seconds=_int(IDEMPOTENCY_EXPIRES_SECONDS, 86400),
        connections_table=_require(CONNECTIONS_TABLE),
        report_events_topic_arn=_require(REPORT_EVENTS_TOPIC_ARN),
        websocket_url=_require(WEBSOCKET_URL),
        websocket_management_url=_require(WEBSOCKET_MANAGEMENT_URL),
        token_secret_arn=os.environ.get(TOKEN_SECRET_ARN, "").strip(),
        webhook_secret_arn=os.environ.get(WEBHOOK_SECRET_ARN, "").strip(),
        token_secret=os.environ.get(TOKEN_SECRET, "").strip(),
        webhook_secret=os.environ.get(WEBHOOK_SECRET, "").strip(),
        allow_loopback_callbacks=os.environ.get(ALLOW_LOOPBACK_CALLBACKS, "").strip().lower() == "true",
        api_base_path=_base_path(API_BASE_PATH),
        webhook_max_attempts=_int(WEBHOOK_MAX_ATTEMPTS, 8),
        webhook_retry_schedule=_seconds_list(WEBHOOK_RETRY_SCHEDULE),
        callbacks_dead_letter_queue_url=os.environ.get(CALLBACKS_DEAD_LETTER_QUEUE_URL, "").strip(),
    )


def _base_path(name: str) -> str:
    """``/v1`` from ``v1``, ``/v1/`` or ``/v1``; empty for the root."""
    value = os.environ.get(name, "").strip().strip("/")
    return f"/{value}" if value else ""


def cors_allow_origin() -> str:
    """``CORS_ALLOW_ORIGIN``, read apart from ``settings()``: the API functions build their resolver
    when imported, where nothing else is required yet. Unset is the template's default, ``*``."""
    return os.environ.get(CORS_ALLOW_ORIGIN, "").strip() or DEFAULT_CORS_ALLOW_ORIGIN
