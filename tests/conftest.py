"""Shared AWS fixtures: moto with the template's own data resources, and the app's handlers."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.embedded import local_variables
from local.template import DataStack, SamTemplate, create_data_stack, function_environment
from reports.dependencies import clear_dependencies
from reports.model import Report, ReportStatus, epoch_seconds, new_report_id, utc_now

# Powertools reads these when a handler module is imported, which happens at collection time.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "async-reports")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "AsyncReportsTests")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

REGION = "us-east-1"
EVENTS = Path(__file__).resolve().parent.parent / "events"


@cache
def template() -> SamTemplate:
    return SamTemplate.load()


def queued_report(
    report_id: str | None = None,
    *,
    tenant: str = "tenant-a-key-id",
    created: datetime | None = None,
    day: date = date(2021, 1, 1),
) -> Report:
    """A report as submit stores it: QUEUED, version 1, kept 30 days (created now unless given)."""
    created = created or utc_now()
    return Report(
        id=report_id or new_report_id(created),
        tenant=tenant,
        report_type="COFFEE_SALES",
        report_date=day,
        status=ReportStatus.QUEUED,
        created_at=created,
        updated_at=created,
        expires_at=epoch_seconds(created + timedelta(days=30)),
    )


def load_event(name: str) -> dict[str, Any]:
    """A sample from ``events/`` (the same files ``sam local invoke -e`` takes), fresh each time."""
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return event


@pytest.fixture(autouse=True)
def _aws_environment(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test can reach a real account: fake credentials, and no profile or endpoint leaks in.

    The e2e and browser tests are the exception: the local runtime has pointed this process at its
    own moto server (``AWS_ENDPOINT_URL`` on 127.0.0.1), which they must keep.
    """
    if request.node.path.parent.name in ("e2e", "browser"):
        return
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[DataStack]:
    """The template's tables, queues and buckets in moto, and every function's variables set."""
    with mock_aws():
        created = create_data_stack(boto3.Session(region_name=REGION), template())
        local = local_variables()
        for spec in template().functions().values():
            for name, value in (function_environment(spec, created, local) | local).items():
                monkeypatch.setenv(name, value)
        monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "matplotlib"))
        clear_dependencies()
        yield created
        clear_dependencies()
