"""The Connections table: which WebSocket connections watch which report, and what each was sent.

Each watch is two items, so both questions are one Query: ``report#<id> / conn#<connection>``
(who watches this report; ``kind = watch``, whose INSERT on the stream triggers the replay of the
current state, and whose ``sentVersion`` is the last version claimed for that connection) and
``conn#<connection> / report#<id>`` (what this connection watches, for ``$disconnect`` and a 410).
Both expire just after API Gateway's two-hour connection limit, so a lost ``$disconnect`` leaves
nothing behind for long.

A push is claimed before it is sent (``sentVersion``, conditional), so the replay at connection and
the stream's changes never send a version twice or one older than was sent. The claim carries a
lease (``pushLease``, until the claiming invocation's deadline) and is confirmed once the push went
out: a push that failed gives its claim back, and one whose invocation died is claimed again by the
retry once the lease has run out, so no version is lost between the claim and the push.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from reports.errors import StoreUnavailableError

WATCH_KIND = "watch"
CONNECTION_LIFETIME = timedelta(hours=2, minutes=10)


def _report_pk(report_id: str) -> str:
    return f"report#{report_id}"


def _connection_pk(connection_id: str) -> str:
    return f"conn#{connection_id}"


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class PushClaim:
    """The right to send ``version`` to one watcher, held until ``lease_until`` (epoch ms)."""

    connection_id: str
    report_id: str
    version: int
    previous: int | None
    """The ``sentVersion`` before this claim, restored if the push fails."""
    lease_until: int


class ConnectionStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def watch(self, connection_id: str, report_id: str, tenant: str, now: datetime) -> bool:
        """Record (or refresh) a watch; True when it is new.

        A new watch's INSERT makes NotifyFunction replay the current state. Watching again keeps
        ``sentVersion`` (so nothing older than what was sent goes out again) and only pushes the
        expiry on: its MODIFY replays nothing, as the watch already gets every change after
        ``sentVersion``, in order, from the stream.
        """
        expires = {"N": str(int((now + CONNECTION_LIFETIME).timestamp()))}
        common = {"connectionId": {"S": connection_id}, "reportId": {"S": report_id}, "tenant": {"S": tenant}}
        try:
            # The connection's side first: a $disconnect or a 410 finds every watch through it.
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": _connection_pk(connection_id)},
                    "sk": {"S": _report_pk(report_id)},
                    "kind": {"S": "watching"},
                    "expiresAt": expires,
                }
                | common,
            )
            answer = self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": _report_pk(report_id)}, "sk": {"S": _connection_pk(connection_id)}},
                UpdateExpression="SET kind = :kind, connectionId = :c, reportId = :r, tenant = :t, expiresAt = :e",
                ExpressionAttributeValues={
                    ":kind": {"S": WATCH_KIND},
                    ":c": common["connectionId"],
                    ":r": common["reportId"],
                    ":t": common["tenant"],
                    ":e": expires,
                },
                ReturnValues="ALL_OLD",
            )
        except Exception as error:
            raise StoreUnavailableError(f"could not record the watch: {error}") from error
        return not answer.get("Attributes")

    def claim_push(
        self, connection_id: str, report_id: str, version: int, *, now: datetime, lease_until: datetime
    ) -> PushClaim | None:
        """The claim to send ``version`` of the report to this connection, or None: a watcher is sent
        each version once and never one older than it was sent (the stream's retries, and the replay
        at connection, race the changes). A claim whose invocation died unconfirmed can be taken again
        once its lease ran out. None too when the watch is gone."""
        return self._claim(
            connection_id,
            report_id,
            version,
            now=now,
            lease_until=lease_until,
            condition="attribute_exists(pk) AND (attribute_not_exists(sentVersion) OR sentVersion < :v "
            "OR (sentVersion = :v AND pushLease < :now))",
        )

    def claim_first_push(
        self, connection_id: str, report_id: str, version: int, *, now: datetime, lease_until: datetime
    ) -> PushClaim | None:
        """Like ``claim_push``, but only while nothing was claimed for this watch yet: the replay at
        connection sends the state at connection, and once the stream has begun sending, what it
        sends is consecutive, so a replay of a newer version would skip the ones in between."""
        return self._claim(
            connection_id,
            report_id,
            version,
            now=now,
            lease_until=lease_until,
            condition="attribute_exists(pk) AND (attribute_not_exists(sentVersion) "
            "OR (sentVersion = :v AND pushLease < :now))",
        )

    def _claim(
        self, connection_id: str, report_id: str, version: int, *, now: datetime, lease_until: datetime, condition: str
    ) -> PushClaim | None:
        lease = _epoch_ms(lease_until)
        try:
            answer = self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": _report_pk(report_id)}, "sk": {"S": _connection_pk(connection_id)}},
                UpdateExpression="SET sentVersion = :v, pushLease = :lease",
                ConditionExpression=condition,
                ExpressionAttributeValues={
                    ":v": {"N": str(version)},
                    ":lease": {"N": str(lease)},
                    ":now": {"N": str(_epoch_ms(now))},
                },
                ReturnValues="ALL_OLD",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return None
        except Exception as error:
            raise StoreUnavailableError(f"could not record the push: {error}") from error
        previous = answer.get("Attributes", {}).get("sentVersion", {}).get("N")
        return PushClaim(connection_id, report_id, version, int(previous) if previous else None, lease)

    def confirm_push(self, claim: PushClaim) -> None:
        """The push went out: the claim can no longer be taken over by a retry."""
        self._settle(claim, "REMOVE pushLease", {})

    def release_push(self, claim: PushClaim) -> None:
        """The push failed: ``sentVersion`` goes back to what it was, if the claim is still ours, so
        the stream's retry sends this version again. A claim taken over from a dead invocation
        (``previous`` is this version) gives back only its lease: what came before is not known."""
        if claim.previous is None:
            self._settle(claim, "REMOVE sentVersion, pushLease", {})
        elif claim.previous == claim.version:
            self._settle(claim, "SET pushLease = :expired", {":expired": {"N": "0"}})
        else:
            self._settle(
                claim, "SET sentVersion = :previous REMOVE pushLease", {":previous": {"N": str(claim.previous)}}
            )

    def _settle(self, claim: PushClaim, update: str, values: dict[str, Any]) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": _report_pk(claim.report_id)}, "sk": {"S": _connection_pk(claim.connection_id)}},
                UpdateExpression=update,
                ConditionExpression="sentVersion = :v AND pushLease = :lease",
                ExpressionAttributeValues={
                    ":v": {"N": str(claim.version)},
                    ":lease": {"N": str(claim.lease_until)},
                    **values,
                },
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return  # no longer ours: the watch is gone, or a later claim replaced this one
        except Exception as error:
            raise StoreUnavailableError(f"could not settle the push: {error}") from error

    def watchers(self, report_id: str) -> list[str]:
        return [item["connectionId"]["S"] for item in self._query(_report_pk(report_id))]

    def forget_connection(self, connection_id: str) -> int:
        """Everything a closed or gone connection watched; returns how many watches it had."""
        watched = [item["reportId"]["S"] for item in self._query(_connection_pk(connection_id))]
        for report_id in watched:
            self.forget_watch(connection_id, report_id)
        return len(watched)

    def forget_watch(self, connection_id: str, report_id: str) -> None:
        keys = [
            {"pk": {"S": _report_pk(report_id)}, "sk": {"S": _connection_pk(connection_id)}},
            {"pk": {"S": _connection_pk(connection_id)}, "sk": {"S": _report_pk(report_id)}},
        ]
        requests: dict[str, Any] = {self._table: [{"DeleteRequest": {"Key": key}} for key in keys]}
        try:
            for _ in range(5):
                requests = self._client.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
                if not requests:
                    return
        except Exception as error:
            raise StoreUnavailableError(f"could not forget the watch: {error}") from error
        raise StoreUnavailableError("could not forget the watch: DynamoDB left the deletes unprocessed")

    def _query(self, pk: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
        }
        try:
            while True:
                answer = self._client.query(**arguments)
                items.extend(answer.get("Items", []))
                if "LastEvaluatedKey" not in answer:
                    return items
                arguments["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        except Exception as error:
            raise StoreUnavailableError(f"could not read the Connections table: {error}") from error
