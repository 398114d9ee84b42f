"""The WebSocket API of template.yaml, served as API Gateway serves it, with its ``@connections``
management endpoint on the same port, so the functions' ``apigatewaymanagementapi`` calls (and boto3
pointed at ``http://127.0.0.1:PORT``) work unchanged.

Routes come from the template: each ``AWS::ApiGatewayV2::Route`` of the ``WEBSOCKET`` API names its
integration (``Target: !Sub "integrations/${Integration}"``), whose ``AWS_PROXY`` ``IntegrationUri``
names the function (``${Function.Arn}``). A message goes to the route its ``action`` names
(``RouteSelectionExpression: $request.body.action``), else to ``$default``, else API Gateway's
``Forbidden`` answer comes back on the socket.

The server runs on its own thread and event loop; handlers run on worker threads, so a handler may
call ``@connections`` on this same server while it is handling a message.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import re
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from local.events import websocket_event, websocket_id
from local.runtime import DEFAULT_WS_PORT, LocalRuntimeError, port_error
from local.template import SamTemplate, TemplateError

logger = logging.getLogger("local.ws")
# websockets logs every plain HTTP answer and refused handshake at INFO; our own lines say more.
_websockets_logger = logging.getLogger("local.ws.websockets")
_websockets_logger.setLevel(logging.WARNING)

API_TYPE = "AWS::ApiGatewayV2::Api"
ROUTE_TYPE = "AWS::ApiGatewayV2::Route"
INTEGRATION_TYPE = "AWS::ApiGatewayV2::Integration"
STAGE_TYPE = "AWS::ApiGatewayV2::Stage"
MAX_MESSAGE_BYTES = 128 * 1024
"""API Gateway's limit on a WebSocket message, and on ``PostToConnection`` data."""
MAX_HEAD_BYTES = 64 * 1024
HANDSHAKE_TIMEOUT_SECONDS = 30  # API Gateway waits 29 s for an integration
CLOSE_TIMEOUT_SECONDS = 2
MANAGEMENT_PATH = re.compile(r"^(?:/[^/]+)*/@connections/(?P<id>[^/]+)/?$")
CONTENT_LENGTH = re.compile(rb"(?im)^content-length:[ \t]*(\d+)[ \t]*\r\n")
DISCONNECT_REASONS = {
    1000: "Connection Closed Normally",
    1001: "Going away",
    1005: "Client-side close frame status not set",
    1006: "Connection closed abnormally",
}


class Invocable(Protocol):
    """What the server needs of a function: ``local.functions.LocalFunction`` or a test's fake."""

    name: str

    def invoke(self, event: dict[str, Any], *, describe: str = "") -> Any: ...


# -- the template ---------------------------------------------------------------------------------


def websocket_api_id(template: SamTemplate) -> str | None:
    """The logical id of the template's WebSocket API (the first, if it declares several), or None."""
    for name, resource in template.resources.items():
        props = resource.get("Properties") or {}
        if resource.get("Type") == API_TYPE and props.get("ProtocolType") == "WEBSOCKET":
            return name
    return None


def websocket_routes(template: SamTemplate, api_id: str) -> dict[str, str]:
    """Route key -> logical id of the function the route's ``AWS_PROXY`` integration invokes."""
    resources = template.resources
    routes = {}
    for name, resource in resources.items():
        props = resource.get("Properties") or {}
        if resource.get("Type") != ROUTE_TYPE or not _of_api(props, api_id):
            continue
        target = re.fullmatch(r"integrations/\$\{(\w+)\}", _sub_text(props.get("Target"), f"{name}.Target"))
        if target is None:
            raise TemplateError(f'{name}.Target must be !Sub "integrations/${{SomeIntegration}}"')
        integration = resources.get(target[1]) or {}
        integration_props = integration.get("Properties") or {}
        if integration.get("Type") != INTEGRATION_TYPE or integration_props.get("IntegrationType") != "AWS_PROXY":
            raise TemplateError(f"{name}: {target[1]} is not an AWS_PROXY AWS::ApiGatewayV2::Integration")
        uri = _sub_text(integration_props.get("IntegrationUri"), f"{target[1]}.IntegrationUri")
        function = re.search(r"\$\{(\w+)\.Arn\}", uri)
        if function is None:
            raise TemplateError(f"{target[1]}.IntegrationUri names no function (${{SomeFunction.Arn}})")
        routes[str(props.get("RouteKey"))] = function[1]
    return routes


