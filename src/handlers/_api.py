"""What the two API functions share: a small REST resolver whose every error is problem+json, and
the few facts read off an API Gateway event (tenant, base path, raw body).

Not Powertools' ``APIGatewayRestResolver``: importing ``aws_lambda_powertools.event_handler`` loads
every resolver it has (AppSync, Bedrock, VPC Lattice, ...) and every event class, about 30 ms of
each cold start, for three routes. This one does what those routes use: match method and path,
pass path parameters, map every error to a problem, and answer a cross-origin request's CORS
headers as Powertools' ``CORSConfig`` would.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger

from reports import dependencies
from reports.http import HttpProblemError, HttpResponse, problem_for, problem_response, websocket_href
from reports.settings import cors_allow_origin, settings
from reports.tokens import issue_watch_token

logger = Logger(child=True)

CORS_ALLOW_HEADERS = [
    "Authorization",
    "Content-Type",
    "X-Amz-Date",
    "X-Api-Key",
    "X-Amz-Security-Token",
    "Idempotency-Key",
    "If-None-Match",
]
"""What a page may send; the template's Cors.AllowHeaders says the same."""
CORS_EXPOSE_HEADERS = ["Location", "Retry-After", "ETag"]

RouteFunction = Callable[..., HttpResponse]


@dataclass(frozen=True)
class ApiEvent:
    """The request: its raw API Gateway event, and its headers with lower-case names."""

    raw_event: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return {str(k).lower(): str(v) for k, v in (self.raw_event.get("headers") or {}).items()}

    @property
    def path(self) -> str:
        return str(self.raw_event.get("path") or "/")

    @property
    def http_method(self) -> str:
        return str(self.raw_event.get("httpMethod") or "GET").upper()


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    function: RouteFunction


class RestResolver:
    """Routes a REST (v1) proxy event to the function of its method and path (``<name>`` segments
    become keyword arguments) and turns what it returns, or raises, into the proxy answer."""

    def __init__(self, *, allow_origin: str) -> None:
        self._routes: list[_Route] = []
        self._allow_origin = allow_origin
        self.current_event = ApiEvent({})
        self.lambda_context: Any = None

    def get(self, path: str) -> Callable[[RouteFunction], RouteFunction]:
        return self._route("GET", path)

    def post(self, path: str) -> Callable[[RouteFunction], RouteFunction]:
        return self._route("POST", path)

    def _route(self, method: str, path: str) -> Callable[[RouteFunction], RouteFunction]:
        pattern = re.compile("^" + re.sub(r"<(\w+)>", r"(?P<\1>[^/]+)", path) + "$")

        def register(function: RouteFunction) -> RouteFunction:
            self._routes.append(_Route(method, pattern, function))
            return function

        return register

    def resolve(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.current_event, self.lambda_context = ApiEvent(event), context
        request = self.current_event
        try:
            answer = self._dispatch(request)
        except Exception as error:  # every error, ours or not, is a problem+json answer
            problem = problem_for(error)
            if problem.status >= 500:
                logger.exception("request failed", extra={"problem": problem.kind})
            else:
                logger.info("request refused", extra={"status": problem.status, "detail": problem.detail})
            answer = problem_response(problem, instance=request.path)
        return self._proxy_answer(answer, origin=request.headers.get("origin"))

    def _dispatch(self, request: ApiEvent) -> HttpResponse:
        for route in self._routes:
            found = route.pattern.match(request.path)
            if found and route.method == request.http_method:
                return route.function(**found.groupdict())
        detail = f"no route for {request.http_method} {request.path}"
        return problem_response(HttpProblemError(404, "Not found", detail, kind="no-route"), instance=request.path)

    def _proxy_answer(self, answer: HttpResponse, *, origin: str | None) -> dict[str, Any]:
        headers = {"Cache-Control": "no-store"} | answer.headers | self._cors_headers(origin)
        if answer.body is None:  # 303, 304: no content, and no JSON "null" either
            headers.pop("Content-Type", None)
            return {"statusCode": answer.status, "headers": headers, "body": "", "isBase64Encoded": False}
        headers["Content-Type"] = answer.content_type
        return {
            "statusCode": answer.status,
            "headers": headers,
            "body": answer.encoded_body(),
            "isBase64Encoded": False,
        }

    def _cors_headers(self, origin: str | None) -> dict[str, str]:
        """Powertools' CORSConfig answer: for a request with an allowed ``Origin`` only."""
        if not origin or self._allow_origin not in ("*", origin):
            return {}
        return {
            "Access-Control-Allow-Origin": self._allow_origin,
            "Access-Control-Allow-Headers": ",".join(sorted(CORS_ALLOW_HEADERS)),
            "Access-Control-Expose-Headers": ",".join(CORS_EXPOSE_HEADERS),
        }


def build_resolver() -> RestResolver:
    """Every answer, errors included, carries Access-Control-Allow-Origin for a request with an
    ``Origin`` (API Gateway answers the preflight itself, from the template's ``Cors``)."""
    return RestResolver(allow_origin=cors_allow_origin())


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
