"""Push channels against moto: watch tokens and connection tracking, report.updated to every
watcher from the Reports stream, the ReportEvents topic, and signed callbacks with retries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.exceptions import ClientError

from handlers import connections, notify, webhook
from local.event_sources import DynamoDBStreamEventSource, SqsEventSource
from local.events import LambdaContext
from local.template import DataStack
from reports import dependencies
from reports.notifications import Pusher
from reports.webhooks import webhook_message_id
from tests.conftest import REGION, template
from tests.functional.conftest import OTHER_TENANT, TENANT, InProcessApi
from tests.receivers import Receiver

VALID = {"reportType": "COFFEE_SALES", "reportDate": "2021-01-01"}


class FakeManagementApi:
    """Stands in for the @connections endpoint behind the real ``Pusher`` (moto's accepts every id and
    never says 410): records what each connection was sent; ``gone`` ones answer 410, and
    ``fail_next(id, n)`` makes the next ``n`` posts to one fail as API Gateway throttling does."""

    def __init__(self) -> None:
        self.exceptions = boto3.client(
            "apigatewaymanagementapi", endpoint_url="http://127.0.0.1:9", region_name=REGION
        ).exceptions
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.gone: set[str] = set()
        self.failures: dict[str, list[Exception]] = {}

    def fail_next(self, connection_id: str, times: int = 1, code: str = "LimitExceededException") -> None:
        status = {"LimitExceededException": 429, "PayloadTooLargeException": 413}.get(code, 500)
        error: Any = {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
        kind = getattr(self.exceptions, code, ClientError)
        self.failures.setdefault(connection_id, []).extend(kind(error, "PostToConnection") for _ in range(times))

    def post_to_connection(self, *, ConnectionId: str, Data: bytes) -> dict[str, Any]:
        if ConnectionId in self.gone:
            error = {"Error": {"Code": "GoneException", "Message": "gone"}, "ResponseMetadata": {"HTTPStatusCode": 410}}
            raise self.exceptions.GoneException(error, "PostToConnection")
        if self.failures.get(ConnectionId):
            raise self.failures[ConnectionId].pop(0)
        self.sent.append((ConnectionId, json.loads(Data)))
        return {}

    def to(self, connection_id: str) -> list[dict[str, Any]]:
        return [message for target, message in self.sent if target == connection_id]

    def versions_to(self, connection_id: str) -> list[int]:
        return [m["report"]["version"] for m in self.to(connection_id) if m["type"] == "report.updated"]


@pytest.fixture
def pusher(stack: DataStack) -> Iterator[FakeManagementApi]:
    fake = FakeManagementApi()
    with pytest.MonkeyPatch.context() as patch:  # undone before the stack's own teardown
        patch.setattr(dependencies, "pusher", lambda: Pusher(fake))
        yield fake


def ws_event(
    route: str, connection_id: str, *, query: dict[str, str] | None = None, body: Any = None
) -> dict[str, Any]:
    return {
        "requestContext": {"routeKey": route, "connectionId": connection_id, "eventType": "MESSAGE"},
        "queryStringParameters": query,
        "body": json.dumps(body) if body is not None else None,
    }


def call(route: str, connection_id: str, **kwargs: Any) -> dict[str, Any]:
    context = LambdaContext(function_name="ConnectionsFunction", timeout_seconds=10)
    answer: dict[str, Any] = connections.handler(ws_event(route, connection_id, **kwargs), context)
    return answer


def link_of(report: dict[str, Any]) -> dict[str, str]:
    query = parse_qs(urlsplit(report["_links"]["websocket"]["href"]).query)
    return {"reportId": query["reportId"][0], "token": query["token"][0]}


def stream_source(stack: DataStack, table: str) -> DynamoDBStreamEventSource:
    return DynamoDBStreamEventSource(
        boto3.client("dynamodbstreams", region_name=REGION),
        stream_arn=stack.get_att(table, "StreamArn"),
        handler=notify.handler,
        function_name="NotifyFunction",
        timeout_seconds=30,
        starting_position="TRIM_HORIZON",
    )


def drain(*sources: Any) -> None:
    for _ in range(30):
        if not sum(source.poll_once().received for source in sources):
            return


def test_reports_link_to_the_websocket_with_a_token_for_that_report(api: InProcessApi, stack: DataStack) -> None:
    created = api.post(VALID).body
    href = created["_links"]["websocket"]["href"]
    assert href.startswith("ws://127.0.0.1:3001?")
    assert link_of(created)["reportId"] == created["id"]
    assert api.get(created["id"]).body["_links"]["websocket"]["href"].startswith("ws://127.0.0.1:3001?")


def test_connect_with_a_valid_token_watches_and_disconnect_forgets(
    api: InProcessApi, stack: DataStack, pusher: FakeManagementApi
) -> None:
    link = link_of(api.post(VALID).body)
    assert call("$connect", "c1", query=link)["statusCode"] == 200
    assert dependencies.connection_store().watchers(link["reportId"]) == ["c1"]
    assert call("$disconnect", "c1")["statusCode"] == 200
    assert dependencies.connection_store().watchers(link["reportId"]) == []


def _expired_token(api: InProcessApi, link: dict[str, str]) -> dict[str, str]:
    from datetime import timedelta

    from reports.model import utc_now
    from reports.tokens import issue_watch_token

    key = dependencies.watch_token_key()
    hour_ago = utc_now() - timedelta(hours=1)
    return {**link, "token": issue_watch_token(key, report_id=link["reportId"], tenant=TENANT, now=hour_ago)}


def _other_tenants_token(api: InProcessApi, link: dict[str, str]) -> dict[str, str]:
    theirs = link_of(api.post(VALID, tenant=OTHER_TENANT).body)
    return {**link, "token": theirs["token"]}


# What a client may send instead of a good token, and the answer (the same on both routes).
REFUSALS: dict[str, tuple[Any, int]] = {
    "nothing at all": (lambda api, link: {}, 401),
    "missing": (lambda api, link: {"reportId": link["reportId"]}, 401),
    "empty": (lambda api, link: {**link, "token": ""}, 401),
    "forged": (
        lambda api, link: {**link, "token": link["token"][:-2] + ("xx" if link["token"][-2:] != "xx" else "yy")},
        401,
    ),
    "malformed": (lambda api, link: {**link, "token": "not.a-token"}, 401),
    "non-ASCII signature": (lambda api, link: {**link, "token": "abc.é"}, 401),
    "non-ASCII after a real payload": (lambda api, link: {**link, "token": link["token"].split(".")[0] + ".é"}, 401),
    "expired": (_expired_token, 401),
    "another report's": (lambda api, link: {**link, "reportId": "01JH2Z3Y4X5W6V7T8S9R0Q1P2N"}, 403),
    "another tenant's": (_other_tenants_token, 403),
}


@pytest.mark.parametrize("route", ["$connect", "subscribe"])
@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_bad_token_is_refused_on_connect_and_on_subscribe(
    api: InProcessApi, stack: DataStack, pusher: FakeManagementApi, route: str, case: str
) -> None:
    # GIVEN a report, and what a client sends in place of its link's token
    link = link_of(api.post(VALID).body)
    make, status = REFUSALS[case]
    sent = make(api, link)
    # WHEN it connects or subscribes with that
    if route == "$connect":
        answer = call("$connect", "c1", query=sent or None)
    else:
        answer = call("subscribe", "c1", body={"action": "subscribe", **sent})
    # THEN it is refused, with a reason (and on an open connection, told so), and watches nothing
    assert answer["statusCode"] == status, answer
    assert answer["body"]
    if route == "subscribe":
        assert pusher.to("c1") == [{"type": "error", "status": status, "detail": answer["body"]}]
    if case == "expired":
        assert "expired" in answer["body"]
    assert dependencies.connection_store().watchers(link["reportId"]) == []


def test_ping_answers_pong(stack: DataStack, pusher: FakeManagementApi) -> None:
    call("ping", "c1", body={"action": "ping"})
    assert pusher.to("c1") == [{"type": "pong"}]


def test_watchers_see_every_step_in_order_then_the_final_state_with_the_pdf(
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource, pusher: FakeManagementApi
) -> None:
    # GIVEN a watcher subscribed before the report runs
    created = api.post(VALID).body
    call("subscribe", "c1", body={"action": "subscribe", **link_of(created)})
    reports, watches = stream_source(seeded, "ReportsTable"), stream_source(seeded, "ConnectionsTable")
    drain(reports, watches)
    # WHEN the report is rendered
    jobs.drain()
    drain(reports, watches)
    # THEN the watcher got the current state first, then each change, the last one final
    messages = pusher.to("c1")
    assert {m["type"] for m in messages} == {"report.updated"}
    steps = [(m["report"]["status"], (m["report"].get("progress") or {}).get("step")) for m in messages]
    assert steps[0] == ("QUEUED", None)
    assert steps[-1] == ("COMPLETED", "done")
    assert [s for s in steps if s[0] == "RUNNING" and s[1]] == [
        ("RUNNING", "fetching data"),
        ("RUNNING", "charting"),
        ("RUNNING", "laying out"),
        ("RUNNING", "uploading"),
    ]
    assert "X-Amz-Signature=" in messages[-1]["report"]["pdfUri"]
    assert pusher.versions_to("c1") == list(range(created["version"], messages[-1]["report"]["version"] + 1))


def test_a_watcher_that_connects_after_completion_still_gets_the_final_state(
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource, pusher: FakeManagementApi
) -> None:
    created = api.post(VALID).body
    jobs.drain()
    drain(stream_source(seeded, "ReportsTable"))
    watches = stream_source(seeded, "ConnectionsTable")
    call("$connect", "late", query=link_of(created))
    drain(watches)
    assert [m["report"]["status"] for m in pusher.to("late")] == ["COMPLETED"]


def test_changes_still_on_the_stream_never_take_a_newer_replayed_state_back(
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource, pusher: FakeManagementApi
) -> None:
    # GIVEN a report that ran while its changes are still waiting on the Reports stream
    created = api.post(VALID).body
    reports, watches = stream_source(seeded, "ReportsTable"), stream_source(seeded, "ConnectionsTable")
    jobs.drain()
    # WHEN a watcher connects, its replay runs first, and only then the older changes arrive
    call("$connect", "racing", query=link_of(created))
    drain(watches)
    drain(reports)
    # THEN it saw the newest state once and nothing older after it
    messages = pusher.to("racing")
    assert [(m["report"]["status"], m["report"]["version"]) for m in messages] == [
        ("COMPLETED", messages[0]["report"]["version"])
    ]
    # AND a redelivered stream batch sends nothing twice
    drain(stream_source(seeded, "ReportsTable"))
    assert len(pusher.to("racing")) == 1


def test_a_gone_connection_is_forgotten_and_the_others_still_get_the_message(
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource, pusher: FakeManagementApi
) -> None:
    created = api.post(VALID).body
    for connection in ("gone", "alive"):
        call("subscribe", connection, body={"action": "subscribe", **link_of(created)})
    pusher.gone.add("gone")
    reports = stream_source(seeded, "ReportsTable")
    drain(reports)
    jobs.drain()
    drain(reports)
    assert dependencies.connection_store().watchers(created["id"]) == ["alive"]
    assert pusher.to("alive")[-1]["report"]["status"] == "COMPLETED"


def drain_failures(source: Any) -> int:
    """Polls until the stream has nothing more; how many records failed (and were retried) on the way."""
    failed = 0
    for _ in range(30):
        result = source.poll_once()
        failed += int(result.failed)
        if not result.received:
            return failed
    return failed


def current_version(api: InProcessApi, report_id: str) -> int:
    version: int = api.get(report_id).body["version"]
    return version


def test_a_replay_after_the_stream_began_sending_skips_no_version(
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource, pusher: FakeManagementApi
) -> None:
    # GIVEN a watcher the stream already sent the report's first state
    created = api.post(VALID).body
    reports, watches = stream_source(seeded, "ReportsTable"), stream_source(seeded, "ConnectionsTable")
    call("$connect", "c1", query=link_of(created))
    drain(reports)
    # AND the report ran, its changes still on the stream
    jobs.drain()
    # WHEN the replay of the new watch runs only now (it reads the final state), then the changes arrive
    drain(watches)
    drain(reports)
    # THEN the watcher got every version once, in order, none skipped by the replay
    final = current_version(api, created["id"])
    assert pusher.versions_to("c1") == list(range(created["version"], final + 1))


def test_a_push_that_fails_is_sent_again_by_the_retry_and_the_others_get_each_version_once(
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource, pusher: FakeManagementApi
) -> None:
    # GIVEN two watchers of a report that ran, its changes on the stream in one batch
    created = api.post(VALID).body
    for connection in ("flaky", "steady"):
        call("subscribe", connection, body={"action": "subscribe", **link_of(created)})
    jobs.drain()
    # AND API Gateway throttles the next two posts to one of them
    pusher.fail_next("flaky", 2)
    # WHEN the stream delivers the changes, and retries what failed
    failed = drain_failures(stream_source(seeded, "ReportsTable"))
    # THEN the failed record was retried, and both got every version, in order, once
    assert failed > 0
    every_version = list(range(created["version"], current_version(api, created["id"]) + 1))
    assert pusher.versions_to("flaky") == every_version
    assert pusher.versions_to("steady") == every_version


def test_a_replay_that_fails_is_sent_again_by_the_retry(
    api: InProcessApi, stack: DataStack, pusher: FakeManagementApi
) -> None:
    created = api.post(VALID).body
    call("$connect", "c1", query=link_of(created))
    pusher.fail_next("c1", code="InternalServerErrorException")
    assert drain_failures(stream_source(stack, "ConnectionsTable")) == 1
    assert pusher.versions_to("c1") == [created["version"]]


def test_a_version_claimed_by_an_invocation_that_died_is_sent_by_the_retry_once_its_lease_ran_out(
    api: InProcessApi, stack: DataStack, pusher: FakeManagementApi
) -> None:
    from datetime import timedelta

    from reports.model import utc_now

    created = api.post(VALID).body
    report_id, version = created["id"], created["version"]
    for connection in ("c1", "c2"):
        call("subscribe", connection, body={"action": "subscribe", **link_of(created)})
    store, now = dependencies.connection_store(), utc_now()
    # GIVEN an invocation that claimed the first version for c1 and died before pushing it (its
    # deadline, the claim's lease, has passed)
    past = now - timedelta(minutes=1)
    assert store.claim_push("c1", report_id, version, now=past, lease_until=past + timedelta(seconds=30))
    # AND one that claimed it for c2 and is still running (it may be pushing right now)
    assert store.claim_push("c2", report_id, version, now=now, lease_until=now + timedelta(minutes=1))
    # WHEN the stream's retry brings the change
    reports = stream_source(stack, "ReportsTable")
    drain(reports)
    # THEN the dead invocation's claim is taken over and the version sent; the live one is left alone
    assert pusher.versions_to("c1") == [version]
    assert pusher.versions_to("c2") == []
    # AND once sent and confirmed, a redelivery never sends it again
    drain(stream_source(stack, "ReportsTable"))
    assert pusher.versions_to("c1") == [version]


def test_pusher_tells_gone_and_too_large_apart_from_failures_worth_retrying() -> None:
    from botocore.exceptions import EndpointConnectionError

    from reports.notifications import PushFailedError, PushResult

    api = FakeManagementApi()
    pusher = Pusher(api)
    api.gone.add("gone")
    assert pusher.push("gone", {}) is PushResult.GONE
    api.fail_next("big", code="PayloadTooLargeException")
    assert pusher.push("big", {}) is PushResult.REFUSED
    for code in ("LimitExceededException", "InternalServerErrorException", "ForbiddenException"):
        api.fail_next("c1", code=code)
        with pytest.raises(PushFailedError):
            pusher.push("c1", {})
    api.failures["c1"] = [EndpointConnectionError(endpoint_url="https://example")]
    with pytest.raises(PushFailedError):
        pusher.push("c1", {})
    assert pusher.push("c1", {"type": "pong"}) is PushResult.SENT
    # AND a reply (pong, an error) is best effort: a failure is logged, never raised
    api.fail_next("c1")
    pusher.reply("c1", {"type": "pong"})


def test_subscribing_again_keeps_what_was_sent_and_sends_nothing_older(
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource, pusher: FakeManagementApi
) -> None:
    # GIVEN a report that completed while its changes are still on the stream, and a watcher that
    # got the final state at connection
    created = api.post(VALID).body
    reports, watches = stream_source(seeded, "ReportsTable"), stream_source(seeded, "ConnectionsTable")
    jobs.drain()
    call("$connect", "c1", query=link_of(created))
    drain(watches)
    final = current_version(api, created["id"])
    assert pusher.versions_to("c1") == [final]
    # WHEN it subscribes to the report again, and only then the older changes arrive
    assert call("subscribe", "c1", body={"action": "subscribe", **link_of(created)})["statusCode"] == 200
    drain(watches)
    drain(reports)
    # THEN it was sent nothing older, and nothing twice
    assert pusher.versions_to("c1") == [final]


def test_watching_again_refreshes_the_expiry_and_keeps_the_sent_version(stack: DataStack) -> None:
    from datetime import timedelta

    from reports.model import utc_now
    from reports.watchers import CONNECTION_LIFETIME

    store, table = dependencies.connection_store(), stack.ref("ConnectionsTable")
    ddb = boto3.client("dynamodb", region_name=REGION)
    now = utc_now()
    assert store.watch("c1", "r1", TENANT, now) is True
    claim = store.claim_push("c1", "r1", 3, now=now, lease_until=now + timedelta(seconds=30))
    assert claim is not None
    store.confirm_push(claim)
    later = now + timedelta(hours=1)
    assert store.watch("c1", "r1", TENANT, later) is False
    watch = ddb.get_item(TableName=table, Key={"pk": {"S": "report#r1"}, "sk": {"S": "conn#c1"}})["Item"]
    watching = ddb.get_item(TableName=table, Key={"pk": {"S": "conn#c1"}, "sk": {"S": "report#r1"}})["Item"]
    assert watch["sentVersion"] == {"N": "3"}
    expected = str(int((later + CONNECTION_LIFETIME).timestamp()))
    assert watch["expiresAt"] == watching["expiresAt"] == {"N": expected}


def test_a_gone_connection_is_forgotten_with_every_watch_it_had(
    api: InProcessApi, stack: DataStack, pusher: FakeManagementApi
) -> None:
    # GIVEN a connection watching two reports, only one of which has a change on the stream
    reports = stream_source(stack, "ReportsTable")
    quiet = api.post(VALID).body
    drain(reports)
    busy = api.post({**VALID, "reportDate": "2021-01-02"}).body
    for created in (quiet, busy):
        call("subscribe", "gone", body={"action": "subscribe", **link_of(created)})
    call("subscribe", "alive", body={"action": "subscribe", **link_of(busy)})
    # WHEN pushing that change finds the connection gone (410)
    pusher.gone.add("gone")
    drain(reports)
    # THEN the connection is forgotten entirely, the watch of the quiet report too
    store = dependencies.connection_store()
    assert store.watchers(busy["id"]) == ["alive"]
    assert store.watchers(quiet["id"]) == []
    assert store.forget_connection("gone") == 0
    assert pusher.versions_to("alive") == [busy["version"]]


def test_pushed_and_published_reports_link_as_the_rest_api_does(
    api: InProcessApi,
    seeded: DataStack,
    jobs: SqsEventSource,
    pusher: FakeManagementApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from reports.settings import settings

    # GIVEN API_BASE_PATH as the template sets it for the default stage, the one the in-process API serves
    declared = template().functions()["NotifyFunction"].environment["API_BASE_PATH"]
    monkeypatch.setenv("API_BASE_PATH", str(seeded.resolve(declared)))
    settings.cache_clear()
    listener = topic_listener(seeded)
    created = api.post(VALID).body
    call("subscribe", "c1", body={"action": "subscribe", **link_of(created)})
    # WHEN the report runs
    jobs.drain()
    drain(stream_source(seeded, "ReportsTable"))
    # THEN every pushed and published report links where the REST API's own answer does
    rest = api.get(created["id"]).body["_links"]
    assert rest["self"]["href"] == f"/v1/api/v1/report/{created['id']}"
    for message in pusher.to("c1"):
        assert message["report"]["_links"] == {"self": rest["self"], "pdf": rest["pdf"]}
    envelope = boto3.client("sqs", region_name=REGION).receive_message(QueueUrl=listener)["Messages"][0]
    event = json.loads(json.loads(envelope["Body"])["Message"])
    assert event["data"]["_links"] == {"self": rest["self"], "pdf": rest["pdf"]}


def topic_listener(stack: DataStack) -> str:
    """An SQS queue subscribed to the ReportEvents topic with no filter: what any subscriber sees."""
    sqs, sns = boto3.client("sqs", region_name=REGION), boto3.client("sns", region_name=REGION)
    url = sqs.create_queue(QueueName="listener")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=stack.ref("ReportEventsTopic"), Protocol="sqs", Endpoint=arn)
    return url


def test_completion_is_published_once_with_attributes_for_filters(
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource, pusher: FakeManagementApi
) -> None:
    listener = topic_listener(seeded)
    report_id = api.post(VALID).body["id"]
    jobs.drain()
    drain(stream_source(seeded, "ReportsTable"))
    messages = boto3.client("sqs", region_name=REGION).receive_message(QueueUrl=listener, MaxNumberOfMessages=10)
    envelopes = [json.loads(m["Body"]) for m in messages.get("Messages", [])]
    assert len(envelopes) == 1
    event = json.loads(envelopes[0]["Message"])
    assert (event["type"], event["data"]["id"], event["data"]["status"]) == ("report.completed", report_id, "COMPLETED")
    # AND it carries the id its webhook carries as webhook-id, in the message and as an attribute
    assert event["eventId"] == webhook_message_id(report_id, "report.completed")
    attributes = {k: v["Value"] for k, v in envelopes[0]["MessageAttributes"].items()}
    assert attributes == {
        "eventId": event["eventId"],
        "eventType": "report.completed",
        "reportType": "COFFEE_SALES",
        "status": "COMPLETED",
        "tenant": "tenant-a-key-id",
        "hasCallback": "false",
    }


def test_failure_is_published_once_as_report_failed_with_its_error(
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource, pusher: FakeManagementApi
) -> None:
    # GIVEN a report for a day the stores were closed (it fails NO_DATA)
    listener = topic_listener(seeded)
    report_id = api.post({"reportType": "COFFEE_SALES", "reportDate": "2020-12-25"}).body["id"]
    # WHEN it is processed and its changes reach NotifyFunction
    jobs.drain()
    drain(stream_source(seeded, "ReportsTable"))
    # THEN subscribers get exactly one report.failed, saying why, with attributes to filter on
    messages = boto3.client("sqs", region_name=REGION).receive_message(QueueUrl=listener, MaxNumberOfMessages=10)
    envelopes = [json.loads(m["Body"]) for m in messages.get("Messages", [])]
    assert len(envelopes) == 1
    event = json.loads(envelopes[0]["Message"])
    assert (event["type"], event["data"]["id"], event["data"]["status"]) == ("report.failed", report_id, "FAILED")
    assert event["data"]["error"]["code"] == "NO_DATA"
    assert "pdfUri" not in event["data"]
    attributes = {k: v["Value"] for k, v in envelopes[0]["MessageAttributes"].items()}
    assert (attributes["eventType"], attributes["status"]) == ("report.failed", "FAILED")
    assert attributes["eventId"] == webhook_message_id(report_id, "report.failed")


def published_events(listener: str) -> list[dict[str, Any]]:
    sqs, events = boto3.client("sqs", region_name=REGION), []
    while messages := sqs.receive_message(QueueUrl=listener, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            events.append(json.loads(json.loads(message["Body"])["Message"]))
            sqs.delete_message(QueueUrl=listener, ReceiptHandle=message["ReceiptHandle"])
    return events


def test_a_stream_retry_publishes_no_final_event_twice(
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource, pusher: FakeManagementApi
) -> None:
    # GIVEN two reports that ran, their changes on the stream in one batch, and a watcher of the
    # first whose first push is throttled
    listener = topic_listener(seeded)
    first, second = api.post(VALID).body, api.post({**VALID, "reportDate": "2021-01-02"}).body
    call("subscribe", "flaky", body={"action": "subscribe", **link_of(first)})
    jobs.drain()
    pusher.fail_next("flaky")
    # WHEN the batch fails at the first report's first change, and the stream retries from there
    # (so the second report's changes, after it, come again)
    assert drain_failures(stream_source(seeded, "ReportsTable")) > 0
    # THEN each completion was published once, with its own stable event id
    events = published_events(listener)
    assert sorted(event["eventId"] for event in events) == sorted(
        webhook_message_id(report["id"], "report.completed") for report in (first, second)
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver(failures=2)
    yield started
    started.close()


def callbacks_source(stack: DataStack) -> SqsEventSource:
    return SqsEventSource(
        boto3.client("sqs", region_name=REGION),
        queue_url=stack.ref("CallbacksQueue"),
        queue_arn=stack.get_att("CallbacksQueue", "Arn"),
        handler=webhook.handler,
        function_name="WebhookFunction",
        timeout_seconds=template().functions()["WebhookFunction"].timeout,
        retry_delay_seconds=0,
    )


def test_a_callback_that_fails_twice_is_accepted_exactly_once_with_one_webhook_id(
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource, pusher: FakeManagementApi, receiver: Receiver
) -> None:
    from standardwebhooks import Webhook

    # GIVEN a report with a callback to a receiver that fails twice
    report_id = api.post({**VALID, "callbackUrl": receiver.url}).body["id"]
    jobs.drain()
    drain(stream_source(seeded, "ReportsTable"))
    callbacks = callbacks_source(seeded)
    # WHEN the webhook function delivers (each failure comes back for another attempt)
    for _ in range(5):
        callbacks.poll_once()
    # THEN three attempts, one accepted, all with the same webhook-id, each verifiable
    assert [status for status, _, _ in receiver.requests] == [500, 500, 200]
    ids = {headers["webhook-id"] for _, headers, _ in receiver.requests}
    assert ids == {webhook_message_id(report_id, "report.completed")}  # the SNS message's eventId too
    verifier = Webhook(dependencies.webhook_signing_secret())
    for _, headers, body in receiver.requests:
        event = verifier.verify(body, headers)
        assert (event["type"], event["data"]["id"]) == ("report.completed", report_id)
    from standardwebhooks.webhooks import WebhookVerificationError

    with pytest.raises(WebhookVerificationError):
        verifier.verify(receiver.requests[-1][2].replace(b"COMPLETED", b"FAILED"), receiver.requests[-1][1])
    # AND a redelivered event is not sent again
    boto3.client("sns", region_name=REGION).publish(
        TopicArn=seeded.ref("ReportEventsTopic"),
        Message=receiver.requests[-1][2].decode(),
        MessageAttributes={"hasCallback": {"DataType": "String", "StringValue": "true"}},
    )
    callbacks.poll_once()
    assert len(receiver.requests) == 3


def test_submit_refuses_callbacks_to_private_addresses(api: InProcessApi, stack: DataStack) -> None:
    for url in ("http://169.254.169.254/latest/meta-data", "http://10.0.0.5/hook", "ftp://example.com/x"):
        answer = api.post({**VALID, "callbackUrl": url})
        assert answer.status == 400, url
        assert answer.body["field"] == "callbackUrl"


def test_the_sample_events_in_events_run_through_their_handlers(stack: DataStack, pusher: FakeManagementApi) -> None:
    from tests.conftest import load_event

    context = LambdaContext(function_name="sample", timeout_seconds=30)
    # a sample token is not signed with this deployment's key
    assert connections.handler(load_event("connections-connect"), context)["statusCode"] == 401
    assert connections.handler(load_event("connections-subscribe"), context)["statusCode"] == 401
    assert connections.handler(load_event("connections-ping"), context)["statusCode"] == 200
    assert connections.handler(load_event("connections-disconnect"), context)["statusCode"] == 200
    listener = topic_listener(stack)
    assert notify.handler(load_event("notify-report-completed"), context) == {"batchItemFailures": []}
    published = boto3.client("sqs", region_name=REGION).receive_message(QueueUrl=listener)["Messages"]
    assert json.loads(json.loads(published[0]["Body"])["Message"])["type"] == "report.completed"
    # the sample's report does not exist here, so no callback is owed: acknowledged, not retried
    assert webhook.handler(load_event("webhook-callback"), context) == {"batchItemFailures": []}


def test_a_receiver_answering_410_is_never_called_again(
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource, pusher: FakeManagementApi
) -> None:
    # GIVEN a receiver that says the hook is gone
    gone = Receiver(failures=0, final_status=410)
    report_id = api.post({**VALID, "callbackUrl": gone.url}).body["id"]
    jobs.drain()
    drain(stream_source(seeded, "ReportsTable"))
    callbacks = callbacks_source(seeded)
    # WHEN the webhook function tries, and SQS offers the message again
    for _ in range(3):
        callbacks.poll_once()
    gone.close()
    # THEN one attempt, acknowledged, and the report remembers the hook is gone
    assert len(gone.requests) == 1
    assert dependencies.report_store().get(report_id).callback_status == "gone"  # type: ignore[union-attr]


def test_a_callback_that_never_succeeds_ends_in_the_callbacks_dlq(
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource, pusher: FakeManagementApi
) -> None:
    # GIVEN a receiver that always fails
    failing = Receiver(failures=1000)
    api.post({**VALID, "callbackUrl": failing.url})
    jobs.drain()
    drain(stream_source(seeded, "ReportsTable"))
    callbacks = callbacks_source(seeded)
    attempts = int(seeded.parameters["WebhookMaxAttempts"])
    # WHEN SQS offers it until its receives run out
    for _ in range(attempts + 1):
        callbacks.poll_once()
    failing.close()
    # THEN every attempt was made, and the event waits in the dead-letter queue for the operators
    assert len(failing.requests) == attempts
    dlq = boto3.client("sqs", region_name=REGION).receive_message(QueueUrl=seeded.ref("CallbacksDeadLetterQueue"))
    assert json.loads(dlq["Messages"][0]["Body"])["type"] == "report.completed"


def test_deployed_keys_come_from_secrets_manager(stack: DataStack, monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    secrets = boto3.client("secretsmanager", region_name=REGION)
    token_arn = secrets.create_secret(Name="token", SecretString="token-key-material")["ARN"]
    webhook_arn = secrets.create_secret(Name="webhook", SecretString="webhook-key-material")["ARN"]
    for name, value in (
        ("TOKEN_SECRET", ""),
        ("WEBHOOK_SECRET", ""),
        ("TOKEN_SECRET_ARN", token_arn),
        ("WEBHOOK_SECRET_ARN", webhook_arn),
    ):
        monkeypatch.setenv(name, value)
    dependencies.clear_dependencies()
    assert dependencies.watch_token_key() == "token-key-material"
    assert dependencies.webhook_signing_secret() == "whsec_" + base64.b64encode(b"webhook-key-material").decode()
