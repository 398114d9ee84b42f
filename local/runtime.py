"""The whole of template.yaml on this machine: AWS in an embedded moto server, the REST API on
``http://127.0.0.1:3000``, the WebSocket API (and its ``@connections`` endpoint) on
``ws://127.0.0.1:3001``, and every queue and stream feeding its function, all driven by the
template so nothing here can drift from what ``sam deploy`` creates."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from async_reports_client.defaults import LOCAL_API_KEY, LOCAL_API_URL, LOCAL_TENANT
from local import INSTALL_HINT, missing_packages
from local.template import DEFAULT_WS_PORT as TEMPLATE_DEFAULT_WS_PORT
from local.template import ROOT, TEMPLATE_PATH, DataStack, SamTemplate, TemplateError

logger = logging.getLogger("local.runtime")

DEFAULT_API_KEYS = f"{LOCAL_API_KEY}={LOCAL_TENANT}"  # the client's default key, so the CLI needs no flags
DEFAULT_API_PORT = int(urlsplit(LOCAL_API_URL).port or 3000)
DEFAULT_WS_PORT = TEMPLATE_DEFAULT_WS_PORT  # where create_data_stack resolves WebSocket APIs by default
DEFAULT_PARAMETERS = {"LogLevel": "WARNING"}
"""The runtime's one parameter override, unless ``LOCAL_PARAMETERS`` (or ``RuntimeConfig.parameters``)
gives others: the functions log warnings and errors, not every step. Applied only where the template
declares the parameter, so a template without it still starts; given overrides must all be declared."""
WEB_DIR = ROOT / "web"
"""The browser page (plain files, no build), served by the REST API's server at ``/``."""


class LocalRuntimeError(RuntimeError):
    """The runtime cannot start; the message says what is wrong and how to fix it."""


def template_problem(error: Exception, path: Path = TEMPLATE_PATH) -> LocalRuntimeError:
    """A ``TemplateError`` (or moto refusing the template) as the runtime reports it: what and where."""
    return LocalRuntimeError(f"{error}; fix {path.name} (`make validate` explains more)")


def parse_parameters(value: str) -> dict[str, str]:
    """``LOCAL_PARAMETERS``: ``Name=value Name2=value2``, as ``sam deploy --parameter-overrides`` takes them."""
    parameters = {}
    for pair in value.split():
        name, separator, setting = pair.partition("=")
        if not separator or not name:
            raise LocalRuntimeError(f"LOCAL_PARAMETERS: {pair!r} is not Name=value (example: LogLevel=DEBUG)")
        parameters[name] = setting
    return parameters


