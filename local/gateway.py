"""The REST API of template.yaml, served over real HTTP as API Gateway would serve it.

Routes come from the functions' ``Api`` events; API keys are checked against ``LOCAL_API_KEYS``
(each key a tenant, as usage plans make them); the usage plan's throttle is a token bucket per key;
API Gateway's own errors are the template's ``GatewayResponses``, rendered as API Gateway does; and
a CORS preflight to a route is answered from the API's ``Cors``, as SAM's mock ``OPTIONS`` methods do.

Where no route matches, ``GET``/``HEAD`` may also fetch the browser page: the files directly in
``web_dir`` (``/`` is its ``index.html``) and a ``/config.json`` naming this API and a key. That is
the local runtime's own addition; deployed, the page is a static asset and the API serves no files.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from local.events import api_gateway_event
from local.functions import LocalFunction
from local.template import IMPLICIT_REST_API, DataStack, SamTemplate

logger = logging.getLogger("local.api")

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
DEFAULT_MESSAGES = {
    "INVALID_API_KEY": "Forbidden",
    "MISSING_AUTHENTICATION_TOKEN": "Missing Authentication Token",
    "THROTTLED": "Too Many Requests",
    "REQUEST_TOO_LARGE": "Request Too Long",
    "DEFAULT_5XX": "Internal server error",
}
DEFAULT_STATUS = {
    "INVALID_API_KEY": 403,
    "MISSING_AUTHENTICATION_TOKEN": 403,
    "THROTTLED": 429,
    "REQUEST_TOO_LARGE": 413,
    "DEFAULT_5XX": 502,
}
FALLBACK = {
    "INVALID_API_KEY": "DEFAULT_4XX",
    "MISSING_AUTHENTICATION_TOKEN": "DEFAULT_4XX",
    "THROTTLED": "DEFAULT_4XX",
    "REQUEST_TOO_LARGE": "DEFAULT_4XX",
    "DEFAULT_5XX": "DEFAULT_5XX",
}
PAGE_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}
PAGE_CONFIG_PATH = "/config.json"


@dataclass(frozen=True)
class Route:
    method: str
    resource: str
    pattern: re.Pattern[str]
    function: LocalFunction
    api_key_required: bool


@dataclass
class TokenBucket:
    """API Gateway's throttle: ``burst`` requests at once, refilled at ``rate`` per second."""

    rate: float
    burst: float
    tokens: float = -1.0
    updated: float = field(default_factory=time.monotonic)

    def take(self) -> bool:
        now = time.monotonic()
        if self.tokens < 0:
            self.tokens = self.burst
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass(frozen=True)
class GatewayAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class CorsRule:
    """The API's ``Cors``, resolved: the headers of the mock ``OPTIONS`` answer SAM adds to each path."""

    allow_origin: str
    allow_headers: str | None
    allow_methods: str | None
    max_age: str | None
    allow_credentials: bool


