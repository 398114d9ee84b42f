"""StatusFunction: ``GET /api/v1/report/{id}`` (the report, polled) and ``GET …/{id}/pdf`` (303)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers._api import base_path_of, build_resolver, tenant_of, watch_link
from reports import dependencies
from reports.http import API_PREFIX, pdf_answer, report_answer
from reports.model import utc_now
from reports.retrieval import find_report

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])  # only what we call; patching everything costs cold start
metrics = Metrics()
app = build_resolver()


@app.get(API_PREFIX + "/<report_id>")
def get_report(report_id: str) -> Any:
    event, now = app.current_event.raw_event, utc_now()
    tenant = tenant_of(event)
    report = find_report(dependencies.report_store(), report_id, tenant=tenant, now=now)
    logger.append_keys(report_id=report.id)
    answer = report_answer(
        report,
        status=200,
        base_path=base_path_of(event),
        now=now,
        websocket_href=watch_link(report.id, tenant, now),
        estimate=dependencies.duration_estimates().expected_seconds,
        pdf_uri=dependencies.presign_report_pdf(report) if report.completed else None,
        if_none_match=app.current_event.headers.get("if-none-match"),
    )
    # What polling costs: every GET, and how many of them a 304 answered without a body.
    metrics.add_metric(name="ReportPolls", unit=MetricUnit.Count, value=1)
    if answer.status == 304:
        metrics.add_metric(name="ReportPollsNotModified", unit=MetricUnit.Count, value=1)
    return answer


@app.get(API_PREFIX + "/<report_id>/pdf")
def get_pdf(report_id: str) -> Any:
    now = utc_now()
    report = find_report(dependencies.report_store(), report_id, tenant=tenant_of(app.current_event.raw_event), now=now)
    logger.append_keys(report_id=report.id)
    metrics.add_metric(name="PdfRequests", unit=MetricUnit.Count, value=1)
    return pdf_answer(
        report,
        presign=lambda _key: dependencies.presign_report_pdf(report) or "",
        now=now,
        estimate=dependencies.duration_estimates().expected_seconds,
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
