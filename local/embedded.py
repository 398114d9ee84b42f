"""AWS on this machine: an embedded moto server with template.yaml's data resources in it.

Starting it points this process's boto3 at the server (``AWS_ENDPOINT_URL``, fake credentials),
creates the data resources through moto's CloudFormation, and exports every function's resolved
variables, exactly as Lambda would see them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from async_reports_client.defaults import LOCAL_WEBHOOK_SECRET
from local.template import TEMPLATE_PATH, DataStack, SamTemplate, create_data_stack, function_environment

REGION = "us-east-1"
DEV_WEBHOOK_SECRET = LOCAL_WEBHOOK_SECRET
"""Signs local callbacks unless WEBHOOK_SECRET says otherwise; printed by `make run`, never used deployed.
The client's default too, so `async-reports wait --via webhook` verifies local callbacks as is."""
DEFAULT_WEBSOCKET_URL = "ws://127.0.0.1:3001"


def local_variables(websocket_url: str = DEFAULT_WEBSOCKET_URL) -> dict[str, str]:
    """Variables whose deployed values name what exists here in another form: the WebSocket API is
    the local runtime's own server, and secrets come from the environment, not Secrets Manager."""
    return {
        "WEBSOCKET_URL": websocket_url,
        "WEBSOCKET_MANAGEMENT_URL": "http" + websocket_url.removeprefix("ws"),
        "TOKEN_SECRET_ARN": "",
        "WEBHOOK_SECRET_ARN": "",
        "TOKEN_SECRET": os.environ.get("TOKEN_SECRET") or secrets.token_urlsafe(32),
        "WEBHOOK_SECRET": os.environ.get("WEBHOOK_SECRET") or DEV_WEBHOOK_SECRET,
        "ALLOW_LOOPBACK_CALLBACKS": "true",
    }


@dataclass(frozen=True)
class EmbeddedAws:
    endpoint_url: str
    stack: DataStack
    template: SamTemplate
    session: Any

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url)


@contextmanager
def embedded_aws(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    parameters: Mapping[str, str] | None = None,
    template_path: Path = TEMPLATE_PATH,
    overrides: Mapping[str, str] | None = None,
) -> Iterator[EmbeddedAws]:
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    from reports.dependencies import clear_dependencies

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request at INFO
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    saved = dict(os.environ)
    try:
        bound_host, bound_port = server.get_host_and_port()
        endpoint = f"http://{bound_host}:{bound_port}"
        os.environ.update(
            AWS_ENDPOINT_URL=endpoint,
            AWS_ACCESS_KEY_ID="local",
            AWS_SECRET_ACCESS_KEY="local",
            AWS_DEFAULT_REGION=REGION,
            AWS_REGION=REGION,
        )
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            os.environ.pop(name, None)
        template = SamTemplate.load(template_path)
        session = boto3.Session(region_name=REGION)
        stack = create_data_stack(session, template, parameters=parameters)
        local = local_variables() | dict(overrides or {})
        for spec in template.functions().values():
            os.environ.update(function_environment(spec, stack, local))
        os.environ.update(local)
        clear_dependencies()
        yield EmbeddedAws(endpoint_url=endpoint, stack=stack, template=template, session=session)
    finally:
        # moto's state belongs to the process, not to the server: left behind, the next runtime in
        # this process could not create its stack ("Stack async-reports-local already exists").
        import requests

        try:
            bound_host, bound_port = server.get_host_and_port()
            requests.post(f"http://{bound_host}:{bound_port}/moto-api/reset", timeout=30)
        except requests.RequestException:
            logging.getLogger("local.aws").warning("could not reset moto's state", exc_info=True)
        server.stop()
        os.environ.clear()
        os.environ.update(saved)
        clear_dependencies()