class ApiGateway:
    def __init__(
        self,
        template: SamTemplate,
        stack: DataStack,
        functions: Mapping[str, LocalFunction],
        *,
        api_keys: Mapping[str, str],
        api_id: str | None = None,
        web_dir: Path | None = None,
        page_config: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        """``api_id``: the REST API to serve (default: the template's one REST API, explicit or SAM's
        implicit one); ``web_dir``: the browser page's files, served where no route matches (None: no
        page); ``page_config``: what ``/config.json`` answers, asked at each request (the API's URL is
        only known once the server is bound)."""
        self.api_id = api_id or template.rest_api_id()
        api = template.rest_apis().get(self.api_id, {}) if self.api_id else {}
        auth = api.get("Auth") or {}
        stage = api.get("StageName")
        # SAM names the implicit API's stage Prod; an explicit API's StageName is required.
        self.stage = stack.resolve(stage) if stage is not None else ("Prod" if self.api_id == IMPLICIT_REST_API else "")
        self._stack = stack
        self._api_keys = dict(api_keys)
        self._responses: dict[str, Any] = api.get("GatewayResponses") or {}
        self._cors = self._cors_rule(api.get("Cors"), stack)
        # SAM's default: with ApiKeyRequired, the preflight needs a key too (browsers never send one).
        self._preflight_needs_key = bool(auth.get("ApiKeyRequired")) and bool(
            auth.get("AddApiKeyRequiredToCorsPreflight", True)
        )
        self._web_dir = web_dir
        self._page_config = page_config
        throttle = (auth.get("UsagePlan") or {}).get("Throttle") or {}
        self._rate = float(stack.resolve(throttle["RateLimit"])) if "RateLimit" in throttle else 10000.0
        self._burst = float(stack.resolve(throttle["BurstLimit"])) if "BurstLimit" in throttle else 5000.0
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()
        events = template.api_events(self.api_id) if self.api_id else []
        self.routes = self._routes(functions, events, bool(auth.get("ApiKeyRequired")))

    @staticmethod
    def _routes(
        functions: Mapping[str, LocalFunction], events: list[tuple[str, dict[str, Any]]], api_key_required: bool
    ) -> list[Route]:
        routes = []
        for function_id, props in events:
            function = functions[function_id]
            resource = str(props["Path"])
            regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(resource))
            required = bool((props.get("Auth") or {}).get("ApiKeyRequired", api_key_required))
            routes.append(Route(str(props["Method"]).upper(), resource, re.compile(f"^{regex}$"), function, required))
        return routes

    def handle(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str] | Iterable[tuple[str, str]],
        body: bytes,
        source_ip: str,
    ) -> GatewayAnswer:
        """``headers``: a mapping, or the request's (name, value) pairs, repeats included, in order.

        The API answers at the root, as behind a custom domain mapped to its stage, and under
        ``/{StageName}`` as at its execute-api URL; ``requestContext.path`` is the path as requested
        either way (``path`` never has the stage), so links the functions derive from it work."""
        header_pairs = list(headers.items() if isinstance(headers, Mapping) else headers)
        request_id = str(uuid.uuid4())
        url = urlsplit(target)
        base_path, path = self._split_stage(url.path or "/")
        if len(body) > MAX_PAYLOAD_BYTES:
            return self._gateway_error("REQUEST_TOO_LARGE", base_path + path, request_id)
        match = None
        for route in self.routes:
            found = route.pattern.match(path)
            if found and route.method == method:
                match = (route, found.groupdict())
                break
        lowered = {k.lower(): v for k, v in header_pairs}
        api_key = lowered.get("x-api-key")
        tenant = self._api_keys.get(api_key or "")
        if match is None:
            if method == "OPTIONS" and self._cors is not None and self._is_resource(path):
                if self._preflight_needs_key and tenant is None:
                    return self._gateway_error("INVALID_API_KEY", base_path + path, request_id)
                if tenant is not None and not self._admit(tenant):
                    return self._gateway_error("THROTTLED", base_path + path, request_id)
                return self._preflight_answer(self._cors, path)
            page = self._page(path) if method in ("GET", "HEAD") else None
            return page or self._gateway_error("MISSING_AUTHENTICATION_TOKEN", base_path + path, request_id)
        route, parameters = match
        if route.api_key_required and tenant is None:
            return self._gateway_error("INVALID_API_KEY", base_path + path, request_id)
        if tenant is not None and not self._admit(tenant):
            return self._gateway_error("THROTTLED", base_path + path, request_id)
        event = api_gateway_event(
            method=method,
            path=path,
            resource=route.resource,
            path_parameters=parameters or None,
            headers=header_pairs,
            query=parse_qs(url.query, keep_blank_values=True),
            body=body if body or method in ("POST", "PUT", "PATCH") else None,
            api_key_id=tenant,
            stage=self.stage,
            base_path=base_path,
            source_ip=source_ip,
        )
        event["requestContext"]["requestId"] = request_id
        try:
            response = route.function.invoke(event, describe=f" {method} {path}")
            return self._proxy_answer(response)
        except Exception:
            logger.exception("%s failed on %s %s", route.function.name, method, path)
            return self._gateway_error("DEFAULT_5XX", base_path + path, request_id)

    def _split_stage(self, requested: str) -> tuple[str, str]:
        """``("/v1", "/api/v1/report")`` for ``/v1/api/v1/report``, ``("", path)`` for a path the API
        serves as it is (which wins where both would match) or one it does not serve at all."""
        prefix = f"/{self.stage}"
        if not self.stage or not requested.startswith(prefix + "/") or self._is_resource(requested):
            return "", requested
        rest = requested[len(prefix) :]
        return (prefix, rest) if self._is_resource(rest) else ("", requested)

    # -- CORS -------------------------------------------------------------------------------------

    @staticmethod
    def _cors_rule(cors: Any, stack: DataStack) -> CorsRule | None:
        """``Cors: "'origin'"`` (or an intrinsic) is the origin alone; a map names each header."""
        if cors is None:
            return None
        spec = cors if isinstance(cors, dict) and "AllowOrigin" in cors else {"AllowOrigin": cors}

        def value(name: str) -> str | None:
            return None if spec.get(name) is None else stack.resolve(spec[name]).strip("'")

        return CorsRule(
            allow_origin=value("AllowOrigin") or "*",
            allow_headers=value("AllowHeaders"),
            allow_methods=value("AllowMethods"),
            max_age=value("MaxAge"),
            allow_credentials=spec.get("AllowCredentials") is True,
        )

    def _is_resource(self, path: str) -> bool:
        return any(route.pattern.match(path) for route in self.routes)

    def _preflight_answer(self, cors: CorsRule, path: str) -> GatewayAnswer:
        """What SAM's mock integration answers: 200, the configured headers, ``{}``."""
        methods = cors.allow_methods
        if methods is None:  # SAM lists the path's own methods, and OPTIONS
            methods = ",".join(sorted({r.method for r in self.routes if r.pattern.match(path)} | {"OPTIONS"}))
        headers = {"Content-Type": "application/json", "Access-Control-Allow-Origin": cors.allow_origin}
        if cors.allow_headers:
            headers["Access-Control-Allow-Headers"] = cors.allow_headers
        headers["Access-Control-Allow-Methods"] = methods
        if cors.max_age is not None:
            headers["Access-Control-Max-Age"] = cors.max_age
        if cors.allow_credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
        return GatewayAnswer(200, headers, b"{}")

    # -- the browser page -----------------------------------------------------------------------

    def _page(self, path: str) -> GatewayAnswer | None:
        """A file directly in ``web_dir`` by its exact name, or the generated ``/config.json``; None
        for anything else (the caller answers API Gateway's 403), so no path can leave the folder."""
        if self._web_dir is None:
            return None
        headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
        if path == PAGE_CONFIG_PATH and self._page_config is not None:
            body = json.dumps(dict(self._page_config())).encode()
            return GatewayAnswer(200, {"Content-Type": PAGE_TYPES[".json"], **headers}, body)
        name = "index.html" if path == "/" else path.removeprefix("/")
        try:
            files = {entry.name: entry for entry in self._web_dir.iterdir() if entry.is_file()}
            file = files.get(name)
            if file is None or name.startswith("."):
                return None
            body = file.read_bytes()
        except OSError:
            return None
        content_type = PAGE_TYPES.get(file.suffix.lower(), "application/octet-stream")
        return GatewayAnswer(200, {"Content-Type": content_type, **headers}, body)

    # -- API Gateway's own answers --------------------------------------------------------------

    def _admit(self, tenant: str) -> bool:
        """Take a token under the lock: request threads must not interleave inside one bucket."""
        with self._lock:
            return self._buckets.setdefault(tenant, TokenBucket(self._rate, self._burst)).take()

    @staticmethod
    def _proxy_answer(response: Any) -> GatewayAnswer:
        if not isinstance(response, dict) or "statusCode" not in response:
            raise TypeError("the function did not return a proxy response (statusCode, headers, body)")
        headers = {str(k): str(v) for k, v in (response.get("headers") or {}).items()}
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers[str(name)] = ", ".join(str(v) for v in values)
        raw = response.get("body") or ""
        body = base64.b64decode(raw) if response.get("isBase64Encoded") else str(raw).encode()
        return GatewayAnswer(int(response["statusCode"]), headers, body)

    def _gateway_error(self, kind: str, path: str, request_id: str) -> GatewayAnswer:
        message = DEFAULT_MESSAGES[kind]
        spec = self._responses.get(kind) or self._responses.get(FALLBACK[kind]) or {}
        status = int(spec.get("StatusCode") or DEFAULT_STATUS[kind])
        headers = {"Content-Type": "application/json"}
        for name, value in ((spec.get("ResponseParameters") or {}).get("Headers") or {}).items():
            headers[name] = self._stack.resolve(value).strip("'")  # a literal, or !Sub "'${Parameter}'"
        template = (spec.get("ResponseTemplates") or {}).get("application/json")
        if template:
            body = (
                template.replace("$context.error.messageString", json.dumps(message))
                .replace("$context.error.message", message)
                .replace("$context.error.responseType", kind)
                .replace("$context.path", path)
                .replace("$context.requestId", request_id)
            )
        else:
            body = json.dumps({"message": message})
        return GatewayAnswer(status, headers, body.encode())