def websocket_stage(template: SamTemplate, api_id: str) -> str:
    """The API's stage name, a parameter's default when it is ``!Ref`` to one; ``local`` if none."""
    for resource in template.resources.values():
        props = resource.get("Properties") or {}
        if resource.get("Type") != STAGE_TYPE or not _of_api(props, api_id):
            continue
        name = props.get("StageName")
        if isinstance(name, str):
            return name
        if isinstance(name, dict) and set(name) == {"Ref"}:
            return template.parameter_defaults().get(str(name["Ref"]), "local")
    return "local"


def _of_api(props: Mapping[str, Any], api_id: str) -> bool:
    return props.get("ApiId") in ({"Ref": api_id}, api_id, None)


def _sub_text(value: Any, where: str) -> str:
    """A string, ``!Sub``, ``!Join``, ``!Ref`` or ``!GetAtt`` as ``!Sub`` text: references stay ``${X}``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            return re.sub(
                r"\$\{([^}!][^}]*)\}",
                lambda found: _sub_text(variables[found[1]], where) if found[1] in variables else found[0],
                text,
            )
        if function == "Ref":
            return f"${{{argument}}}"
        if function == "Fn::GetAtt":
            return f"${{{argument if isinstance(argument, str) else '.'.join(argument)}}}"
        if function == "Fn::Join":
            separator, parts = argument
            return str(separator).join(_sub_text(part, where) for part in parts)
    raise TemplateError(f"{where}: cannot read {json.dumps(value)}")


# -- one connection -------------------------------------------------------------------------------


@dataclass
class _Client:
    connection_id: str
    connected_at: float
    source_ip: str
    user_agent: str | None
    last_active: float


class _Connection(ServerConnection):
    """websockets' connection, which also reads the body of a plain HTTP request (``POST
    @connections/{id}``): its handshake parser refuses bodies, so the body is taken off the request
    and kept in ``http_body`` before the request reaches the parser."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.http_body = b""
        self.client: _Client | None = None
        self._head: bytearray | None = bytearray()
        self._continued = False

    def data_received(self, data: bytes) -> None:
        if self._head is None:
            super().data_received(data)
            return
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0 and len(self._head) < MAX_HEAD_BYTES:
            return
        buffered, self._head = bytes(self._head), None
        head, rest = buffered[: end + 4], buffered[end + 4 :]
        length = CONTENT_LENGTH.search(head)
        if end < 0 or length is None or not 0 < int(length[1]) <= MAX_HEAD_BYTES + MAX_MESSAGE_BYTES:
            super().data_received(buffered)  # the parser answers anything it cannot take
            return
        if len(rest) < int(length[1]):
            self._head = bytearray(buffered)
            if not self._continued and b"100-continue" in head.lower():
                self._continued = True
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            return
        self.http_body = rest[: int(length[1])]
        super().data_received(CONTENT_LENGTH.sub(b"", head) + rest[int(length[1]) :])


def _disconnect_status(connection: _Connection) -> tuple[int, str]:
    """The close code and reason of whichever side closed first; 1006 if no close frame came."""
    protocol = connection.protocol
    sent, received = protocol.close_sent, protocol.close_rcvd
    server_first = sent is not None and (received is None or protocol.close_rcvd_then_sent is False)
    frame = sent if server_first else received
    if frame is None:
        return 1006, DISCONNECT_REASONS[1006]
    return int(frame.code), frame.reason or DISCONNECT_REASONS.get(int(frame.code), "")


