"""The whole of template.yaml on this machine: AWS in an embedded moto server, the REST API on
``http://127.0.0.1:3000``, the WebSocket API (and its ``@connections`` endpoint) on
``ws://127.0.0.1:3001``, and every queue and stream feeding its function, all driven by the
template so nothing here can drift from what ``sam deploy`` creates."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from async_reports_client.defaults import LOCAL_API_KEY, LOCAL_API_URL, LOCAL_TENANT
from local.template import ROOT, TEMPLATE_PATH, DataStack, SamTemplate, TemplateError

logger = logging.getLogger("local.runtime")

DEFAULT_API_KEYS = f"{LOCAL_API_KEY}={LOCAL_TENANT}"  # the client's default key, so the CLI needs no flags
DEFAULT_API_PORT = int(urlsplit(LOCAL_API_URL).port or 3000)
DEFAULT_WS_PORT = 3001
WEB_DIR = ROOT / "web"
"""The browser page (plain files, no build), served by the REST API's server at ``/``."""


class LocalRuntimeError(RuntimeError):
    """The runtime cannot start; the message says what is wrong and how to fix it."""


def parse_api_keys(value: str) -> dict[str, str]:
    """``key=tenant,key2=tenant2`` as ``LOCAL_API_KEYS`` holds it."""
    keys = {}
    for pair in filter(None, (part.strip() for part in value.split(","))):
        key, separator, tenant = pair.partition("=")
        if not separator or not key.strip() or not tenant.strip():
            raise LocalRuntimeError(f"LOCAL_API_KEYS: {pair!r} is not key=tenant (example: {DEFAULT_API_KEYS})")
        keys[key.strip()] = tenant.strip()
    if not keys:
        raise LocalRuntimeError(f"LOCAL_API_KEYS is empty; example: {DEFAULT_API_KEYS}")
    return keys


def parse_seed_range(value: str) -> tuple[date, date] | None:
    """``LOCAL_SEED``: empty for all the sample data, ``none`` for nothing, or ``FIRST:LAST`` dates."""
    from reports.sales import SAMPLE_DATA_END, SAMPLE_DATA_START

    text = value.strip().lower()
    if not text:
        return SAMPLE_DATA_START, SAMPLE_DATA_END
    if text == "none":
        return None
    first, separator, last = text.partition(":")
    try:
        start, end = date.fromisoformat(first), date.fromisoformat(last if separator else first)
    except ValueError:
        raise LocalRuntimeError(
            f"LOCAL_SEED must be none or FIRST:LAST dates (2021-01-01:2021-01-31), got {value!r}"
        ) from None
    if end < start:
        raise LocalRuntimeError(f"LOCAL_SEED: {last} is before {first}")
    return start, end


@dataclass(frozen=True)
class RuntimeConfig:
    host: str = "127.0.0.1"
    api_port: int = DEFAULT_API_PORT
    aws_port: int = 0
    ws_port: int = DEFAULT_WS_PORT
    api_keys: Mapping[str, str] = field(default_factory=lambda: parse_api_keys(DEFAULT_API_KEYS))
    seed: tuple[date, date] | None = None
    parameters: Mapping[str, str] = field(default_factory=lambda: {"LogLevel": "WARNING"})
    template_path: Path = TEMPLATE_PATH
    poll_seconds: int = 1
    web_dir: Path | None = WEB_DIR

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ, **overrides: Any) -> RuntimeConfig:
        def port(name: str, default: int) -> int:
            raw = environ.get(name, "").strip()
            if not raw:
                return default
            if not (raw.isascii() and raw.isdigit()) or not 0 <= int(raw) <= 65535:
                raise LocalRuntimeError(f"{name} must be a port number from 0 to 65535, got {raw!r}")
            return int(raw)

        values: dict[str, Any] = {
            "seed": parse_seed_range(environ.get("LOCAL_SEED", "")),
            "api_port": port("LOCAL_API_PORT", DEFAULT_API_PORT),
            "aws_port": port("LOCAL_AWS_PORT", 0),
            "ws_port": port("LOCAL_WS_PORT", DEFAULT_WS_PORT),
            "api_keys": parse_api_keys(environ.get("LOCAL_API_KEYS") or DEFAULT_API_KEYS),
        }
        values.update(overrides)
        return cls(**values)


