"""Push channels against moto: watch tokens and connection tracking, report.updated to every
watcher from the Reports stream, the ReportEvents topic, and signed callbacks with retries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from handlers import connections, notify, webhook
from local.event_sources import DynamoDBStreamEventSource, SqsEventSource
from local.events import LambdaContext
from local.template import DataStack
from reports import dependencies
from tests.conftest import REGION, template
from tests.functional.conftest import InProcessApi
from tests.receivers import Receiver

VALID = {"reportType": "COFFEE_SALES", "reportDate": "2021-01-01"}


class FakePusher:
    """Stands in for the @connections endpoint (moto's accepts every id and never says 410)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.gone: set[str] = set()

    def push(self, connection_id: str, message: dict[str, Any]) -> bool:
        if connection_id in self.gone:
            return False
        self.sent.append((connection_id, message))
        return True

    def to(self, connection_id: str) -> list[dict[str, Any]]:
        return [message for target, message in self.sent if target == connection_id]


@pytest.fixture
def pusher(stack: DataStack) -> Iterator[FakePusher]:
    fake = FakePusher()
    with pytest.MonkeyPatch.context() as patch:  # undone before the stack's own teardown
        patch.setattr(dependencies, "pusher", lambda: fake)
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
    return connections.handler(ws_event(route, connection_id, **kwargs), context)


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
    api: InProcessApi, stack: DataStack, pusher: FakePusher
) -> None:
    link = link_of(api.post(VALID).body)
    assert call("$connect", "c1", query=link)["statusCode"] == 200
    assert dependencies.connection_store().watchers(link["reportId"]) == ["c1"]
    assert call("$disconnect", "c1")["statusCode"] == 200
    assert dependencies.connection_store().watchers(link["reportId"]) == []


@pytest.mark.parametrize(
    ("mangle", "status"),
    [
        (lambda link: {**link, "token": ""}, 401),
        (lambda link: {**link, "token": link["token"][:-2] + "xx"}, 401),
        (lambda link: {**link, "token": "not.a-token"}, 401),
        (lambda link: {**link, "reportId": "01JH2Z3Y4X5W6V7T8S9R0Q1P2N"}, 403),
    ],
)
def test_connect_refuses_missing_forged_or_foreign_tokens(
    api: InProcessApi, stack: DataStack, pusher: FakePusher, mangle: Any, status: int
) -> None:
    link = link_of(api.post(VALID).body)
    assert call("$connect", "c1", query=mangle(link))["statusCode"] == status
    assert dependencies.connection_store().watchers(link["reportId"]) == []


def test_an_expired_token_is_refused(api: InProcessApi, stack: DataStack, pusher: FakePusher) -> None:
    from datetime import timedelta

    from reports.model import utc_now
    from reports.tokens import issue_watch_token

    report_id = api.post(VALID).body["id"]
    token = issue_watch_token(
        dependencies.watch_token_key(),
        report_id=report_id,
        tenant="tenant-a-key-id",
        now=utc_now() - timedelta(hours=1),
    )
    answer = call("subscribe", "c1", body={"action": "subscribe", "reportId": report_id, "token": token})
    assert answer["statusCode"] == 401
    assert pusher.to("c1") == [{"type": "error", "status": 401, "detail": answer["body"]}]
    assert "expired" in answer["body"]


def test_ping_answers_pong(stack: DataStack, pusher: FakePusher) -> None:
    call("ping", "c1", body={"action": "ping"})
    assert pusher.to("c1") == [{"type": "pong"}]


def test_watchers_see_every_step_in_order_then_the_final_state_with_the_pdf(
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource, pusher: FakePusher
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


def test_a_watcher_that_connects_after_completion_still_gets_the_final_state(
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource, pusher: FakePusher
) -> None:
    created = api.post(VALID).body
    jobs.drain()
    drain(stream_source(seeded, "ReportsTable"))
    watches = stream_source(seeded, "ConnectionsTable")
    call("$connect", "late", query=link_of(created))
    drain(watches)
    assert [m["report"]["status"] for m in pusher.to("late")] == ["COMPLETED"]


def test_changes_still_on_the_stream_never_take_a_newer_replayed_state_back(
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource, pusher: FakePusher
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
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource, pusher: FakePusher
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


def topic_listener(stack: DataStack) -> str:
    """An SQS queue subscribed to the ReportEvents topic with no filter: what any subscriber sees."""
    sqs, sns = boto3.client("sqs", region_name=REGION), boto3.client("sns", region_name=REGION)
    url = sqs.create_queue(QueueName="listener")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=stack.ref("ReportEventsTopic"), Protocol="sqs", Endpoint=arn)
    return url


def test_completion_is_published_once_with_attributes_for_filters(
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource, pusher: FakePusher
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
    attributes = {k: v["Value"] for k, v in envelopes[0]["MessageAttributes"].items()}
    assert attributes == {
        "eventType": "report.completed",
        "reportType": "COFFEE_SALES",
        "status": "COMPLETED",
        "tenant": "tenant-a-key-id",
        "hasCallback": "false",
    }


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
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource, pusher: FakePusher, receiver: Receiver
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
    assert len(ids) == 1
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


def test_the_sample_events_in_events_run_through_their_handlers(stack: DataStack, pusher: FakePusher) -> None:
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
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource, pusher: FakePusher
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
    api: InProcessApi, seeded: DataStack, jobs: SqsEventSource, pusher: FakePusher
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
