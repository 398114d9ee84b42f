"""The push contract through the local runtime, with real clients: a WebSocket watcher and an
HTTP receiver on 127.0.0.1 for callbacks."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from local.runtime import LocalRuntime
from tests.e2e.conftest import Client
from tests.receivers import Receiver

VALID = {"reportType": "COFFEE_SALES", "reportDate": "2021-01-04"}
STEPS = ["fetching data", "charting", "laying out", "uploading"]


def messages_until_final(ws: ClientConnection, timeout: float = 60) -> list[dict[str, Any]]:
    seen = []
    while True:
        message = json.loads(ws.recv(timeout=timeout))
        seen.append(message)
        if message.get("type") == "report.updated" and message["report"]["status"] in ("COMPLETED", "FAILED"):
            return seen


def test_a_watcher_sees_progress_in_order_and_the_final_state(runtime: LocalRuntime, client: Client) -> None:
    # GIVEN a report, watched through the link the API gave
    created = client.post(VALID).json()
    href = created["_links"]["websocket"]["href"]
    assert href.startswith(f"{runtime.ws_url}?")
    # WHEN the report runs
    with connect(href) as ws:
        messages = messages_until_final(ws)
    # THEN the first message is the state at connection, and every later one is the next version:
    # nothing skipped, repeated or out of order (the replay at connection races the stream's changes)
    reports = [m["report"] for m in messages]
    assert {m["type"] for m in messages} == {"report.updated"}
    versions = [r["version"] for r in reports]
    assert versions == list(range(versions[0], versions[0] + len(versions))), versions
    # AND a watcher that connected while the report was QUEUED saw every progress step
    steps = [r["progress"]["step"] for r in reports if r["status"] == "RUNNING" and r.get("progress")]
    if reports[0]["status"] == "QUEUED":
        assert [step for step in steps if step in STEPS] == STEPS, steps
    assert reports[-1]["status"] == "COMPLETED"
    assert requests.get(reports[-1]["pdfUri"], timeout=30).content.startswith(b"%PDF")


def test_a_watcher_that_connects_after_completion_gets_the_final_state_first(client: Client) -> None:
    created = client.post(VALID).json()
    client.wait(created["_links"]["self"]["href"])
    fresh = client.get(created["_links"]["self"]["href"]).json()
    with connect(fresh["_links"]["websocket"]["href"]) as ws:
        first = json.loads(ws.recv(timeout=30))
    assert (first["type"], first["report"]["status"]) == ("report.updated", "COMPLETED")


def link_of(report: dict[str, Any]) -> dict[str, str]:
    query = parse_qs(urlsplit(report["_links"]["websocket"]["href"]).query)
    return {"reportId": query["reportId"][0], "token": query["token"][0]}


def test_subscribe_and_ping_on_one_connection(runtime: LocalRuntime, client: Client) -> None:
    # GIVEN a connection opened through one report's link
    watched, added = client.post(VALID).json(), client.post({**VALID, "reportDate": "2021-01-05"}).json()
    with connect(watched["_links"]["websocket"]["href"]) as ws:
        # WHEN it pings, and subscribes to a second report
        ws.send(json.dumps({"action": "ping"}))
        ws.send(json.dumps({"action": "subscribe", **link_of(added)}))
        # THEN it gets its pong, and both reports to their final states
        seen: list[dict[str, Any]] = []
        finals: set[str] = set()
        while finals != {watched["id"], added["id"]}:
            message = json.loads(ws.recv(timeout=60))
            seen.append(message)
            if message["type"] == "report.updated" and message["report"]["status"] in ("COMPLETED", "FAILED"):
                finals.add(message["report"]["id"])
        assert {"type": "pong"} in seen
        # AND a subscribe with a forged token is answered with an error on the same connection
        ws.send(json.dumps({"action": "subscribe", "reportId": added["id"], "token": "forged.token"}))
        error = json.loads(ws.recv(timeout=30))
        assert (error["type"], error["status"]) == ("error", 401)


def expired_token(report_id: str) -> str:
    from datetime import timedelta

    from reports import dependencies
    from reports.model import utc_now
    from reports.tokens import issue_watch_token

    hour_ago = utc_now() - timedelta(hours=1)
    return issue_watch_token(dependencies.watch_token_key(), report_id=report_id, tenant="tenant-a", now=hour_ago)


# What a client may send instead of its link's token, and the answer, the same on both routes.
REFUSALS: dict[str, tuple[Any, int]] = {
    "missing": (lambda mine, theirs: {"reportId": mine["id"]}, 401),
    "empty": (lambda mine, theirs: {"reportId": mine["id"], "token": ""}, 401),
    "forged": (lambda mine, theirs: {"reportId": mine["id"], "token": "forged.signature"}, 401),
    "forged payload": (lambda mine, theirs: {"reportId": mine["id"], "token": "eyJyIjoiMDEifQ.c2ln"}, 401),
    "expired": (lambda mine, theirs: {"reportId": mine["id"], "token": expired_token(mine["id"])}, 401),
    "another tenant's": (lambda mine, theirs: {"reportId": mine["id"], "token": link_of(theirs)["token"]}, 403),
    "non-ASCII signature": (lambda mine, theirs: {"reportId": mine["id"], "token": "abc.é"}, 401),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_bad_token_is_refused_at_connect(
    runtime: LocalRuntime, client: Client, other_tenant: Client, case: str
) -> None:
    make, status = REFUSALS[case]
    sent = make(client.post(VALID).json(), other_tenant.post(VALID).json())
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{runtime.ws_url}?{urlencode(sent)}")
    assert refused.value.response.status_code == status


def test_a_connection_without_a_report_and_token_is_refused(runtime: LocalRuntime) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(str(runtime.ws_url))
    assert refused.value.response.status_code == 401


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_bad_token_is_refused_at_subscribe(client: Client, other_tenant: Client, case: str) -> None:
    # GIVEN a connection watching one report
    make, status = REFUSALS[case]
    mine, theirs = client.post(VALID).json(), other_tenant.post(VALID).json()
    sent = make(mine, theirs)
    with connect(client.post(VALID).json()["_links"]["websocket"]["href"]) as ws:
        # WHEN it subscribes to another with a bad token
        ws.send(json.dumps({"action": "subscribe", **sent}))
        # THEN it is told why, with the status, on the same connection
        while (message := json.loads(ws.recv(timeout=30)))["type"] != "error":
            assert message["type"] == "report.updated"
            assert message["report"]["id"] != mine["id"]  # never a report it may not watch
    assert message["status"] == status
    assert message["detail"]


def test_a_vanished_connection_is_forgotten_and_does_not_stop_the_others(runtime: LocalRuntime, client: Client) -> None:
    # GIVEN a report watched by a live client and by a connection that vanished without $disconnect
    created = client.post({"reportType": "COFFEE_SALES_MONTHLY", "reportDate": "2021-01-01"}).json()
    assert runtime.stack is not None
    ddb, table = runtime.aws.client("dynamodb"), runtime.stack.ref("ConnectionsTable")
    for pk, sk, kind in (
        (f"report#{created['id']}", "conn#vanished=", "stale"),
        ("conn#vanished=", f"report#{created['id']}", "watching"),
    ):
        ddb.put_item(
            TableName=table,
            Item={
                "pk": {"S": pk},
                "sk": {"S": sk},
                "kind": {"S": kind},
                "connectionId": {"S": "vanished="},
                "reportId": {"S": created["id"]},
                "tenant": {"S": "tenant-a"},
            },
        )
    # WHEN the report runs
    with connect(created["_links"]["websocket"]["href"]) as ws:
        final = messages_until_final(ws)[-1]
    # THEN the live client got it all, and the vanished one (410) is no longer a watcher
    assert final["report"]["status"] == "COMPLETED"
    left = ddb.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"report#{created['id']}"}},
    )["Items"]
    assert "conn#vanished=" not in {item["sk"]["S"] for item in left}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver(failures=2)
    yield started
    started.close()


def test_a_callback_failing_twice_is_accepted_once_with_a_stable_id_and_a_valid_signature(
    client: Client, receiver: Receiver
) -> None:
    # GIVEN a report whose callback receiver fails twice
    created = client.post({**VALID, "callbackUrl": receiver.url})
    assert created.status_code == 201, created.text
    # WHEN it completes and the webhook function delivers, backing off between attempts
    assert receiver.done.wait(timeout=90), receiver.requests
    # THEN one accepted delivery, after two refused, all carrying one webhook-id
    assert [status for status, _, _ in receiver.requests] == [500, 500, 200]
    assert len({headers["webhook-id"] for _, headers, _ in receiver.requests}) == 1
    # AND the official verifier accepts our signature and rejects a tampered body
    verifier = Webhook(os.environ["WEBHOOK_SECRET"])
    _, headers, body = receiver.requests[-1]
    event = verifier.verify(body, headers)
    assert (event["type"], event["data"]["id"], event["data"]["status"]) == (
        "report.completed",
        created.json()["id"],
        "COMPLETED",
    )
    with pytest.raises(WebhookVerificationError):
        verifier.verify(body.replace(b"COMPLETED", b"FAILED"), headers)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.8/hook",
        "http://192.168.1.10/hook",
        "http://172.16.0.1/hook",
        "http://[fd00::1]/hook",
        "http://[fe80::1]/hook",
        "http://0x7f.1/hook",
        "http://2130706433/hook",
        "http://224.0.0.1/hook",
        "http://0.0.0.0/hook",
        "file:///etc/passwd",
        "http://user:pass@example.com/hook",
    ],
)
def test_every_ssrf_form_is_refused_at_submit(client: Client, url: str) -> None:
    response = client.post({**VALID, "callbackUrl": url})
    assert response.status_code == 400
    problem = response.json()
    assert problem["field"] == "callbackUrl"
    assert problem["detail"]
