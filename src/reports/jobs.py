"""The Jobs queue: the buffer between accepting a report and rendering it.

A job carries only the report id; the Reports table holds everything else, so a job can never
disagree with the truth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reports.errors import EnqueueError, ValidationError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

JOB_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Job:
    report_id: str

    def to_body(self) -> str:
        return json.dumps({"version": JOB_SCHEMA_VERSION, "reportId": self.report_id}, separators=(",", ":"))

    @classmethod
    def from_body(cls, body: str) -> Job:
        try:
            data: Any = json.loads(body)
        except ValueError as error:
            raise ValidationError(f"job body is not JSON: {error}") from None
        if not isinstance(data, dict) or not isinstance(data.get("reportId"), str):
            raise ValidationError("job body has no reportId")
        return cls(report_id=data["reportId"])


class JobQueue:
    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def enqueue(self, job: Job, *, delay_seconds: int = 0) -> str:
        """Send the job, visible after ``delay_seconds`` (at most 900); returns the SQS message id."""
        try:
            answer = self._client.send_message(
                QueueUrl=self._queue_url, MessageBody=job.to_body(), DelaySeconds=delay_seconds
            )
        except Exception as error:
            raise EnqueueError(f"could not queue report {job.report_id}: {error}") from error
        return answer["MessageId"]
