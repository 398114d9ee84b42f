"""SubmitFunction: ``POST /api/v1/report`` — accept a report request and answer 201 at once."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers._api import base_path_of, build_resolver, raw_body, tenant_of, watch_link
from reports import dependencies
from reports.callbacks import validate_callback_url
from reports.catalog import report_definitions
from reports.http import API_PREFIX, decode_json_body, parse_idempotency_key, report_answer, report_path
from reports.model import parse_report_request, utc_now
from reports.settings import settings
from reports.submission import submit_report

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])  # only what we call; patching everything costs cold start
metrics = Metrics()
app = build_resolver()


@app.post(API_PREFIX)
def create_report() -> Any:
    event, headers, now = app.current_event.raw_event, app.current_event.headers, utc_now()
    tenant = tenant_of(event)
    body = decode_json_body(headers.get("content-type"), raw_body(event))
    request = parse_report_request(
        body,
        known_types=report_definitions().keys(),
        today=now.date(),
        check_callback=lambda url: validate_callback_url(url, allow_loopback=settings().allow_loopback_callbacks).url,
    )
    submission = submit_report(
        request,
        tenant=tenant,
        idempotency_key=parse_idempotency_key(headers.get("idempotency-key")),
        store=dependencies.report_store(),
        queue=dependencies.job_queue(),
        idempotency=dependencies.idempotency_store(),
        now=now,
        retention_days=settings().report_retention_days,
        time_left=lambda: app.lambda_context.get_remaining_time_in_millis() / 1000,
    )
    report = submission.report
    logger.append_keys(report_id=report.id)
    metrics.add_metric(
        name="ReportsReplayed" if submission.replayed else "ReportsSubmitted", unit=MetricUnit.Count, value=1
    )
    base_path = base_path_of(event)
    extra = {"Location": report_path(base_path, report.id)} | (
        {"Idempotent-Replayed": "true"} if submission.replayed else {}
    )
    return report_answer(
        report,
        status=201,
        base_path=base_path,
        now=now,
        estimate=dependencies.duration_estimates().expected_seconds,
        headers=extra,
        websocket_href=watch_link(report.id, tenant, now),
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
