"""The Connections table: which WebSocket connections watch which report.

Each watch is two items, so both questions are one Query: ``report#<id> / conn#<connection>``
(who watches this report; ``kind = watch``, whose INSERT on the stream triggers the replay of the
current state) and ``conn#<connection> / report#<id>`` (what this connection watches, for
``$disconnect``). Both expire just after API Gateway's two-hour connection limit, so a lost
``$disconnect`` leaves nothing behind for long.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from reports.errors import StoreUnavailableError

WATCH_KIND = "watch"
CONNECTION_LIFETIME = timedelta(hours=2, minutes=10)


def _report_pk(report_id: str) -> str:
    return f"report#{report_id}"


def _connection_pk(connection_id: str) -> str:
    return f"conn#{connection_id}"


class ConnectionStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def watch(self, connection_id: str, report_id: str, tenant: str, now: datetime) -> None:
        expires = {"N": str(int((now + CONNECTION_LIFETIME).timestamp()))}
        common = {"connectionId": {"S": connection_id}, "reportId": {"S": report_id}, "tenant": {"S": tenant}}
        items = [
            {"pk": {"S": _report_pk(report_id)}, "sk": {"S": _connection_pk(connection_id)}, "kind": {"S": WATCH_KIND}},
            {"pk": {"S": _connection_pk(connection_id)}, "sk": {"S": _report_pk(report_id)}, "kind": {"S": "watching"}},
        ]
        try:
            self._client.batch_write_item(
                RequestItems={
                    self._table: [{"PutRequest": {"Item": item | common | {"expiresAt": expires}}} for item in items]
                }
            )
        except Exception as error:
            raise StoreUnavailableError(f"could not record the watch: {error}") from error

    def claim_push(self, connection_id: str, report_id: str, version: int) -> bool:
        """Whether this connection should be sent ``version`` of the report: true once per version,
        and never for a version older than one it was already sent. The replay at connection and
        the stream's changes race each other; this keeps what a watcher sees in order and single.
        False too when the watch is gone."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": _report_pk(report_id)}, "sk": {"S": _connection_pk(connection_id)}},
                UpdateExpression="SET sentVersion = :v",
                ConditionExpression="attribute_exists(pk) AND (attribute_not_exists(sentVersion) OR sentVersion < :v)",
                ExpressionAttributeValues={":v": {"N": str(version)}},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        except Exception as error:
            raise StoreUnavailableError(f"could not record the push: {error}") from error
        return True

    def watchers(self, report_id: str) -> list[str]:
        return [item["connectionId"]["S"] for item in self._query(_report_pk(report_id))]

    def forget_connection(self, connection_id: str) -> int:
        """Everything a closed connection watched; returns how many watches it had."""
        watched = [item["reportId"]["S"] for item in self._query(_connection_pk(connection_id))]
        for report_id in watched:
            self.forget_watch(connection_id, report_id)
        return len(watched)

    def forget_watch(self, connection_id: str, report_id: str) -> None:
        keys = [
            {"pk": {"S": _report_pk(report_id)}, "sk": {"S": _connection_pk(connection_id)}},
            {"pk": {"S": _connection_pk(connection_id)}, "sk": {"S": _report_pk(report_id)}},
        ]
        try:
            self._client.batch_write_item(RequestItems={self._table: [{"DeleteRequest": {"Key": key}} for key in keys]})
        except Exception as error:
            raise StoreUnavailableError(f"could not forget the watch: {error}") from error

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
