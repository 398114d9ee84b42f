"""The HTTP face of the service, free of any web framework: RFC 9457 problems, request body
decoding, the report's JSON representation, ETags and ``Retry-After``.

Handlers hand these (status, headers, body) triples to Powertools' resolver; the local runtime and
the tests see exactly what API Gateway would return.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from reports.errors import (
    EnqueueError,
    FileStoreError,
    ReportNotFoundError,
    ReportsError,
    StoreUnavailableError,
    ValidationError,
)
from reports.idempotency import IdempotencyInFlightError, IdempotencyKeyReusedError
from reports.model import Report, ReportStatus, suggest_retry_after

API_PREFIX = "/api/v1/report"
PROBLEM_JSON = "application/problem+json"
MAX_BODY_BYTES = 16 * 1024
MAX_IDEMPOTENCY_KEY_LENGTH = 255
PROBLEM_TYPE_BASE = "urn:async-reports:problem:"


class HttpProblemError(ReportsError):
    """An RFC 9457 problem the API answers with."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        kind: str,
        headers: dict[str, str] | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.kind = kind
        self.headers = headers or {}
        self.extensions = extensions or {}

    def body(self, instance: str | None = None) -> dict[str, Any]:
        document: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.kind,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            document["instance"] = instance
        document.update(self.extensions)
        return document


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def encoded_body(self) -> str:
        return "" if self.body is None else json.dumps(self.body, separators=(",", ":"))


def problem_response(problem: HttpProblemError, instance: str | None = None) -> HttpResponse:
    return HttpResponse(problem.status, problem.body(instance), dict(problem.headers), PROBLEM_JSON)


def problem_for(error: Exception) -> HttpProblemError:
    """Map any error to the problem a client should see; unknown errors are a bare 500."""
    match error:
        case HttpProblemError():
            return error
        case ValidationError():
            extensions = {"field": error.field} if error.field else None
            return HttpProblemError(400, "Invalid request", error.detail, kind="invalid-request", extensions=extensions)
        case ReportNotFoundError():
            return HttpProblemError(404, "Report not found", str(error), kind="not-found")
        case IdempotencyKeyReusedError():
            return HttpProblemError(422, "Idempotency key reused", str(error), kind="idempotency-key-reused")
        case IdempotencyInFlightError():
            return HttpProblemError(
                409, "Request in flight", str(error), kind="idempotency-in-flight", headers={"Retry-After": "1"}
            )
        case EnqueueError() | StoreUnavailableError() | FileStoreError():
            return HttpProblemError(
                503,
                "Service unavailable",
                "the report service could not reach its storage or queue; nothing was kept, retry shortly",
                kind="unavailable",
                headers={"Retry-After": "2"},
            )
        case _:
            return HttpProblemError(500, "Internal error", "an unexpected error occurred", kind="internal")


def is_json_media_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


