"""Who may deliver a report's callback right now: a lease on the Reports table item, taken by conditional write.

SNS and SQS deliver at least once, so two copies of one event can reach WebhookFunction at the same moment.
Before POSTing, a copy takes the lease (``callbackLeaseUntil``, epoch seconds) and counts its attempt
(``callbackAttempts``) in one conditional update; a copy that finds the lease held by another, or the callback
settled (``callbackStatus``), does not POST. The lease outlives the function's timeout, so it can only lapse
once its holder has certainly stopped (crashed, or timed out, without settling or releasing it).

These writes change no ``version``: watchers are not told about them (see ``notifications.notify_change``).
``ReportStore`` owns the report itself and settles the callback; ``CallbackLeases`` is the port,
``DynamoCallbackLeases`` the adapter (it takes its client).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from reports.errors import StoreUnavailableError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass(frozen=True, slots=True)
class Lease:
    """This copy may deliver until ``until`` (epoch seconds); ``attempt`` counts from 1 across every copy."""

    report_id: str
    attempt: int
    until: float


@dataclass(frozen=True, slots=True)
class Busy:
    """The lease was not ours: another copy holds it until ``until``, or (None) the callback is settled."""

    until: float | None


class CallbackLeases(abc.ABC):
    @abc.abstractmethod
    def claim(self, report_id: str, now: datetime, seconds: float) -> Lease | Busy:
        """Take the callback for ``seconds`` and count one attempt, unless it is settled or leased to another."""

    @abc.abstractmethod
    def release(self, lease: Lease) -> None:
        """Give the callback back after a failed attempt, so the next copy need not wait for the lease to lapse."""


class DynamoCallbackLeases(CallbackLeases):
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def claim(self, report_id: str, now: datetime, seconds: float) -> Lease | Busy:
        moment = now.timestamp()
        until = round(moment + seconds, 3)
        try:
            answer = self._client.update_item(
                TableName=self._table,
                Key={"id": {"S": report_id}},
                UpdateExpression="SET callbackLeaseUntil = :until ADD callbackAttempts :one",
                ConditionExpression=(
                    "attribute_exists(callbackUrl) AND attribute_not_exists(callbackStatus) "
                    "AND (attribute_not_exists(callbackLeaseUntil) OR callbackLeaseUntil <= :now)"
                ),
                ExpressionAttributeValues={
                    ":until": {"N": str(until)},
                    ":now": {"N": str(round(moment, 3))},
                    ":one": {"N": "1"},
                },
                ReturnValues="UPDATED_NEW",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return self._busy(report_id)
        except Exception as error:
            raise StoreUnavailableError(f"could not lease the callback of {report_id}: {error}") from error
        return Lease(report_id, int(answer["Attributes"]["callbackAttempts"]["N"]), until)

    def release(self, lease: Lease) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"id": {"S": lease.report_id}},
                UpdateExpression="REMOVE callbackLeaseUntil",
                # Only our own lease: once it lapsed, another copy may hold a newer one.
                ConditionExpression="callbackAttempts = :attempt AND callbackLeaseUntil = :until",
                ExpressionAttributeValues={
                    ":attempt": {"N": str(lease.attempt)},
                    ":until": {"N": str(lease.until)},
                },
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return  # lapsed and taken by another copy, which now decides
        except Exception as error:
            raise StoreUnavailableError(
                f"could not release the callback lease of {lease.report_id}: {error}"
            ) from error

    def _busy(self, report_id: str) -> Busy:
        try:
            item = self._client.get_item(
                TableName=self._table,
                Key={"id": {"S": report_id}},
                ProjectionExpression="callbackStatus, callbackLeaseUntil",
                ConsistentRead=True,
            ).get("Item")
        except Exception as error:
            raise StoreUnavailableError(f"could not read the callback lease of {report_id}: {error}") from error
        if not item or "callbackStatus" in item or "callbackLeaseUntil" not in item:
            return Busy(None)
        return Busy(float(item["callbackLeaseUntil"]["N"]))
