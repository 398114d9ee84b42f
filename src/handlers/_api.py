"""What the two API functions share: a Powertools REST resolver whose every error is problem+json,
and the few facts read off an API Gateway event (tenant, base path, raw body)."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response

from reports import dependencies
from reports.http import HttpProblemError, HttpResponse, problem_for, problem_response, websocket_href
from reports.settings import cors_allow_origin, settings
from reports.tokens import issue_watch_token

logger = Logger(child=True)

CORS_ALLOW_HEADERS = ["Idempotency-Key", "If-None-Match"]
"""Beyond Powertools' own (Content-Type, X-Api-Key, ...); the template's Cors.AllowHeaders says the same."""
CORS_EXPOSE_HEADERS = ["Location", "Retry-After", "ETag"]


def to_response(answer: HttpResponse) -> Response[str]:
    headers = {"Cache-Control": "no-store"} | answer.headers
    if answer.body is None:  # 303, 304: no content, and no JSON "null" either
        return Response(status_code=answer.status, content_type=None, body="", headers=headers)
    return Response(
        status_code=answer.status, content_type=answer.content_type, body=answer.encoded_body(), headers=headers
    )


def build_resolver() -> APIGatewayRestResolver:
    """Every answer, errors included, carries Access-Control-Allow-Origin for a request with an
    ``Origin`` (API Gateway answers the preflight itself, from the template's ``Cors``)."""
    cors = CORSConfig(
        allow_origin=cors_allow_origin(), allow_headers=CORS_ALLOW_HEADERS, expose_headers=CORS_EXPOSE_HEADERS
    )
    app = APIGatewayRestResolver(cors=cors)

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def handle_error(error: Exception) -> Response[str]:
        problem = problem_for(error)
        if problem.status >= 500:
            logger.exception("request failed", extra={"problem": problem.kind})
        else:
            logger.info("request refused", extra={"status": problem.status, "detail": problem.detail})
        return to_response(problem_response(problem, instance=app.current_event.path))

    @app.not_found
    def handle_not_found(_: Exception) -> Response[str]:
        event = app.current_event
        problem = HttpProblemError(404, "Not found", f"no route for {event.http_method} {event.path}", kind="no-route")
        return to_response(problem_response(problem, instance=event.path))

    return app


def tenant_of(event: dict[str, Any]) -> str:
    """The tenant is the id of the API key API Gateway checked (usage plans throttle per key)."""
    identity = (event.get("requestContext") or {}).get("identity") or {}
    api_key_id = identity.get("apiKeyId")
    if not api_key_id:
        raise HttpProblemError(
            401,
            "API key required",
            "send your API key in the x-api-key header",
            kind="unauthorized",
            headers={"WWW-Authenticate": 'ApiKey header="x-api-key"'},
        )
    return str(api_key_id)


def base_path_of(event: dict[str, Any]) -> str:
    """The stage or custom-domain prefix in front of the API's own paths (``/v1`` on execute-api)."""
    full_path = str((event.get("requestContext") or {}).get("path") or "")
    path = str(event.get("path") or "")
    if path and full_path.endswith(path):
        return full_path[: -len(path)].rstrip("/")
    return ""


def raw_body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return base64.b64decode(body)
    return str(body).encode()


def watch_link(report_id: str, tenant: str, now: datetime) -> str:
    """``_links.websocket.href``: the WebSocket API with a short-lived token for this one report."""
    token = issue_watch_token(dependencies.watch_token_key(), report_id=report_id, tenant=tenant, now=now)
    return websocket_href(settings().websocket_url, report_id, token)
