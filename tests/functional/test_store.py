"""DynamoReportStore against the template's Reports table in moto: every write the status machine
forbids is refused by DynamoDB's condition, raises our error, and leaves the stored item as it was.

The processing tests reach most of these writes only behind an earlier read of the report, so
they would not notice a condition that let anything through; these drive the adapter directly.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import pytest

from local.template import DataStack
from reports.errors import StoreUnavailableError, TransitionRejectedError
from reports.model import Progress, Report, ReportErrorInfo, ReportStatus, new_report_id
from reports.store import DynamoReportStore
from tests.conftest import REGION
from tests.conftest import queued_report as a_queued_report

CREATED = datetime(2021, 1, 2, 9, 0, tzinfo=UTC)
LATER = CREATED + timedelta(minutes=5)
TENANT = "tenant-a-key-id"

Write = Callable[[DynamoReportStore, str], object]


@pytest.fixture
def table(stack: DataStack) -> str:
    return stack.ref("ReportsTable")


@pytest.fixture
def store(table: str) -> DynamoReportStore:
    return DynamoReportStore(boto3.client("dynamodb", region_name=REGION), table)


def queued_report(report_id: str | None = None, *, tenant: str = TENANT, day: date = date(2021, 1, 1)) -> Report:
    return a_queued_report(report_id, tenant=tenant, created=CREATED, day=day)


def report_in(store: DynamoReportStore, status: ReportStatus) -> str:
    """A stored report brought to ``status`` through the store's own allowed transitions."""
    report = queued_report()
    store.create(report)
    if status is ReportStatus.QUEUED:
        return report.id
    store.start(report.id, CREATED + timedelta(seconds=1))
    store.set_progress(report.id, Progress("charting", 50), CREATED + timedelta(seconds=2))
    if status is ReportStatus.COMPLETED:
        store.complete(report.id, f"reports/{TENANT}/{report.id}.pdf", CREATED + timedelta(seconds=3))
    elif status is ReportStatus.FAILED:
        store.fail(report.id, ReportErrorInfo("NO_DATA", "no sales"), CREATED + timedelta(seconds=3))
    return report.id


def stored_item(table: str, report_id: str) -> dict[str, Any] | None:
    ddb = boto3.client("dynamodb", region_name=REGION)
    item: dict[str, Any] | None = ddb.get_item(TableName=table, Key={"id": {"S": report_id}}, ConsistentRead=True).get(
        "Item"
    )
    return item


def all_items(table: str) -> list[dict[str, Any]]:
    return boto3.client("dynamodb", region_name=REGION).scan(TableName=table)["Items"]


def create(store: DynamoReportStore, report_id: str) -> object:
    store.create(queued_report(report_id))
    return None


def start(store: DynamoReportStore, report_id: str) -> object:
    return store.start(report_id, LATER)


def complete(store: DynamoReportStore, report_id: str) -> object:
    return store.complete(report_id, f"reports/{TENANT}/late-{report_id}.pdf", LATER)


def fail(store: DynamoReportStore, report_id: str) -> object:
    return store.fail(report_id, ReportErrorInfo("PROCESSING_FAILED", "a late failure"), LATER)


def delete_queued(store: DynamoReportStore, report_id: str) -> object:
    store.delete_queued(report_id)
    return None


def progress(store: DynamoReportStore, report_id: str) -> object:
    return store.set_progress(report_id, Progress("laying out", 75), LATER)


REFUSED = [
    # Nothing leaves a final status, whoever asks.
    (ReportStatus.COMPLETED, complete),
    (ReportStatus.COMPLETED, fail),
    (ReportStatus.COMPLETED, start),
    (ReportStatus.COMPLETED, progress),
    (ReportStatus.COMPLETED, delete_queued),
    (ReportStatus.FAILED, complete),
    (ReportStatus.FAILED, fail),
    (ReportStatus.FAILED, start),
    (ReportStatus.FAILED, progress),
    (ReportStatus.FAILED, delete_queued),
    # A report completes only from RUNNING: it must have been started (and counted) first.
    (ReportStatus.QUEUED, complete),
    # Progress belongs to a running report.
    (ReportStatus.QUEUED, progress),
    # Only a report that never started may be removed (the compensation of a failed enqueue).
    (ReportStatus.RUNNING, delete_queued),
]


@pytest.mark.parametrize(("status", "write"), [pytest.param(s, w, id=f"{w.__name__}-on-{s.value}") for s, w in REFUSED])
def test_a_transition_the_status_machine_forbids_is_rejected_and_changes_nothing(
    store: DynamoReportStore, table: str, status: ReportStatus, write: Write
) -> None:
    # GIVEN
    report_id = report_in(store, status)
    before = stored_item(table, report_id)
    # WHEN / THEN
    with pytest.raises(TransitionRejectedError):
        write(store, report_id)
    # AND
    assert stored_item(table, report_id) == before


@pytest.mark.parametrize("write", [start, complete, fail, progress, delete_queued], ids=lambda w: w.__name__)
def test_a_transition_of_a_report_that_does_not_exist_is_rejected_and_creates_nothing(
    store: DynamoReportStore, table: str, write: Write
) -> None:
    # GIVEN an id the table has never held (an update_item without a condition would create it)
    missing = new_report_id(CREATED)
    # WHEN / THEN
    with pytest.raises(TransitionRejectedError):
        write(store, missing)
    # AND
    assert all_items(table) == []


