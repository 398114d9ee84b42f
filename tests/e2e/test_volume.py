"""Volume through the local runtime. Last in the e2e package (by name), so the stream backlog it
leaves behind does not delay the other tests' notifications."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from local.runtime import LocalRuntime
from tests.e2e.conftest import KEY_B, Client


def test_a_burst_of_200_submissions_all_complete_exactly_once(runtime: LocalRuntime) -> None:
    # GIVEN sixteen clients of one tenant, each honouring 429 Retry-After (the plan allows 10 at once, then 5/s)
    clients = [Client(runtime.api_url, KEY_B) for _ in range(16)]
    days = [f"2021-01-0{1 + i % 8}" for i in range(200)]

    def submit(index: int) -> str:
        response = clients[index % 16].post({"reportType": "COFFEE_SALES", "reportDate": days[index]})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    # WHEN they submit 200 reports at once
    with ThreadPoolExecutor(max_workers=16) as pool:
        ids = list(pool.map(submit, range(200)))
    # THEN the gateway throttled the burst, and every report was accepted once
    assert sum(c.throttled for c in clients) > 0
    assert len(set(ids)) == 200
    reports = [clients[0].wait(f"/api/v1/report/{report_id}", timeout=300) for report_id in ids]
    assert {r["status"] for r in reports} == {"COMPLETED"}
    # AND each has exactly one PDF, one attempt and one completion; nothing is left in the queues
    s3 = runtime.aws.client("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=runtime.stack.ref("FilesBucket"), Prefix="reports/tenant-b/"
    )
    keys = {o["Key"] for page in pages for o in page.get("Contents", [])}
    assert {f"reports/tenant-b/{report_id}.pdf" for report_id in ids} <= keys  # one key per report, by design
    ddb = runtime.aws.client("dynamodb")
    for report_id in ids:
        item = ddb.get_item(TableName=runtime.stack.ref("ReportsTable"), Key={"id": {"S": report_id}})["Item"]
        # created, started, four steps, completed: seven writes, so nothing ran or completed twice
        assert (item["status"]["S"], item["attempts"]["N"], item["version"]["N"]) == ("COMPLETED", "1", "7")
    sqs = runtime.aws.client("sqs")
    for queue in ("JobsQueue", "JobsDeadLetterQueue"):
        attributes = sqs.get_queue_attributes(QueueUrl=runtime.stack.ref(queue), AttributeNames=["All"])["Attributes"]
        assert attributes["ApproximateNumberOfMessages"] == attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
