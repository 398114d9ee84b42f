"""Idempotency keys for ``POST /api/v1/report``.

Shaped like Powertools' idempotency persistence (a base class, a DynamoDB layer, records that
expire through TTL), but kept in our code because the submit path must tell apart what
Powertools' decorator cannot: replay the *current* report for a used key, ``409`` while the first
request is still in flight, ``422`` when the key comes back with another body.

The report id is chosen before the claim and stored in it, so a request that died half-way is
taken over under the same id: a race can at worst collide on the Reports table's conditional put,
never create a second report.
"""

from __future__ import annotations

import abc
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from reports.errors import ReportsError, StoreUnavailableError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

IN_PROGRESS = "INPROGRESS"
COMPLETED = "COMPLETED"
IN_FLIGHT_SECONDS = 30
"""How long a claim blocks its key if its request dies before completing."""


class IdempotencyKeyReusedError(ReportsError):
    """The key was used before with a different request body (HTTP 422)."""


class IdempotencyInFlightError(ReportsError):
    """The first request with this key has not finished yet (HTTP 409)."""


@dataclass(frozen=True)
class Claim:
    record_id: str
    report_id: str
    fresh: bool
    """True when this request made the claim; False when an earlier request holds the key."""
    in_flight_until: int = 0
    """For an earlier claim still IN_PROGRESS: epoch second until which it blocks the key."""


def fingerprint(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def record_id(tenant: str, key: str) -> str:
    return f"{tenant}#{key}"


class IdempotencyStore(abc.ABC):
    @abc.abstractmethod
    def claim(self, tenant: str, key: str, payload: dict[str, Any], report_id: str, now: datetime) -> Claim:
        """Claim the key for ``report_id``, or describe the earlier claim (422 if its body differs)."""

    @abc.abstractmethod
    def take_over(self, claim: Claim, now: datetime) -> Claim:
        """Claim again a key whose first request died in flight; 409 if someone else got there first."""

    @abc.abstractmethod
    def complete(self, claim: Claim) -> None: ...

    @abc.abstractmethod
    def release(self, claim: Claim) -> None:
        """Forget a claim whose request failed, so the client can retry with the same key."""


class DynamoIdempotencyStore(IdempotencyStore):
    def __init__(self, client: DynamoDBClient, table_name: str, *, expires_seconds: int) -> None:
        self._client = client
        self._table = table_name
        self._expires_seconds = expires_seconds

    def claim(self, tenant: str, key: str, payload: dict[str, Any], report_id: str, now: datetime) -> Claim:
        rid = record_id(tenant, key)
        digest = fingerprint(payload)
        epoch = int(now.timestamp())
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "id": {"S": rid},
                    "status": {"S": IN_PROGRESS},
                    "validation": {"S": digest},
                    "report_id": {"S": report_id},
                    "expiration": {"N": str(epoch + self._expires_seconds)},
                    "in_progress_expiration": {"N": str(epoch + IN_FLIGHT_SECONDS)},
                },
                # Free, or expired (TTL deletes lazily, so an expired record may still be there).
                ConditionExpression="attribute_not_exists(id) OR expiration < :now",
                ExpressionAttributeValues={":now": {"N": str(epoch)}},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return self._earlier_claim(rid, digest)
        except Exception as error:
            raise StoreUnavailableError(f"could not claim the idempotency key: {error}") from error
        return Claim(record_id=rid, report_id=report_id, fresh=True)

    def _earlier_claim(self, rid: str, digest: str) -> Claim:
        """The key is taken: describe the claim that holds it, or refuse a different body (422)."""
        existing = self._read(rid)
        if existing is None:  # expired and removed between our write and our read
            raise IdempotencyInFlightError("this Idempotency-Key changed hands while we looked; retry the request")
        if existing.get("validation", {}).get("S") != digest:
            raise IdempotencyKeyReusedError("this Idempotency-Key was already used with a different request body")
        in_flight_until = 0
        if existing["status"]["S"] == IN_PROGRESS:
            in_flight_until = int(existing.get("in_progress_expiration", {}).get("N", "0"))
        return Claim(record_id=rid, report_id=existing["report_id"]["S"], fresh=False, in_flight_until=in_flight_until)

    def take_over(self, claim: Claim, now: datetime) -> Claim:
        epoch = int(now.timestamp())
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"id": {"S": claim.record_id}},
                UpdateExpression="SET #status = :in_progress, in_progress_expiration = :until",
                # The claim we saw, unchanged: a dead in-flight request, or a finished one whose
                # report is gone (its enqueue failed and was compensated).
                ConditionExpression="(#status = :in_progress AND in_progress_expiration = :seen) OR "
                "(#status = :completed AND :seen = :zero)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":until": {"N": str(epoch + IN_FLIGHT_SECONDS)},
                    ":in_progress": {"S": IN_PROGRESS},
                    ":completed": {"S": COMPLETED},
                    ":seen": {"N": str(claim.in_flight_until)},
                    ":zero": {"N": "0"},
                },
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            raise IdempotencyInFlightError("another request with this Idempotency-Key is being processed") from None
        except Exception as error:
            raise StoreUnavailableError(f"could not take over the idempotency key: {error}") from error
        return Claim(record_id=claim.record_id, report_id=claim.report_id, fresh=True)

    def complete(self, claim: Claim) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"id": {"S": claim.record_id}},
                UpdateExpression="SET #status = :completed REMOVE in_progress_expiration",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":completed": {"S": COMPLETED}},
            )
        except Exception as error:
            raise StoreUnavailableError(f"could not complete the idempotency key: {error}") from error

    def release(self, claim: Claim) -> None:
        try:
            self._client.delete_item(TableName=self._table, Key={"id": {"S": claim.record_id}})
        except Exception as error:
            raise StoreUnavailableError(f"could not release the idempotency key: {error}") from error

    def _read(self, rid: str) -> dict[str, Any] | None:
        try:
            answer = self._client.get_item(TableName=self._table, Key={"id": {"S": rid}}, ConsistentRead=True)
        except Exception as error:
            raise StoreUnavailableError(f"could not read the idempotency key: {error}") from error
        return answer.get("Item")
