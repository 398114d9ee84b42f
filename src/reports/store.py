"""The Reports table: the single source of truth, and every write to it conditional.

``ReportStore`` is the port; ``DynamoReportStore`` the DynamoDB adapter (it takes its client);
tests may use either. A write that would move a report backwards, or complete it twice, raises
``TransitionRejectedError`` instead of happening.
"""

from __future__ import annotations

import abc
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from reports.errors import StoreUnavailableError, TransitionRejectedError
from reports.model import ALLOWED_SOURCES, Progress, Report, ReportErrorInfo, ReportStatus

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

REPORT_ENTITY = "report"
STATS_ENTITY = "stats"


class ReportStore(abc.ABC):
    @abc.abstractmethod
    def create(self, report: Report) -> None:
        """Insert a new report; never overwrites one with the same id."""

    @abc.abstractmethod
    def get(self, report_id: str) -> Report | None: ...

    @abc.abstractmethod
    def delete_queued(self, report_id: str) -> None:
        """Remove a report that never left QUEUED (compensates a failed enqueue)."""

    @abc.abstractmethod
    def start(self, report_id: str, now: datetime) -> Report:
        """QUEUED or RUNNING (a redelivery after a crash) -> RUNNING, counting the attempt."""

    @abc.abstractmethod
    def set_progress(self, report_id: str, progress: Progress, now: datetime) -> Report:
        """Record a step of a RUNNING report; percent never goes down."""

    @abc.abstractmethod
    def complete(self, report_id: str, pdf_key: str, now: datetime) -> Report: ...

    @abc.abstractmethod
    def fail(self, report_id: str, error: ReportErrorInfo, now: datetime) -> Report: ...

    @abc.abstractmethod
    def settle_callback(self, report_id: str, status: str, now: datetime) -> bool:
        """Record the callback's final outcome once; False when another delivery settled it first."""

    @abc.abstractmethod
    def record_duration(self, report_type: str, seconds: float) -> None:
        """Add one finished report's submit-to-completion time to its type's statistics."""

    @abc.abstractmethod
    def mean_duration(self, report_type: str) -> float | None:
        """Mean submit-to-completion seconds of this type, or None before the first one."""


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def report_to_item(report: Report) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": {"S": report.id},
        "entity": {"S": REPORT_ENTITY},
        "tenant": {"S": report.tenant},
        "reportType": {"S": report.report_type},
        "reportDate": {"S": report.report_date.isoformat()},
        "status": {"S": report.status.value},
        "createdAt": {"S": _iso(report.created_at)},
        "updatedAt": {"S": _iso(report.updated_at)},
        "expiresAt": {"N": str(report.expires_at)},
        "version": {"N": str(report.version)},
        "attempts": {"N": str(report.attempts)},
    }
    if report.started_at:
        item["startedAt"] = {"S": _iso(report.started_at)}
    if report.completed_at:
        item["completedAt"] = {"S": _iso(report.completed_at)}
    if report.progress:
        item["progressStep"] = {"S": report.progress.step}
        item["progressPercent"] = {"N": str(report.progress.percent)}
    if report.error:
        item["errorCode"] = {"S": report.error.code}
        item["errorMessage"] = {"S": report.error.message}
    if report.pdf_key:
        item["pdfKey"] = {"S": report.pdf_key}
    if report.callback_url:
        item["callbackUrl"] = {"S": report.callback_url}
    if report.callback_status:
        item["callbackStatus"] = {"S": report.callback_status}
    return item


def report_from_item(item: dict[str, Any]) -> Report:
    def text(name: str) -> str | None:
        value = item.get(name)
        return value["S"] if value else None

    def number(name: str, default: int = 0) -> int:
        value = item.get(name)
        return int(value["N"]) if value else default

    started, completed = text("startedAt"), text("completedAt")
    step, error_code, error_message = text("progressStep"), text("errorCode"), text("errorMessage")
    return Report(
        id=item["id"]["S"],
        tenant=item["tenant"]["S"],
        report_type=item["reportType"]["S"],
        report_date=date.fromisoformat(item["reportDate"]["S"]),
        status=ReportStatus(item["status"]["S"]),
        created_at=_parse_iso(item["createdAt"]["S"]),
        updated_at=_parse_iso(item["updatedAt"]["S"]),
        expires_at=number("expiresAt"),
        version=number("version", 1),
        attempts=number("attempts"),
        started_at=_parse_iso(started) if started else None,
        completed_at=_parse_iso(completed) if completed else None,
        progress=Progress(step, number("progressPercent")) if step else None,
        error=ReportErrorInfo(error_code, error_message or "") if error_code else None,
        pdf_key=text("pdfKey"),
        callback_url=text("callbackUrl"),
        callback_status=text("callbackStatus"),
    )


def _status_condition(target: ReportStatus) -> tuple[str, dict[str, Any]]:
    sources = sorted(ALLOWED_SOURCES[target])
    names = [f":from{i}" for i in range(len(sources))]
    values = {name: {"S": status.value} for name, status in zip(names, sources, strict=True)}
    return f"attribute_exists(id) AND #status IN ({', '.join(names)})", values


