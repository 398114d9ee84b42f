"""An in-process API Gateway and SQS event sources over moto, driving the real handlers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from handlers import dead_letter, process, status, submit
from local.event_sources import SqsEventSource
from local.events import LambdaContext, api_gateway_event
from local.template import DataStack
from tests.conftest import REGION, template

TENANT = "tenant-a-key-id"
OTHER_TENANT = "tenant-b-key-id"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any

    def header(self, name: str) -> str | None:
        return {k.lower(): v for k, v in self.headers.items()}.get(name.lower())


class InProcessApi:
    """Routes a request to the function the template declares for it, shaped as API Gateway does."""

    def post(
        self,
        body: Any,
        *,
        headers: dict[str, str] | None = None,
        tenant: str | None = TENANT,
        content_type: str | None = "application/json",
    ) -> Answer:
        raw = body if isinstance(body, bytes) else (body if isinstance(body, str) else json.dumps(body)).encode()
        all_headers = ({"Content-Type": content_type} if content_type else {}) | (headers or {})
        event = api_gateway_event(
            method="POST",
            path="/api/v1/report",
            resource="/api/v1/report",
            headers=all_headers,
            body=raw,
            api_key_id=tenant,
        )
        return self._invoke(submit.handler, event, "SubmitFunction")

    def get(
        self, report_id: str, *, pdf: bool = False, headers: dict[str, str] | None = None, tenant: str | None = TENANT
    ) -> Answer:
        suffix = "/pdf" if pdf else ""
        event = api_gateway_event(
            method="GET",
            path=f"/api/v1/report/{report_id}{suffix}",
            resource=f"/api/v1/report/{{id}}{suffix}",
            path_parameters={"id": report_id},
            headers=headers or {},
            api_key_id=tenant,
        )
        return self._invoke(status.handler, event, "StatusFunction")

    def send(self, event: dict[str, Any]) -> Answer:
        """An event already shaped by API Gateway (such as a sample in ``events/``), to its function."""
        if event["httpMethod"] == "POST" and event["resource"] == "/api/v1/report":
            return self._invoke(submit.handler, event, "SubmitFunction")
        return self._invoke(status.handler, event, "StatusFunction")

    @staticmethod
    def _invoke(handler: Any, event: dict[str, Any], function: str) -> Answer:
        spec = template().functions()[function]
        response = handler(event, LambdaContext(function_name=function, timeout_seconds=spec.timeout))
        headers = dict(response.get("headers") or {})
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers[name] = values[-1]
        body = response.get("body")
        content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        parsed = json.loads(body) if body and "json" in content_type else (body or None)
        return Answer(response["statusCode"], headers, parsed)


@pytest.fixture
def api(stack: DataStack) -> InProcessApi:
    return InProcessApi()


def _source(stack: DataStack, queue: str, function: str, handler: Any) -> SqsEventSource:
    spec = template().functions()[function]
    sqs_event = next(e for e in spec.events.values() if e.get("Type") == "SQS")
    return SqsEventSource(
        boto3.client("sqs", region_name=REGION),
        queue_url=stack.ref(queue),
        queue_arn=stack.get_att(queue, "Arn"),
        handler=handler,
        function_name=function,
        timeout_seconds=spec.timeout,
        batch_size=int(sqs_event["Properties"].get("BatchSize", 10)),
        retry_delay_seconds=0,
    )


@pytest.fixture
def jobs(stack: DataStack) -> SqsEventSource:
    """The Jobs queue feeding ProcessFunction (failures become visible again at once)."""
    return _source(stack, "JobsQueue", "ProcessFunction", process.handler)


@pytest.fixture
def dead_letters(stack: DataStack) -> SqsEventSource:
    return _source(stack, "JobsDeadLetterQueue", "DeadLetterFunction", dead_letter.handler)


@pytest.fixture
def seeded(stack: DataStack) -> Iterator[DataStack]:
    """Sales data for the days the tests report on (the whole of January 2021, and Dec 2020)."""
    from datetime import date

    from reports.sales_archive import SalesArchive

    archive = SalesArchive(boto3.client("s3", region_name=REGION), stack.ref("SalesBucket"))
    archive.seed(date(2020, 12, 20), date(2021, 1, 31))
    return stack