def test_creating_a_report_whose_id_is_taken_is_rejected_and_keeps_the_first(
    store: DynamoReportStore, table: str
) -> None:
    # GIVEN a stored report that has already started
    report_id = report_in(store, ReportStatus.RUNNING)
    before = stored_item(table, report_id)
    # WHEN another request tries to create a report under the same id
    impostor = queued_report(report_id, tenant="tenant-b-key-id", day=date(2021, 1, 5))
    # THEN
    with pytest.raises(TransitionRejectedError):
        store.create(impostor)
    # AND neither the status nor the owner was overwritten
    assert stored_item(table, report_id) == before


@pytest.mark.parametrize(("percent", "case"), [(25, "lower"), (50, "equal")])
def test_progress_that_would_not_move_forward_is_rejected_and_changes_nothing(
    store: DynamoReportStore, table: str, percent: int, case: str
) -> None:
    # GIVEN a running report at 50 %
    report_id = report_in(store, ReportStatus.RUNNING)
    before = stored_item(table, report_id)
    assert before is not None
    assert before["progressPercent"] == {"N": "50"}
    # WHEN a late or repeated step arrives / THEN
    with pytest.raises(TransitionRejectedError):
        store.set_progress(report_id, Progress(f"{case} step", percent), LATER)
    # AND
    assert stored_item(table, report_id) == before


def test_the_second_of_two_racing_completions_is_rejected_and_the_first_stands(
    store: DynamoReportStore, table: str
) -> None:
    # GIVEN two deliveries of one job that both got past start() (the visibility timeout ran out)
    report_id = report_in(store, ReportStatus.QUEUED)
    store.start(report_id, CREATED + timedelta(seconds=1))
    store.start(report_id, CREATED + timedelta(seconds=2))
    first = store.complete(report_id, f"reports/{TENANT}/{report_id}.pdf", CREATED + timedelta(seconds=3))
    after_first = stored_item(table, report_id)
    # WHEN the slower one finishes too / THEN
    with pytest.raises(TransitionRejectedError):
        store.complete(report_id, f"reports/{TENANT}/{report_id}.pdf", LATER)
    # AND the report keeps the winner's completion
    assert stored_item(table, report_id) == after_first
    assert first.version == 4  # created, started twice, completed
    assert first.attempts == 2


def test_a_callback_is_settled_once_and_a_second_outcome_is_ignored(store: DynamoReportStore, table: str) -> None:
    # GIVEN a completed report whose callback was delivered
    report_id = report_in(store, ReportStatus.COMPLETED)
    assert store.settle_callback(report_id, "delivered", LATER) is True
    before = stored_item(table, report_id)
    # WHEN another delivery of the callback settles it as gone
    settled = store.settle_callback(report_id, "gone", LATER + timedelta(seconds=1))
    # THEN
    assert settled is False
    assert stored_item(table, report_id) == before
    assert (before or {})["callbackStatus"] == {"S": "delivered"}


def test_settling_the_callback_of_a_missing_report_creates_nothing(store: DynamoReportStore, table: str) -> None:
    assert store.settle_callback(new_report_id(CREATED), "delivered", LATER) is False
    assert all_items(table) == []


@pytest.mark.parametrize(
    ("status", "write", "expected"),
    [
        (ReportStatus.QUEUED, start, ReportStatus.RUNNING),
        (ReportStatus.RUNNING, start, ReportStatus.RUNNING),
        (ReportStatus.RUNNING, complete, ReportStatus.COMPLETED),
        (ReportStatus.QUEUED, fail, ReportStatus.FAILED),
        (ReportStatus.RUNNING, fail, ReportStatus.FAILED),
    ],
    ids=lambda value: value.__name__ if callable(value) else str(value),
)
def test_a_transition_the_status_machine_allows_is_written(
    store: DynamoReportStore, table: str, status: ReportStatus, write: Write, expected: ReportStatus
) -> None:
    # GIVEN
    report_id = report_in(store, status)
    # WHEN
    written = write(store, report_id)
    # THEN the answer and the table agree
    assert isinstance(written, Report)
    assert written.status is expected
    assert (stored_item(table, report_id) or {})["status"] == {"S": expected.value}


def test_a_report_still_queued_can_be_removed(store: DynamoReportStore, table: str) -> None:
    report_id = report_in(store, ReportStatus.QUEUED)
    store.delete_queued(report_id)
    assert all_items(table) == []


@pytest.mark.parametrize("write", [create, start, progress, complete, fail, delete_queued], ids=lambda w: w.__name__)
def test_an_unreachable_table_is_unavailable_not_a_rejected_transition(stack: DataStack, write: Write) -> None:
    # GIVEN a store pointed at a table that does not exist
    store = DynamoReportStore(boto3.client("dynamodb", region_name=REGION), stack.ref("ReportsTable") + "-gone")
    # WHEN / THEN the caller is told to retry (503), not that the report refused the change
    with pytest.raises(StoreUnavailableError):
        write(store, new_report_id(CREATED))