def _http_response(status: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> Response:
    response_headers = Headers()
    response_headers["Date"] = email.utils.formatdate(usegmt=True)
    response_headers["Connection"] = "close"
    for name, value in (headers or {}).items():
        response_headers[name] = value
    if status != 204:  # RFC 9110: a 204 has no content, nor a Content-Length
        response_headers["Content-Length"] = str(len(body))
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return Response(status, phrase, response_headers, body if status != 204 else b"")


def _json_response(status: int, document: Any, headers: Mapping[str, str] | None = None) -> Response:
    return _http_response(
        status, json.dumps(document).encode(), {"Content-Type": "application/json", **(headers or {})}
    )


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- the server -----------------------------------------------------------------------------------


class LocalWebSocketApi:
    """``start()`` binds and serves on a thread of its own; ``stop()`` closes every connection (each
    gets its ``$disconnect``) and the server. ``url`` is the WebSocket URL, ``http_url`` the
    ``@connections`` endpoint (the same port)."""

    def __init__(
        self,
        template: SamTemplate,
        functions: Mapping[str, Invocable],
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_WS_PORT,
        api_id: str | None = None,
        stage: str | None = None,
    ) -> None:
        found = api_id or websocket_api_id(template)
        if found is None:
            raise TemplateError(f"{template.path.name} declares no WebSocket API (AWS::ApiGatewayV2::Api)")
        self.api_id = found
        self.stage = stage or websocket_stage(template, found)
        self.routes: dict[str, Invocable] = {}
        for key, function_id in websocket_routes(template, found).items():
            if function_id not in functions:
                raise TemplateError(f"WebSocket route {key} invokes {function_id}, which is not a function")
            self.routes[key] = functions[function_id]
        self.host = host
        self._port = port
        self._address: tuple[str, int] | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self._clients: dict[str, _Connection] = {}

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> LocalWebSocketApi:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the WebSocket API is already running")
        try:
            listener = socket.create_server((self.host, self._port))
        except OSError as error:
            raise port_error(self.host, self._port, "LOCAL_WS_PORT", error) from None
        host, port = listener.getsockname()[:2]
        self._address = (str(host), int(port))
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(listener, ready), name="websocket-api", daemon=True)
        self._thread.start()
        ready.wait()
        if self._failure is not None:
            self._thread.join()
            self._thread = None
            raise LocalRuntimeError(f"cannot serve the WebSocket API on {host}:{port}: {self._failure}")

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        thread.join(timeout=CLOSE_TIMEOUT_SECONDS + HANDSHAKE_TIMEOUT_SECONDS)

    @property
    def port(self) -> int:
        if self._address is None:
            raise RuntimeError("the WebSocket API is not running")
        return self._address[1]

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def http_url(self) -> str:
        """The ``@connections`` endpoint: what ``WEBSOCKET_MANAGEMENT_URL`` is deployed."""
        return f"http://{self.host}:{self.port}"

    @property
    def connection_ids(self) -> list[str]:
        """The open connections' ids, in no particular order."""
        return list(self._clients)

    def drop_connections(self) -> int:
        """Cut every open connection's TCP stream with no closing handshake, as a network drop
        would (clients see 1006; each connection still gets its ``$disconnect``). For fault tests."""
        loop, dropped = self._loop, list(self._clients.values())
        if loop is None:
            return 0
        for connection in dropped:
            loop.call_soon_threadsafe(connection.transport.abort)
        return len(dropped)

    def _run(self, listener: socket.socket, ready: threading.Event) -> None:
        asyncio.run(self._main(listener, ready))

    async def _main(self, listener: socket.socket, ready: threading.Event) -> None:
        try:
            self._loop = asyncio.get_running_loop()
            self._stopping = asyncio.Event()
            server = await serve(
                self._on_connection,
                sock=listener,
                create_connection=_Connection,
                process_request=self._process_request,
                process_response=self._process_response,
                compression=None,
                max_size=MAX_MESSAGE_BYTES,
                ping_interval=None,
                open_timeout=HANDSHAKE_TIMEOUT_SECONDS,
                close_timeout=CLOSE_TIMEOUT_SECONDS,
                server_header="async-reports-local",
                logger=_websockets_logger,
            )
        except Exception as error:
            listener.close()
            self._failure = error
            ready.set()
            return
        ready.set()
        await self._stopping.wait()
        server.close()  # 1001 to every client; waits for each connection's $disconnect
        await server.wait_closed()

    # -- connections ----------------------------------------------------------------------------

    @property
    def _domain_name(self) -> str:
        return f"{self.host}:{self.port}"

    def _event(self, route_key: str, client: _Client, **values: Any) -> dict[str, Any]:
        return websocket_event(
            route_key,
            connection_id=client.connection_id,
            connected_at=int(client.connected_at * 1000),
            domain_name=self._domain_name,
            api_id=self.api_id,
            stage=self.stage,
            source_ip=client.source_ip,
            user_agent=client.user_agent,
            **values,
        )

    async def _invoke(self, route_key: str, event: dict[str, Any]) -> Any:
        function = self.routes[route_key]
        describe = f" {route_key} {event['requestContext']['connectionId']}"
        return await asyncio.to_thread(function.invoke, event, describe=describe)

    async def _process_response(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> Response | None:
        """``$connect``, once the handshake is valid: a status outside 2xx refuses it with that status."""
        assert isinstance(connection, _Connection)
        if response.status_code != 101:
            return None
        began = time.perf_counter()
        agents = request.headers.get_all("User-Agent")
        now = time.time()
        client = _Client(websocket_id(), now, str(connection.remote_address[0]), agents[-1] if agents else None, now)
        refusal = None
        status = 200
        if "$connect" in self.routes:
            headers: dict[str, list[str]] = {}
            for name, value in request.headers.raw_items():
                headers.setdefault(name, []).append(value)
            headers.setdefault("X-Forwarded-For", [client.source_ip])
            headers.setdefault("X-Forwarded-Port", [str(self.port)])
            headers.setdefault("X-Forwarded-Proto", ["http"])
            query = parse_qs(urlsplit(request.path).query, keep_blank_values=True)
            event = self._event("$connect", client, headers=headers, query=query)
            try:
                result = await self._invoke("$connect", event)
                status, refusal = self._connect_answer(result)
            except Exception:
                logger.exception("%s failed on $connect", self.routes["$connect"].name)
                status, refusal = 500, _json_response(500, {"message": "Internal server error"})
        if refusal is None:
            connection.client = client
        elapsed = (time.perf_counter() - began) * 1000
        outcome = "connected" if refusal is None else "refused"
        logger.info("CONNECT %s %s -> %d %s in %.0f ms", client.connection_id, request.path, status, outcome, elapsed)
        return refusal

    @staticmethod
    def _connect_answer(result: Any) -> tuple[int, Response | None]:
        """The ``$connect`` function's answer: accepted (no ``statusCode`` counts as 200), or the refusal."""
        if not isinstance(result, dict) or "statusCode" not in result:
            return 200, None
        status = int(result["statusCode"])
        if 200 <= status < 300:
            return status, None
        headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
        headers = {k: v for k, v in headers.items() if k.lower() not in ("content-length", "connection")}
        return status, _http_response(status, str(result.get("body") or "").encode(), headers)

    async def _on_connection(self, connection: ServerConnection) -> None:
        assert isinstance(connection, _Connection)
        assert connection.client is not None
        client = connection.client
        self._clients[client.connection_id] = connection
        try:
            async for message in connection:
                client.last_active = time.time()
                await self._on_message(connection, client, message)
        except ConnectionClosed as closed:  # the client went away: $disconnect follows
            logger.debug("connection %s closed: %s", client.connection_id, closed)
        finally:
            del self._clients[client.connection_id]
            await self._on_disconnect(connection, client)

    def route_key(self, message: str | bytes) -> str:
        """The route a message goes to: its JSON ``action`` if a route has that key, else ``$default``."""
        action = None
        if isinstance(message, str):
            try:
                body = json.loads(message)
            except ValueError:
                body = None
            if isinstance(body, dict):
                action = body.get("action")
        if isinstance(action, str) and not action.startswith("$") and action in self.routes:
            return action
        return "$default"

    async def _on_message(self, connection: _Connection, client: _Client, message: str | bytes) -> None:
        began = time.perf_counter()
        route_key = self.route_key(message)
        request_id = websocket_id()
        outcome = "ok"
        if route_key not in self.routes:
            outcome = "Forbidden (no route)"
            error = {"message": "Forbidden", "connectionId": client.connection_id, "requestId": request_id}
            await connection.send(json.dumps(error))
        else:
            event = self._event(route_key, client, body=message, request_id=request_id)
            try:
                await self._invoke(route_key, event)
            except Exception:
                logger.exception("%s failed on %s", self.routes[route_key].name, route_key)
                outcome = "Internal server error"
                error = {
                    "message": "Internal server error",
                    "connectionId": client.connection_id,
                    "requestId": request_id,
                }
                await connection.send(json.dumps(error))
        elapsed = (time.perf_counter() - began) * 1000
        logger.info("MESSAGE %s %s -> %s in %.0f ms", client.connection_id, route_key, outcome, elapsed)

    async def _on_disconnect(self, connection: _Connection, client: _Client) -> None:
        began = time.perf_counter()
        code, reason = _disconnect_status(connection)
        if "$disconnect" in self.routes:
            event = self._event("$disconnect", client, disconnect_status_code=code, disconnect_reason=reason)
            try:
                await self._invoke("$disconnect", event)
            except Exception:
                logger.exception("%s failed on $disconnect", self.routes["$disconnect"].name)
        elapsed = (time.perf_counter() - began) * 1000
        logger.info("DISCONNECT %s %d %s in %.0f ms", client.connection_id, code, reason, elapsed)

    # -- @connections ---------------------------------------------------------------------------

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Plain HTTP to ``[/stage]/@connections/{id}`` is the management API; anything else is a handshake."""
        assert isinstance(connection, _Connection)
        path = unquote(urlsplit(request.path).path)
        found = MANAGEMENT_PATH.match(path)
        if found is None:
            return None
        began = time.perf_counter()
        response = await self._manage(request.method, found["id"], connection.http_body)
        elapsed = (time.perf_counter() - began) * 1000
        status = response.status_code
        logger.info("%s %s -> %d %s in %.0f ms", request.method, path, status, response.reason_phrase, elapsed)
        return response

    async def _manage(self, method: str, connection_id: str, body: bytes) -> Response:
        request_id = {"x-amzn-RequestId": str(uuid.uuid4())}
        connection = self._clients.get(connection_id)
        gone = _json_response(
            410,
            {"message": f"connection {connection_id} is gone"},
            {"x-amzn-ErrorType": "GoneException", **request_id},
        )
        if connection is None or connection.client is None or connection.state is not State.OPEN:
            return gone
        client = connection.client
        if method == "POST":
            if len(body) > MAX_MESSAGE_BYTES:
                message = {"message": f"Message too long; the limit is {MAX_MESSAGE_BYTES} bytes"}
                return _json_response(413, message, {"x-amzn-ErrorType": "PayloadTooLargeException", **request_id})
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                data: str | bytes = body
            else:
                data = text
            try:
                await connection.send(data)
            except ConnectionClosed:
                return gone
            client.last_active = time.time()
            return _http_response(200, b"", request_id)
        if method == "GET":
            info = {
                "connectedAt": _iso(client.connected_at),
                "identity": {"sourceIp": client.source_ip, "userAgent": client.user_agent or ""},
                "lastActiveAt": _iso(client.last_active),
            }
            return _json_response(200, info, request_id)
        if method == "DELETE":
            await connection.close(1000)
            return _http_response(204, b"", request_id)
        return _json_response(405, {"message": f"no {method} on @connections"}, {"Allow": "GET, POST, DELETE"})