class _BadRequest(Exception):
    """A request body that cannot be read (a bad Content-Length, a broken chunked body)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def serve(gateway: ApiGateway, host: str, port: int) -> ThreadingHTTPServer:
    """Bind (raising ``OSError`` if the port is taken) and return the server, not yet serving."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "async-reports-local"

        def _any(self) -> None:
            began = time.perf_counter()
            try:
                body = self._read_body()
            except _BadRequest as refusal:
                self._refuse(refusal)
                return
            answer = gateway.handle(self.command, self.path, list(self.headers.items()), body, self.client_address[0])
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                if name.lower() not in ("content-length", "connection"):
                    self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            body = b"" if answer.status in (204, 304) else answer.body  # RFC 9110: these have no content
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            elapsed = (time.perf_counter() - began) * 1000
            logger.info(
                "%s %s -> %d %s in %.0f ms",
                self.command,
                self.path,
                answer.status,
                HTTPStatus(answer.status).phrase,
                elapsed,
            )

        def _read_body(self) -> bytes:
            """The request's body: ``Content-Length`` bytes, or the chunks of ``Transfer-Encoding: chunked``
            (which wins over a Content-Length; the connection is then closed after the answer). A chunked
            body is kept only to one byte past the payload limit, enough for ``handle`` to answer 413."""
            coding = ",".join(self.headers.get_all("Transfer-Encoding") or [])
            encodings = [e.strip().lower() for e in coding.split(",") if e.strip()]
            if encodings:
                if encodings != ["chunked"]:
                    raise _BadRequest(501, f"Transfer-Encoding {', '.join(encodings)} is not supported")
                if self.headers.get("Content-Length") is not None:
                    self.close_connection = True  # RFC 9112 6.3: never reuse a connection after both
                return self._read_chunks()
            lengths = {value.strip() for value in self.headers.get_all("Content-Length") or []}
            if not lengths:
                return b""
            length, *others = sorted(lengths)
            if others or not (length.isascii() and length.isdigit()):
                raise _BadRequest(400, f"Content-Length must be one whole number, got {', '.join(sorted(lengths))}")
            size = int(length)
            body = self.rfile.read(size) if size else b""
            if len(body) < size:
                raise _BadRequest(400, "the body ended before Content-Length bytes")
            return body

        def _read_chunks(self) -> bytes:
            body = bytearray()
            while True:
                line = self.rfile.readline(65537)
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    size = -1
                if size < 0 or not line.endswith(b"\n"):
                    raise _BadRequest(400, "a malformed chunk size in a chunked body")
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailer fields, which API Gateway does not pass on
                    return bytes(body)
                chunk = self.rfile.read(size)
                if len(chunk) < size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                    raise _BadRequest(400, "a chunk ended early in a chunked body")
                body += chunk[: max(0, MAX_PAYLOAD_BYTES + 1 - len(body))]

        def _refuse(self, refusal: _BadRequest) -> None:
            """A request whose body cannot be read: answered, then the connection closed (what is left of
            the body is unknown)."""
            payload = json.dumps({"message": refusal.message}).encode()
            self.close_connection = True
            self.send_response(refusal.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
            logger.info("%s %s -> %d %s", self.command, self.path, refusal.status, refusal.message)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _any

        def log_message(self, format: str, *args: Any) -> None:
            """The one line per request is logged by ``_any``."""

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server
