"""Use case: deliver a report's callback, signed, once.

The Callbacks queue carries the ReportEvents message; the Reports table says where to send it and
whether it was already delivered (SNS and SQS deliver at least once), so a receiver never accepts
the same event twice. Every attempt of one event carries the same ``webhook-id``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from reports.callbacks import check_delivery_target
from reports.errors import CallbackHostUnresolvableError, ValidationError
from reports.store import ReportStore
from reports.webhooks import deliver, sign, webhook_message_id, webhook_payload

logger = logging.getLogger(__name__)

DELIVERED = "delivered"
GONE = "gone"
REFUSED = "refused"


class Verdict(StrEnum):
    DONE = "done"
    """Delivered, gone (410), refused, or nothing owed: acknowledge the message."""
    RETRY = "retry"


@dataclass(frozen=True)
class DeliveryOutcome:
    verdict: Verdict
    reason: str
    status: int | None = None


def deliver_callback(
    message: str, *, store: ReportStore, secret: str, now: datetime, allow_loopback: bool, timeout: float = 10.0
) -> DeliveryOutcome:
    event = json.loads(message)
    report_id, event_type = str(event["data"]["id"]), str(event["type"])
    report = store.get(report_id)
    if report is None or not report.callback_url:
        return DeliveryOutcome(Verdict.DONE, "no callback is owed")
    if report.callback_status:
        return DeliveryOutcome(Verdict.DONE, f"already {report.callback_status}")
    try:
        target = check_delivery_target(report.callback_url, allow_loopback=allow_loopback)
    except CallbackHostUnresolvableError as error:
        return DeliveryOutcome(Verdict.RETRY, error.detail)
    except ValidationError as error:
        # It passed at submit time; its host now resolves somewhere it must not go.
        store.settle_callback(report_id, REFUSED, now)
        logger.warning("callback refused at delivery", extra={"report_id": report_id, "detail": error.detail})
        return DeliveryOutcome(Verdict.DONE, error.detail)
    occurred = datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00"))
    payload = webhook_payload(event_type, event["data"], occurred)
    headers = sign(secret, webhook_message_id(report_id, event_type), now, payload)
    result = deliver(target, payload, headers, timeout=timeout)
    if result.delivered:
        store.settle_callback(report_id, DELIVERED, now)
        return DeliveryOutcome(Verdict.DONE, "delivered", result.status)
    if result.gone:
        store.settle_callback(report_id, GONE, now)
        return DeliveryOutcome(Verdict.DONE, "the receiver answered 410 Gone", result.status)
    return DeliveryOutcome(Verdict.RETRY, result.reason, result.status)