class DynamoReportStore(ReportStore):
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # -- reads and inserts ----------------------------------------------------------------------

    def create(self, report: Report) -> None:
        try:
            self._client.put_item(
                TableName=self._table, Item=report_to_item(report), ConditionExpression="attribute_not_exists(id)"
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            raise TransitionRejectedError(f"report {report.id} already exists") from None
        except Exception as error:
            raise _unavailable("put", error) from error

    def get(self, report_id: str) -> Report | None:
        try:
            answer = self._client.get_item(TableName=self._table, Key={"id": {"S": report_id}}, ConsistentRead=True)
        except Exception as error:
            raise _unavailable("get", error) from error
        item = answer.get("Item")
        if not item or item.get("entity", {}).get("S") != REPORT_ENTITY:
            return None
        return report_from_item(item)

    def delete_queued(self, report_id: str) -> None:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key={"id": {"S": report_id}},
                ConditionExpression="#status = :queued",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":queued": {"S": ReportStatus.QUEUED.value}},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            raise TransitionRejectedError(f"report {report_id} is no longer QUEUED") from None
        except Exception as error:
            raise _unavailable("delete", error) from error

    # -- status transitions ---------------------------------------------------------------------

    def start(self, report_id: str, now: datetime) -> Report:
        condition, values = _status_condition(ReportStatus.RUNNING)
        return self._update(
            report_id,
            "SET #status = :running, updatedAt = :now, startedAt = if_not_exists(startedAt, :now), "
            "attempts = attempts + :one, version = version + :one",
            condition,
            {**values, ":running": {"S": ReportStatus.RUNNING.value}, ":now": {"S": _iso(now)}, ":one": {"N": "1"}},
            target=ReportStatus.RUNNING,
        )

    def set_progress(self, report_id: str, progress: Progress, now: datetime) -> Report:
        return self._update(
            report_id,
            "SET progressStep = :step, progressPercent = :percent, updatedAt = :now, version = version + :one",
            "#status = :running AND (attribute_not_exists(progressPercent) OR progressPercent < :percent)",
            {
                ":running": {"S": ReportStatus.RUNNING.value},
                ":step": {"S": progress.step},
                ":percent": {"N": str(progress.percent)},
                ":now": {"S": _iso(now)},
                ":one": {"N": "1"},
            },
            target=ReportStatus.RUNNING,
        )

    def complete(self, report_id: str, pdf_key: str, now: datetime) -> Report:
        condition, values = _status_condition(ReportStatus.COMPLETED)
        return self._update(
            report_id,
            "SET #status = :completed, updatedAt = :now, completedAt = :now, pdfKey = :key, "
            "progressStep = :done, progressPercent = :hundred, version = version + :one",
            condition,
            {
                **values,
                ":completed": {"S": ReportStatus.COMPLETED.value},
                ":now": {"S": _iso(now)},
                ":key": {"S": pdf_key},
                ":done": {"S": "done"},
                ":hundred": {"N": "100"},
                ":one": {"N": "1"},
            },
            target=ReportStatus.COMPLETED,
        )

    def fail(self, report_id: str, error: ReportErrorInfo, now: datetime) -> Report:
        condition, values = _status_condition(ReportStatus.FAILED)
        return self._update(
            report_id,
            "SET #status = :failed, updatedAt = :now, completedAt = :now, errorCode = :code, "
            "errorMessage = :message, version = version + :one",
            condition,
            {
                **values,
                ":failed": {"S": ReportStatus.FAILED.value},
                ":now": {"S": _iso(now)},
                ":code": {"S": error.code},
                ":message": {"S": error.message[:1000]},
                ":one": {"N": "1"},
            },
            target=ReportStatus.FAILED,
        )

    def _update(
        self, report_id: str, expression: str, condition: str, values: dict[str, Any], *, target: ReportStatus
    ) -> Report:
        try:
            answer = self._client.update_item(
                TableName=self._table,
                Key={"id": {"S": report_id}},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            raise TransitionRejectedError(f"report {report_id} cannot move to {target.value} now") from None
        except Exception as error:
            raise _unavailable("update", error) from error
        return report_from_item(answer["Attributes"])

    def settle_callback(self, report_id: str, status: str, now: datetime) -> bool:
        # Not a version change: the report itself is unchanged, so watchers are not told again.
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"id": {"S": report_id}},
                UpdateExpression="SET callbackStatus = :status, callbackSettledAt = :now",
                ConditionExpression="attribute_exists(id) AND attribute_not_exists(callbackStatus)",
                ExpressionAttributeValues={":status": {"S": status}, ":now": {"S": _iso(now)}},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        except Exception as error:
            raise _unavailable("settle the callback of", error) from error
        return True

    # -- statistics -----------------------------------------------------------------------------

    def record_duration(self, report_type: str, seconds: float) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"id": {"S": f"{STATS_ENTITY}#{report_type}"}},
                UpdateExpression="SET entity = :entity ADD runs :one, totalMillis :millis",
                ExpressionAttributeValues={
                    ":entity": {"S": STATS_ENTITY},
                    ":one": {"N": "1"},
                    ":millis": {"N": str(max(0, round(seconds * 1000)))},
                },
            )
        except Exception as error:
            raise _unavailable("update statistics of", error) from error

    def mean_duration(self, report_type: str) -> float | None:
        try:
            answer = self._client.get_item(TableName=self._table, Key={"id": {"S": f"{STATS_ENTITY}#{report_type}"}})
        except Exception as error:
            raise _unavailable("read statistics of", error) from error
        item = answer.get("Item")
        if not item or int(item.get("runs", {}).get("N", "0")) == 0:
            return None
        return int(item["totalMillis"]["N"]) / int(item["runs"]["N"]) / 1000


def _unavailable(action: str, error: Exception) -> StoreUnavailableError:
    return StoreUnavailableError(f"could not {action} the Reports table: {error}")
