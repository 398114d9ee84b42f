"""AWS on this machine: an embedded moto server with template.yaml's data resources in it.

Starting it points this process's boto3 at the server (``AWS_ENDPOINT_URL``, fake credentials) and
creates the data resources through moto's CloudFormation, the secrets and subscriptions through the
service APIs. ``export_environment()`` then sets every function's variables, resolved from the
template exactly as Lambda would see them (APIs served here resolving to where they are served),
plus the few ``local_variables()`` that only local mode has.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from async_reports_client.defaults import LOCAL_WEBHOOK_SECRET
from local.template import (
    SECRET_TYPE,
    TEMPLATE_PATH,
    DataStack,
    SamTemplate,
    TemplateError,
    create_data_stack,
    function_environment,
    referenced_resource,
)

logger = logging.getLogger("local.aws")

REGION = "us-east-1"
DEV_WEBHOOK_SECRET = LOCAL_WEBHOOK_SECRET
"""Signs local callbacks unless WEBHOOK_SECRET says otherwise; printed by `make run`, never used deployed.
The client's default too, so `async-reports wait --via webhook` verifies local callbacks as is."""


def local_variables(webhook_secret: str | None = None) -> dict[str, str]:
    """What local mode adds to the functions' variables, beyond what template.yaml gives them.

    - The local-mode switch: ``ALLOW_LOOPBACK_CALLBACKS``, the app's one setting that exists only in
      local mode (the template never sets it, so deployed functions refuse loopback callbacks), so
      that callbacks may reach receivers on 127.0.0.1 (the CLI's, the demo's). Nothing else changes.
    - ``WEBHOOK_SECRET``, local mode's own variable (``DESIGN.md``): the key the callbacks are signed
      with, also put in the template's webhook signing secret. Exported so that everything in this
      process (the demo, the tests) reads the one key.

    The names are the app's own constants (``reports.settings``), not spelled again here.
    """
    from reports import settings

    key = webhook_secret or os.environ.get(settings.WEBHOOK_SECRET) or DEV_WEBHOOK_SECRET
    return {
        settings.ALLOW_LOOPBACK_CALLBACKS: "true",
        settings.WEBHOOK_SECRET: key,
        # The local gateway serves the REST API at the root as well as under its stage, and the REST
        # answers' links are the root's; pushed and published links follow them.
        settings.API_BASE_PATH: "",
    }


def webhook_secret_values(template: SamTemplate, key: str) -> dict[str, str]:
    """The template's webhook signing secret holding ``key``: the secret the functions'
    ``WEBHOOK_SECRET_ARN`` names, whose string is the key's bytes (deployed, the whsec_ key is
    whsec_ + base64 of the secret's string). Empty if the key's bytes are no text a secret can hold."""
    from reports import settings

    try:
        text = base64.b64decode(key.removeprefix("whsec_"), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        logger.warning("WEBHOOK_SECRET's key is not text a secret can hold; its secret keeps a generated value")
        return {}
    for spec in template.functions().values():
        secret = referenced_resource(spec.environment.get(settings.WEBHOOK_SECRET_ARN))
        if secret and template.resources.get(secret, {}).get("Type") == SECRET_TYPE:
            return {secret: text}
    return {}


@dataclass
class EmbeddedAws:
    endpoint_url: str
    stack: DataStack
    template: SamTemplate
    session: Any
    webhook_secret: str = DEV_WEBHOOK_SECRET
    environments: dict[str, dict[str, str]] = field(default_factory=dict)
    """Each function's variables, once ``export_environment()`` has resolved them."""

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url)

    def export_environment(self) -> None:
        """Every function's variables (and ``local_variables()``) into ``os.environ``, where the
        in-process handlers read them. Call it once every API served here has its endpoint."""
        from reports.dependencies import clear_dependencies

        local = local_variables(self.webhook_secret)
        self.environments = {
            name: function_environment(spec, self.stack) | local for name, spec in self.template.functions().items()
        }
        _refuse_disagreements(self.environments)
        for environment in self.environments.values():
            os.environ.update(environment)
        clear_dependencies()

    def variable(self, name: str) -> str:
        """The value the functions' variables give ``name``; a ``TemplateError`` if none or several."""
        values = {env[name] for env in self.environments.values() if name in env}
        if len(values) != 1:
            found = "no function has it" if not values else f"the functions disagree: {', '.join(sorted(values))}"
            raise TemplateError(f"the functions' variable {name} names no one resource ({found})")
        return values.pop()


def _refuse_disagreements(environments: Mapping[str, Mapping[str, str]]) -> None:
    """The functions share one process here, so one ``os.environ``: two functions giving a variable
    different values would silently get the last one. Refuse that at start instead."""
    seen: dict[str, tuple[str, str]] = {}
    for function, environment in environments.items():
        for name, value in environment.items():
            first = seen.setdefault(name, (function, value))
            if first[1] != value:
                raise TemplateError(
                    f"{first[0]} and {function} set {name} to different values ({first[1]!r}, {value!r}); "
                    "the local runtime runs every function in one process, so their variables must agree"
                )


@contextmanager
def embedded_aws(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    parameters: Mapping[str, str] | None = None,
    template_path: Path = TEMPLATE_PATH,
    template: SamTemplate | None = None,
    endpoints: Mapping[str, str] | None = None,
    webhook_secret: str | None = None,
) -> Iterator[EmbeddedAws]:
    """``endpoints``: API logical id -> ``host:port`` (``create_data_stack``'s); more may be added to
    ``stack.endpoints`` before ``export_environment()``."""
    import boto3
    from moto.server import ThreadedMotoServer

    from reports import settings
    from reports.dependencies import clear_dependencies

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request at INFO
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    saved = dict(os.environ)
    try:
        server.start()
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
        template = template or SamTemplate.load(template_path)
        key = webhook_secret or saved.get(settings.WEBHOOK_SECRET) or DEV_WEBHOOK_SECRET
        session = boto3.Session(region_name=REGION)
        stack = create_data_stack(
            session,
            template,
            parameters=parameters,
            endpoints=endpoints or {},
            secret_values=webhook_secret_values(template, key),
        )
        yield EmbeddedAws(endpoint_url=endpoint, stack=stack, template=template, session=session, webhook_secret=key)
    finally:
        # moto's state belongs to the process, not to the server: left behind, the next runtime in
        # this process could not create its stack ("Stack async-reports-local already exists").
        import requests

        wsgi = server._server  # None unless it started
        if wsgi is not None:
            try:
                bound_host, bound_port = server.get_host_and_port()
                requests.post(f"http://{bound_host}:{bound_port}/moto-api/reset", timeout=30)
            except requests.RequestException:
                logger.warning("could not reset moto's state", exc_info=True)
            server.stop()
            wsgi.server_close()  # stop() leaves the port bound until the server is collected
        os.environ.clear()
        os.environ.update(saved)
        clear_dependencies()
