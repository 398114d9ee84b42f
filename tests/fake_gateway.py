"""The local runtime's API gateway over the template's routes, with fake functions: no AWS, no HTTP."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

from local.events import ACCOUNT_ID
from local.functions import LocalFunction
from local.gateway import ApiGateway
from local.template import DataStack, FunctionSpec, SamTemplate
from tests.conftest import template

Event = dict[str, Any]
Answer = Callable[[Event], Any]
OK: Event = {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}


class FakeFunction:
    """Stands in for a LocalFunction: the template's spec (so its routes), a canned answer, the events seen."""

    def __init__(self, spec: FunctionSpec, answer: Answer = lambda event: OK) -> None:
        self.spec = spec
        self.name = spec.logical_id
        self.events: list[Event] = []
        self._answer = answer

    def invoke(self, event: Event, *, describe: str = "") -> Any:
        self.events.append(event)
        return self._answer(event)


def fake_gateway(
    api_keys: Mapping[str, str],
    *,
    sam: SamTemplate | None = None,
    answer: Answer = lambda event: OK,
    parameters: Mapping[str, str] | None = None,
    **options: Any,
) -> tuple[ApiGateway, dict[str, FakeFunction]]:
    """Only parameters are resolved by the gateway (the throttle, CORS origins), so no stack is needed."""
    sam = sam or template()
    stack = DataStack(
        stack_name="unit",
        region="us-east-1",
        account=ACCOUNT_ID,
        physical_ids={},
        resource_types={},
        parameters=sam.parameter_defaults() | dict(parameters or {}),
    )
    functions = {name: FakeFunction(spec, answer) for name, spec in sam.functions().items()}
    api = ApiGateway(sam, stack, cast(dict[str, LocalFunction], functions), api_keys=api_keys, **options)
    return api, functions