def port_error(host: str, port: int, variable: str, error: OSError) -> LocalRuntimeError:
    """What to say when ``host:port`` (chosen by ``variable``) cannot be bound."""
    if error.errno == errno.EADDRINUSE:
        return LocalRuntimeError(
            f"port {port} on {host} is already in use; stop what is using it "
            f"(`ss -ltnp 'sport = :{port}'` shows it) or choose another with {variable}=..."
        )
    return LocalRuntimeError(f"cannot listen on {host}:{port}: {error.strerror}")


def _check_port(host: str, port: int, variable: str) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise port_error(host, port, variable, error) from None


def _check_dependencies() -> None:
    missing = []
    for module in ("moto", "boto3", "samtranslator", "aws_lambda_powertools", "matplotlib", "reportlab", "websockets"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise LocalRuntimeError(
            f"missing Python packages: {', '.join(missing)}; run `make install` (or "
            "`pip install -r requirements.txt` in the environment you use)"
        )


class LocalRuntime:
    """Start with ``with LocalRuntime(config) as runtime:``; ``runtime.api_url`` is the REST API,
    ``runtime.ws_url`` the WebSocket API (None when the template declares none)."""

    def __init__(self, config: RuntimeConfig | None = None) -> None:
        self.config = config or RuntimeConfig()
        self._exit = contextlib.ExitStack()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: ThreadingHTTPServer | None = None
        self._websocket: Any = None
        self.local_overrides: dict[str, str] = {}
        """Function variables whose template values name what is served here instead (the WebSocket
        API's URLs): given to ``embedded_aws`` so they are never resolved, and set in ``os.environ``
        again once the local servers are bound. Add to it before ``start()`` to override others."""
        self.stack: DataStack | None = None
        self.aws: Any = None
        self.functions: dict[str, Any] = {}
        self.sources: list[Any] = []

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> LocalRuntime:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        _check_dependencies()
        config = self.config
        _check_port(config.host, config.api_port, "LOCAL_API_PORT")
        _check_port(config.host, config.aws_port, "LOCAL_AWS_PORT")
        _check_port(config.host, config.ws_port, "LOCAL_WS_PORT")
        try:
            template = SamTemplate.load(config.template_path)
            template.functions()
            from local.websocket import websocket_api_id, websocket_routes

            websocket_api = websocket_api_id(template)
            if websocket_api is not None:
                websocket_routes(template, websocket_api)
            serves_websocket = websocket_api is not None
        except TemplateError as error:
            raise LocalRuntimeError(f"{error}; fix template.yaml (`make validate` explains more)") from None
        if serves_websocket:
            self._set_websocket_overrides(f"ws://{config.host}:{config.ws_port}")
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
        os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
        try:
            from local.embedded import embedded_aws

            self.aws = self._exit.enter_context(
                embedded_aws(
                    host=config.host,
                    port=config.aws_port,
                    parameters=config.parameters,
                    template_path=config.template_path,
                    overrides=self.local_overrides,
                )
            )
            self.stack = self.aws.stack
            from local.functions import LocalFunction

            self.functions = {name: LocalFunction(spec) for name, spec in self.aws.template.functions().items()}
            if serves_websocket:
                self._start_websocket()
            self._apply_local_overrides()
            if config.seed:
                self.seed(*config.seed)
            self._start_event_sources()
            self._start_api()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()
        if self._websocket is not None:  # after the event sources (no more pushes), before moto ($disconnect)
            self._websocket.stop()
            self._websocket = None
        self._exit.close()

    # -- pieces ---------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the runtime is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def page_config(self) -> dict[str, str]:
        """``/config.json`` for the page at ``/``: this API and the first dev key, so it works at once."""
        return {"apiUrl": self.api_url, "apiKey": next(iter(self.config.api_keys))}

    @property
    def ws_url(self) -> str | None:
        """``ws://127.0.0.1:PORT``; its ``@connections`` endpoint is ``http://`` on the same port."""
        return None if self._websocket is None else str(self._websocket.url)

    def drop_websocket_connections(self) -> int:
        """Cut every WebSocket connection as a network drop would (for fault tests); how many."""
        return 0 if self._websocket is None else int(self._websocket.drop_connections())

    @property
    def aws_endpoint(self) -> str:
        return str(self.aws.endpoint_url)

    def seed(self, start: date, end: date) -> int:
        from reports.sales_archive import SalesArchive

        archive = SalesArchive(self.aws.client("s3"), self.aws.stack.ref("SalesBucket"))
        return archive.seed(start, end, workers=10)

    def _start_api(self) -> None:
        from local.gateway import ApiGateway, serve

        gateway = ApiGateway(
            self.aws.template,
            self.aws.stack,
            self.functions,
            api_keys=self.config.api_keys,
            web_dir=self.config.web_dir,
            page_config=self.page_config,
        )
        try:
            self._server = serve(gateway, self.config.host, self.config.api_port)
        except OSError as error:
            raise LocalRuntimeError(
                f"cannot serve the API on {self.config.host}:{self.config.api_port}: {error}"
            ) from None
        self._spawn("api", self._server.serve_forever)

    def _start_websocket(self) -> None:
        from local.websocket import LocalWebSocketApi

        try:
            websocket = LocalWebSocketApi(
                self.aws.template,
                self.functions,
                host=self.config.host,
                port=self.config.ws_port,
                stage=self.config.parameters.get("StageName"),
            )
        except TemplateError as error:
            raise LocalRuntimeError(f"{error}; fix template.yaml (`make validate` explains more)") from None
        websocket.start()
        self._websocket = websocket
        self._set_websocket_overrides(websocket.url)

    def _set_websocket_overrides(self, url: str) -> None:
        """The functions' WebSocket variables: the deployed URLs name the API Gateway endpoints."""
        self.local_overrides["WEBSOCKET_URL"] = url
        self.local_overrides["WEBSOCKET_MANAGEMENT_URL"] = "http" + url.removeprefix("ws")

    def _apply_local_overrides(self) -> None:
        """After ``embedded_aws`` has set the functions' variables: the overrides win."""
        from reports.dependencies import clear_dependencies

        os.environ.update(self.local_overrides)
        clear_dependencies()

    def _start_event_sources(self) -> None:
        """Each SQS and DynamoDB event of the template, with its settings (batch size, filters, retries,
        bisection, on-failure destination...), polled on its own thread."""
        from functools import partial

        from local.event_sources import SqsEventSource, event_sources_from_template

        try:
            sources = event_sources_from_template(self.functions, self.aws.stack, self.aws.client, self._invoker)
        except TemplateError as error:
            raise LocalRuntimeError(f"{error}; fix template.yaml (`make validate` explains more)") from None
        for source in sources:
            name = f"{source.function_name}-{source.event_name}"
            if isinstance(source, SqsEventSource):
                self._spawn(f"sqs-{name}", self._loop(partial(source.poll_once, self.config.poll_seconds)))
            else:
                self._spawn(f"stream-{name}", self._loop(source.poll_once, pause=0.05))
            self.sources.append(source)

    @staticmethod
    def _invoker(function: Any, event_name: str) -> Callable[[dict[str, Any], Any], Any]:
        return lambda event, _context: function.invoke(
            event, describe=f" {event_name}: {len(event.get('Records', []))} record(s)"
        )

    def _loop(self, poll: Callable[[], Any], pause: float = 0.0) -> Callable[[], None]:
        def run() -> None:
            while not self._stop.is_set():
                try:
                    result = poll()
                    if pause and not getattr(result, "received", 0):
                        self._stop.wait(pause)
                except Exception:
                    if self._stop.is_set():
                        return
                    logger.exception("event source failed; retrying in 1 s")
                    self._stop.wait(1)

        return run

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)