def parse_webhook_secret(value: str) -> str:
    """``WEBHOOK_SECRET``: a Standard Webhooks key, ``whsec_`` and base64."""
    import base64
    import binascii

    text = value.strip()
    try:
        key = base64.b64decode(text.removeprefix("whsec_"), validate=True) if text.startswith("whsec_") else b""
    except binascii.Error:
        key = b""
    if not key:
        raise LocalRuntimeError("WEBHOOK_SECRET must be whsec_ followed by base64 (unset, the dev key is used)")
    return text


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
    parameters: Mapping[str, str] | None = None
    """Template parameter overrides, each declared by the template; None: ``DEFAULT_PARAMETERS``."""
    webhook_secret: str | None = None
    """The whsec_ key local callbacks are signed with; None: ``WEBHOOK_SECRET``, else the dev key."""
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
        if environ.get("LOCAL_TEMPLATE", "").strip():
            values["template_path"] = Path(environ["LOCAL_TEMPLATE"].strip()).expanduser().resolve()
        if environ.get("LOCAL_PARAMETERS", "").strip():
            values["parameters"] = parse_parameters(environ["LOCAL_PARAMETERS"])
        if environ.get("WEBHOOK_SECRET", "").strip():
            values["webhook_secret"] = parse_webhook_secret(environ["WEBHOOK_SECRET"])
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
    """``python -m local`` checks before importing this module; this is for callers in Python."""
    missing = missing_packages()
    if missing:
        raise LocalRuntimeError(f"missing Python packages: {', '.join(missing)}; {INSTALL_HINT}")


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
        self._gateway: Any = None
        self._serving = False
        self._seeder: subprocess.Popen[str] | None = None
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
        """Start everything, or nothing: on any failure (or Ctrl-C) what was started is stopped again.

        The template is checked before moto starts, so a mistake in it is found in a second, and every
        ``TemplateError`` (moto refusing a resource included) is a ``LocalRuntimeError`` naming the fix."""
        _check_dependencies()
        config = self.config
        _check_port(config.host, config.api_port, "LOCAL_API_PORT")
        _check_port(config.host, config.aws_port, "LOCAL_AWS_PORT")
        _check_port(config.host, config.ws_port, "LOCAL_WS_PORT")
        try:
            template = SamTemplate.load(config.template_path)
            parameters = self._parameters(template)
            template.check(parameters)
            template.functions()
            template.rest_api_id()
            from local.websocket import websocket_api_id, websocket_routes

            websocket_api = websocket_api_id(template)
            if websocket_api is not None:
                websocket_routes(template, websocket_api)
        except TemplateError as error:
            raise template_problem(error, config.template_path) from None
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
        os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
        try:
            try:
                from local.embedded import embedded_aws
                from local.functions import LocalFunction

                self.aws = self._exit.enter_context(
                    embedded_aws(
                        host=config.host,
                        port=config.aws_port,
                        parameters=parameters,
                        template=template,
                        webhook_secret=config.webhook_secret,
                    )
                )
                self.stack = self.aws.stack
                self.functions = {name: LocalFunction(spec) for name, spec in template.functions().items()}
                # The servers are bound before the functions' variables are resolved: an API's URLs in
                # them (however the template builds them) resolve to where it is served here.
                if websocket_api is not None:
                    self._start_websocket(websocket_api)
                self._bind_api()
                self.aws.export_environment()
                if config.seed:
                    self.seed(*config.seed)
            except TemplateError as error:
                raise template_problem(error, config.template_path) from None
            self._start_event_sources()
            assert self._server is not None
            self._spawn("api", self._server.serve_forever)
            self._serving = True
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self._stop.set()
        self._stop_seeder()
        if self._server is not None:
            if self._serving:  # shutdown() waits for serve_forever() to notice: never, if it never ran
                self._server.shutdown()
            self._server.server_close()
            self._server = None
            self._serving = False
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()
        if self._websocket is not None:  # after the event sources (no more pushes), before moto ($disconnect)
            self._websocket.stop()
            self._websocket = None
        self._exit.close()

    def _parameters(self, template: SamTemplate) -> dict[str, str]:
        if self.config.parameters is not None:
            return dict(self.config.parameters)
        declared = template.document.get("Parameters") or {}
        return {name: value for name, value in DEFAULT_PARAMETERS.items() if name in declared}

    # -- pieces ---------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the runtime is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

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

    @property
    def routes(self) -> list[tuple[str, str]]:
        """The REST API's routes as (method, resource path), in the template's order."""
        return [] if self._gateway is None else [(route.method, route.resource) for route in self._gateway.routes]

    @property
    def webhook_secret(self) -> str:
        """The whsec_ key local callbacks are signed with (``WEBHOOK_SECRET``, else the dev key)."""
        return str(self.aws.webhook_secret)

    def seed(self, start: date, end: date) -> int:
        """Fill the bucket the functions' ``SALES_BUCKET`` names with the sample sales; the days written.

        ``python -m local.seed`` does it, in a session of its own: its worker processes never see the
        terminal's Ctrl-C (which would print a traceback each), and ``stop()`` ends them all at once."""
        from reports import settings

        bucket = self.aws.variable(settings.SALES_BUCKET)
        logger.info("seeding s3://%s with the sample sales of %s to %s ...", bucket, start, end)
        command = [sys.executable, "-m", "local.seed", "--bucket", bucket]
        command += ["--start", start.isoformat(), "--end", end.isoformat(), "--workers", "10"]
        self._seeder = subprocess.Popen(
            command,
            cwd=ROOT,
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        output, errors = self._seeder.communicate()
        code, self._seeder = self._seeder.returncode, None
        if code != 0:
            last = (errors.strip().splitlines() or [f"exit status {code}"])[-1]
            raise LocalRuntimeError(f"seeding s3://{bucket} failed: {last}")
        written = re.search(r": (\d+) days with sales", output)
        return int(written[1]) if written else 0

    def _stop_seeder(self) -> None:
        seeder, self._seeder = self._seeder, None
        if seeder is None or seeder.poll() is not None:
            return
        for stop_signal, patience in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(seeder.pid, stop_signal)
            try:
                seeder.communicate(timeout=patience)
                return
            except subprocess.TimeoutExpired:
                continue

    def _bind_api(self) -> None:
        """The REST API's server, bound (not yet serving), and the API's URLs resolving to it."""
        from local.gateway import ApiGateway, serve

        self._gateway = gateway = ApiGateway(
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
            raise port_error(self.config.host, self.config.api_port, "LOCAL_API_PORT", error) from None
        if gateway.api_id is not None:
            host, port = self._server.server_address[:2]
            self.aws.stack.endpoints[gateway.api_id] = f"{host!s}:{port}"

    def _start_websocket(self, api_id: str) -> None:
        from local.websocket import LocalWebSocketApi

        template, stack = self.aws.template, self.aws.stack
        stage = next(
            (
                stack.resolve(props["StageName"])
                for resource in template.resources.values()
                if resource.get("Type") == "AWS::ApiGatewayV2::Stage"
                and "StageName" in (props := resource.get("Properties") or {})
                and props.get("ApiId") in ({"Ref": api_id}, api_id)
            ),
            None,
        )
        websocket = LocalWebSocketApi(
            template, self.functions, host=self.config.host, port=self.config.ws_port, api_id=api_id, stage=stage
        )
        websocket.start()
        self._websocket = websocket
        stack.endpoints[api_id] = f"{websocket.host}:{websocket.port}"

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