def decode_json_body(content_type: str | None, body: bytes) -> Any:
    """415 unless JSON, 413 past ``MAX_BODY_BYTES``, 400 with the position of a syntax error."""
    if not is_json_media_type(content_type):
        got = content_type or "no Content-Type"
        raise HttpProblemError(
            415, "Unsupported media type", f"send the request as application/json (got {got})", kind="media-type"
        )
    if len(body) > MAX_BODY_BYTES:
        raise HttpProblemError(
            413,
            "Request too large",
            f"the body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}",
            kind="too-large",
        )
    if not body.strip():
        raise ValidationError("the request body is empty; send a JSON object with reportType and reportDate")
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise ValidationError("the request body is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise ValidationError(
            f"the body is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        ) from None


def parse_idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    key = value.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH or not key.isprintable():
        raise ValidationError(
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable characters", field="Idempotency-Key"
        )
    return key


def report_path(base_path: str, report_id: str) -> str:
    return f"{base_path}{API_PREFIX}/{report_id}"


def report_resource(
    report: Report,
    *,
    base_path: str,
    pdf_uri: str | None = None,
    retry_after: int | None = None,
    websocket_href: str | None = None,
) -> dict[str, Any]:
    """The report as clients see it (DESIGN.md); ``completed`` stays for old clients."""
    self_href = report_path(base_path, report.id)
    resource: dict[str, Any] = {
        "id": report.id,
        "reportType": report.report_type,
        "reportDate": report.report_date.isoformat(),
        "status": report.status.value,
        "completed": report.completed,
        "version": report.version,
        "createdAt": _iso(report.created_at),
        "updatedAt": _iso(report.updated_at),
    }
    if report.progress:
        resource["progress"] = {"step": report.progress.step, "percent": report.progress.percent}
    if report.started_at:
        resource["startedAt"] = _iso(report.started_at)
    if report.completed_at:
        resource["completedAt"] = _iso(report.completed_at)
    if retry_after is not None:
        resource["retryAfter"] = retry_after
    if pdf_uri:
        resource["pdfUri"] = pdf_uri
    if report.error:
        resource["error"] = {"code": report.error.code, "message": report.error.message}
    if report.callback_url:
        resource["callbackUrl"] = report.callback_url
    links: dict[str, Any] = {"self": {"href": self_href}}
    if report.status is not ReportStatus.FAILED:
        links["pdf"] = {"href": f"{self_href}/pdf"}
    if websocket_href:
        links["websocket"] = {"href": websocket_href}
    resource["_links"] = links
    return resource


def etag(report: Report) -> str:
    """Weak: the body embeds a fresh presigned URL each time, but the report itself is unchanged."""
    return f'W/"{report.id}.{report.version}"'


def matches_if_none_match(header: str | None, current: str) -> bool:
    """RFC 9110 weak comparison over a list of entity tags, ``*`` included."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    wanted = current.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in header.split(","))


def _iso(moment: Any) -> str:
    return str(moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"))


def report_answer(
    report: Report,
    *,
    status: int,
    base_path: str,
    now: datetime,
    estimate: Callable[[str], float],
    pdf_uri: str | None = None,
    if_none_match: str | None = None,
    headers: dict[str, str] | None = None,
    websocket_href: str | None = None,
) -> HttpResponse:
    """The report with its ETag, and ``Retry-After`` while it is not final; ``304`` when the
    client's ``If-None-Match`` already names this version. ``estimate`` gives a type's expected
    seconds, and is only asked while the report is pending."""
    answer_headers = {"ETag": etag(report), **(headers or {})}
    retry_after = None
    if not report.status.is_final:
        retry_after = suggest_retry_after(report, now=now, expected_seconds=estimate(report.report_type))
        answer_headers["Retry-After"] = str(retry_after)
    if status == 200 and matches_if_none_match(if_none_match, answer_headers["ETag"]):
        return HttpResponse(304, None, answer_headers)
    return HttpResponse(
        status,
        report_resource(
            report, base_path=base_path, pdf_uri=pdf_uri, retry_after=retry_after, websocket_href=websocket_href
        ),
        answer_headers,
    )


def pdf_answer(
    report: Report, *, presign: Callable[[str], str], now: datetime, estimate: Callable[[str], float]
) -> HttpResponse:
    """``303 See Other`` to a short-lived presigned URL once COMPLETED; otherwise why not (409)."""
    if report.status is ReportStatus.COMPLETED and report.pdf_key:
        return HttpResponse(303, None, {"Location": presign(report.pdf_key)})
    if report.status is ReportStatus.FAILED:
        reason = report.error.message if report.error else "the report failed"
        raise HttpProblemError(
            409,
            "Report failed",
            f"report {report.id} failed, so it has no PDF: {reason}",
            kind="report-failed",
            extensions={"reportStatus": report.status.value},
        )
    retry_after = suggest_retry_after(report, now=now, expected_seconds=estimate(report.report_type))
    raise HttpProblemError(
        409,
        "Report not ready",
        f"report {report.id} is {report.status.value}; its PDF is available once the status is COMPLETED",
        kind="not-ready",
        headers={"Retry-After": str(retry_after)},
        extensions={"reportStatus": report.status.value},
    )


def pdf_filename(report: Report) -> str:
    return f"{report.report_type.lower().replace('_', '-')}-{report.report_date.isoformat()}.pdf"


def websocket_href(websocket_url: str, report_id: str, token: str) -> str:
    """Where to watch a report live: the WebSocket API with the report and its watch token."""
    return f"{websocket_url}?{urlencode({'reportId': report_id, 'token': token})}"
