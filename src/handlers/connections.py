"""ConnectionsFunction: the WebSocket API's $connect, $disconnect, subscribe and ping routes.

``$connect`` (with ``?reportId=&token=``, both required: a connection exists to watch a report)
and ``subscribe`` record a watch once the token proves the right to watch that report; the watch's
INSERT on the Connections table's stream makes NotifyFunction send the current state, by which
time the connection is open. Subscribing again to a watched report only refreshes the watch: it
sends nothing older than was sent, and the newer states come from the stream as they always do.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from reports import dependencies
from reports.model import utc_now
from reports.tokens import WatchTokenError, verify_watch_token

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])
metrics = Metrics()


def _answer(status: int, message: str) -> dict[str, Any]:
    return {"statusCode": status, "body": message}


def _watch(connection_id: str, report_id: str | None, token: str | None) -> dict[str, Any]:
    now = utc_now()
    try:
        grant = verify_watch_token(dependencies.watch_token_key(), token, now=now)
    except WatchTokenError as error:
        logger.info("watch refused", extra={"reason": str(error)})
        return _answer(401, str(error))
    if report_id and report_id != grant.report_id:
        return _answer(403, "the watch token was issued for another report")
    dependencies.connection_store().watch(connection_id, grant.report_id, grant.tenant, now)
    return _answer(200, "watching")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = event.get("requestContext") or {}
    route, connection_id = request.get("routeKey"), str(request.get("connectionId"))
    logger.append_keys(connection_id=connection_id, route=route)
    if route == "$connect":
        query = event.get("queryStringParameters") or {}
        return _watch(connection_id, query.get("reportId"), query.get("token"))
    if route == "$disconnect":
        dependencies.connection_store().forget_connection(connection_id)
        return _answer(200, "bye")
    try:
        body = json.loads(event.get("body") or "{}")
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if route == "subscribe":
        answer = _watch(connection_id, body.get("reportId"), body.get("token"))
        if answer["statusCode"] != 200:
            message = {"type": "error", "status": answer["statusCode"], "detail": answer["body"]}
            dependencies.pusher().reply(connection_id, message)
        return answer
    if route == "ping":
        dependencies.pusher().reply(connection_id, {"type": "pong"})
        return _answer(200, "pong")
    detail = 'unknown action; send {"action": "subscribe"|"ping", ...}'
    dependencies.pusher().reply(connection_id, {"type": "error", "status": 400, "detail": detail})
    return _answer(400, detail)
