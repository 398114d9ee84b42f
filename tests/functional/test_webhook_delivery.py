"""Callback delivery against moto: WebhookFunction on real Callbacks-queue messages, with receivers on
127.0.0.1 and, where a test needs a name to resolve somewhere, a stand-in for DNS."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
import requests

from handlers import webhook
from local.event_sources import SqsEventSource
from local.template import DataStack
from reports import callbacks, deliveries, dependencies, webhooks
from reports.callback_leases import Busy, DynamoCallbackLeases, Lease
from reports.deliveries import DeliveryPolicy, Verdict, deliver_callback
from reports.model import utc_now
from reports.settings import settings
from tests.conftest import REGION
from tests.functional.conftest import InProcessApi

VALID = {"reportType": "COFFEE_SALES", "reportDate": "2021-01-01"}
PUBLIC = "93.184.215.14"


class Gate:
    """A receiver on 127.0.0.1 that answers ``status``, each answer held until ``opened`` (or ``hold`` seconds)."""

    def __init__(self, status: int = 200, *, hold: float = 0.0) -> None:
        self.requests: list[dict[str, str]] = []
        self.arrived = threading.Event()
        self.opened = threading.Event()
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                gate.requests.append({k.lower(): v for k, v in self.headers.items()})
                gate.arrived.set()
                if hold:
                    gate.opened.wait(hold)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/hooks"

    def close(self) -> None:
        self.opened.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gates() -> Iterator[Callable[..., Gate]]:
    opened: list[Gate] = []

    def open_gate(status: int = 200, *, hold: float = 0.0) -> Gate:
        opened.append(Gate(status, hold=hold))
        return opened[-1]

    yield open_gate
    for gate in opened:
        gate.close()


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str] | Exception]:
    """Names under .test answer what the test puts here; everything else resolves as usual."""
    zone: dict[str, list[str] | Exception] = {}
    real = callbacks.default_resolver

    def resolve(host: str, port: int) -> list[str]:
        if host not in zone:
            return real(host, port)
        answer = zone[host]
        if isinstance(answer, Exception):
            raise answer
        return list(answer)

    monkeypatch.setattr(callbacks, "default_resolver", resolve)
    return zone


@pytest.fixture
def posts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every host a delivery really POSTed to (the real ``deliver`` still runs)."""
    seen: list[str] = []
    real = webhooks.deliver

    def spy(target: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(target.host)
        return real(target, *args, **kwargs)

    monkeypatch.setattr(deliveries, "deliver", spy)
    return seen


def sqs() -> Any:
    return boto3.client("sqs", region_name=REGION)


def submit(api: InProcessApi, callback_url: str) -> str:
    answer = api.post({**VALID, "callbackUrl": callback_url})
    assert answer.status == 201, answer.body
    return str(answer.body["id"])


def event_body(report_id: str) -> str:
    return json.dumps(
        {
            "type": "report.completed",
            "timestamp": "2021-01-02T03:04:05.678Z",
            "data": {"id": report_id, "status": "COMPLETED", "completed": True},
        }
    )


def enqueue(stack: DataStack, report_id: str) -> None:
    """The event as the ReportEvents subscription puts it on the Callbacks queue (raw, with its attributes)."""
    sqs().send_message(
        QueueUrl=stack.ref("CallbacksQueue"),
        MessageBody=event_body(report_id),
        MessageAttributes={
            "eventType": {"DataType": "String", "StringValue": "report.completed"},
            "hasCallback": {"DataType": "String", "StringValue": "true"},
        },
    )


def webhook_function(stack: DataStack, *, timeout_seconds: int = 30, batch_size: int = 5) -> SqsEventSource:
    """The Callbacks queue feeding WebhookFunction as Lambda does: what it leaves invisible stays so."""
    return SqsEventSource(
        sqs(),
        queue_url=stack.ref("CallbacksQueue"),
        queue_arn=stack.get_att("CallbacksQueue", "Arn"),
        handler=webhook.handler,
        function_name="WebhookFunction",
        timeout_seconds=timeout_seconds,
        batch_size=batch_size,
    )


def visible(stack: DataStack, queue: str = "CallbacksQueue") -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = (
        sqs()
        .receive_message(QueueUrl=stack.ref(queue), MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        .get("Messages", [])
    )
    return messages


def waiting(stack: DataStack, queue: str = "CallbacksQueue") -> int:
    """Messages in the queue, visible or not."""
    counts = sqs().get_queue_attributes(
        QueueUrl=stack.ref(queue),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(counts["ApproximateNumberOfMessages"]) + int(counts["ApproximateNumberOfMessagesNotVisible"])


def item(stack: DataStack, report_id: str) -> dict[str, Any]:
    table = stack.ref("ReportsTable")
    found: dict[str, Any] = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=table, Key={"id": {"S": report_id}}, ConsistentRead=True
    )["Item"]
    return found


def attempts(stack: DataStack, report_id: str) -> int:
    return int(item(stack, report_id).get("callbackAttempts", {}).get("N", "0"))


def callback_status(report_id: str) -> str | None:
    report = dependencies.report_store().get(report_id)
    assert report is not None
    return report.callback_status


# --- refused or retried when the name moves (checked again at delivery) ------------------------------------


def test_a_callback_whose_host_now_resolves_to_a_private_address_is_refused_acknowledged_and_never_posted(
    api: InProcessApi, stack: DataStack, dns: dict[str, Any], posts: list[str]
) -> None:
    # GIVEN a callback whose name was public when the report was submitted
    dns["hooks.rebind.test"] = [PUBLIC]
    report_id = submit(api, "http://hooks.rebind.test/hooks")
    # AND that name now points into the private network (DNS rebinding)
    dns["hooks.rebind.test"] = ["10.0.0.5"]
    enqueue(stack, report_id)
    # WHEN WebhookFunction takes the event
    result = webhook_function(stack).poll_once()
    # THEN nothing was POSTed anywhere, the report records the callback as refused
    assert posts == []
    assert callback_status(report_id) == "refused"
    # AND the message was acknowledged: not failed, not waiting to come back
    assert (result.received, result.failed) == (1, 0)
    assert waiting(stack) == 0


def test_a_callback_whose_host_no_longer_resolves_is_retried_as_a_failed_attempt(
    api: InProcessApi, stack: DataStack, dns: dict[str, Any], posts: list[str]
) -> None:
    # GIVEN a callback whose name resolved at submit time and does not now (a passing DNS failure)
    dns["hooks.flaky.test"] = [PUBLIC]
    report_id = submit(api, "http://hooks.flaky.test/hooks")
    dns["hooks.flaky.test"] = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    enqueue(stack, report_id)
    # WHEN WebhookFunction takes the event
    result = webhook_function(stack).poll_once()
    # THEN it is a failed attempt: counted, nothing POSTed or settled, the message left to come back later
    assert (result.received, result.failed) == (1, 1)
    assert posts == []
    assert attempts(stack, report_id) == 1
    assert callback_status(report_id) is None
    assert visible(stack) == []  # invisible for the retry delay, not offered again at once
    # WHEN the name resolves again, to this machine (local mode), and the message is back
    dns["hooks.flaky.test"] = ["127.0.0.1"]
    time.sleep(2.6)  # local mode's first retry comes after 1 s, +-20 %, rounded up
    gate_result = webhook_function(stack).poll_once()
    # THEN the second attempt reaches it (a refused connection here: nobody listens on port 80)
    assert gate_result.received == 1
    assert posts == ["hooks.flaky.test"]
    assert attempts(stack, report_id) == 2


def test_a_name_that_resolves_to_a_private_address_is_refused_at_submit_in_both_modes(
    api: InProcessApi, stack: DataStack, dns: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    dns["internal.corp.test"] = [PUBLIC, "10.1.2.3"]
    dns["metadata.corp.test"] = ["169.254.169.254"]
    dns["mapped.corp.test"] = ["::ffff:127.0.0.1"]
    for local_mode in ("true", "false"):
        monkeypatch.setenv("ALLOW_LOOPBACK_CALLBACKS", local_mode)
        dependencies.clear_dependencies()
        for host, named in (
            ("internal.corp.test", "resolves to 10.1.2.3, a private address"),
            ("metadata.corp.test", "resolves to 169.254.169.254, the cloud instance metadata address"),
            ("mapped.corp.test", "resolves to ::ffff:127.0.0.1, an IPv4-mapped form of 127.0.0.1, a loopback"),
        ):
            # WHEN a callback names a host whose DNS answer includes a non-public address
            answer = api.post({**VALID, "callbackUrl": f"https://{host}/hooks"})
            # THEN the submit is refused with the host, the address and what kind it is
            assert answer.status == 400, (local_mode, host)
            assert answer.body["field"] == "callbackUrl"
            assert f"callbackUrl host {host} {named}" in answer.body["detail"]


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/hooks", "http://[::1]:8080/hooks", "http://localhost:8080/hooks"]
)
def test_plain_loopback_is_refused_outside_local_mode_and_accepted_in_it(
    api: InProcessApi, stack: DataStack, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    # GIVEN a deployed function (ALLOW_LOOPBACK_CALLBACKS unset)
    monkeypatch.delenv("ALLOW_LOOPBACK_CALLBACKS")
    dependencies.clear_dependencies()
    # WHEN a loopback callback is submitted
    refused = api.post({**VALID, "callbackUrl": url})
    # THEN it is refused, saying loopback is for local mode only
    assert refused.status == 400
    assert "a loopback address" in refused.body["detail"]
    assert refused.body["detail"].endswith("webhooks are only sent to public addresses (loopback only in local mode)")
    # WHEN the local runtime's setting is on
    monkeypatch.setenv("ALLOW_LOOPBACK_CALLBACKS", "true")
    dependencies.clear_dependencies()
    # THEN the same URL is accepted
    assert api.post({**VALID, "callbackUrl": url}).status == 201


# --- a batch never outruns the function's timeout -----------------------------------------------------------


def test_records_a_batch_has_no_time_left_for_go_back_untried_and_uncounted(
    api: InProcessApi, stack: DataStack, gates: Callable[..., Gate]
) -> None:
    # GIVEN three callbacks in one batch, the first to a receiver that takes 2 s to answer
    slow, quick_1, quick_2 = gates(hold=2.0), gates(), gates()
    reports = [submit(api, gate.url()) for gate in (slow, quick_1, quick_2)]
    for report_id in reports:
        enqueue(stack, report_id)
    # AND an invocation with just enough time for one attempt when it starts
    needed = DeliveryPolicy(max_attempts=8).time_needed
    function = webhook_function(stack, timeout_seconds=int(needed) + 1, batch_size=3)
    # WHEN WebhookFunction takes the batch
    result = function.poll_once()
    # THEN the first was delivered, and the other two went back untried instead of timing the batch out
    assert (result.received, result.failed) == (3, 2)
    assert len(slow.requests) == 1
    assert (quick_1.requests, quick_2.requests) == ([], [])
    assert callback_status(reports[0]) == "delivered"
    # AND they were not counted as attempts, and are offered again at once
    assert [attempts(stack, report_id) for report_id in reports[1:]] == [0, 0]
    assert {json.loads(m["Body"])["data"]["id"] for m in visible(stack)} == set(reports[1:])


# --- one copy at a time -------------------------------------------------------------------------------------


def policy() -> DeliveryPolicy:
    return DeliveryPolicy(max_attempts=8, allow_loopback=True)


def deliver_copy(report_id: str, *, time_left: float = 30.0) -> Any:
    return deliver_callback(
        event_body(report_id),
        store=dependencies.report_store(),
        leases=DynamoCallbackLeases(boto3.client("dynamodb", region_name=REGION), settings().reports_table),
        secret=dependencies.webhook_signing_secret(),
        now=utc_now(),
        time_left=time_left,
        policy=policy(),
    )


def test_two_copies_of_an_event_at_once_post_once(
    api: InProcessApi, stack: DataStack, gates: Callable[..., Gate]
) -> None:
    # GIVEN a receiver that holds its answer until the test lets it go
    gate = gates(hold=20.0)
    report_id = submit(api, gate.url())
    # WHEN one copy of the event is being delivered
    first: list[Any] = []
    delivering = threading.Thread(target=lambda: first.append(deliver_copy(report_id)))
    delivering.start()
    assert gate.arrived.wait(10)
    # AND a second copy (SNS and SQS deliver at least once) arrives meanwhile
    second = deliver_copy(report_id)
    # THEN the second does not POST: it comes back once the first one's lease could have lapsed
    assert second.verdict is Verdict.DEFER
    assert 0 < second.retry_in <= deliveries.LEASE_SECONDS
    assert "another copy is delivering it" in second.reason
    gate.opened.set()
    delivering.join(10)
    assert first[0].verdict is Verdict.DONE
    # AND when it comes back, the callback is settled: acknowledged without a POST
    again = deliver_copy(report_id)
    assert (again.verdict, again.reason) == (Verdict.DONE, "already delivered")
    assert len(gate.requests) == 1
    assert attempts(stack, report_id) == 1


def test_a_lapsed_lease_is_taken_over_and_a_failed_attempt_frees_it_at_once(
    api: InProcessApi, stack: DataStack
) -> None:
    leases = DynamoCallbackLeases(boto3.client("dynamodb", region_name=REGION), stack.ref("ReportsTable"))
    report_id = submit(api, "http://127.0.0.1:9/hooks")
    now = utc_now()
    # GIVEN a copy that took the lease and stopped (its function crashed or timed out)
    taken = leases.claim(report_id, now, 60)
    assert isinstance(taken, Lease)
    assert taken.attempt == 1
    # WHEN another copy tries within the lease, and after it lapsed
    held = leases.claim(report_id, now + timedelta(seconds=59), 60)
    after = leases.claim(report_id, now + timedelta(seconds=61), 60)
    # THEN it waits while the lease runs, then takes over, counting its own attempt
    assert held == Busy(until=taken.until)
    assert isinstance(after, Lease)
    assert after.attempt == 2
    # WHEN the lapsed holder, still running, releases what is no longer its lease
    leases.release(taken)
    # THEN the new holder keeps it
    assert isinstance(leases.claim(report_id, now + timedelta(seconds=62), 60), Busy)
    # WHEN the holder releases its own lease after a failed attempt
    leases.release(after)
    # THEN the next copy may try at once
    third = leases.claim(report_id, now + timedelta(seconds=63), 60)
    assert isinstance(third, Lease)
    assert third.attempt == 3
    # AND a settled callback can no longer be leased
    dependencies.report_store().settle_callback(report_id, "delivered", now)
    assert leases.claim(report_id, now + timedelta(hours=1), 60) == Busy(until=None)


# --- attempts run out ---------------------------------------------------------------------------------------


def test_when_attempts_run_out_the_report_says_exhausted_and_the_event_waits_in_the_dead_letter_queue(
    api: InProcessApi, stack: DataStack, gates: Callable[..., Gate], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN two attempts allowed, and a receiver that always fails
    monkeypatch.setenv("WEBHOOK_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE", "0")  # every retry after the minimum, 1 s
    dependencies.clear_dependencies()
    failing = gates(status=503)
    report_id = submit(api, failing.url())
    enqueue(stack, report_id)
    function = webhook_function(stack)
    # WHEN the first attempt fails
    assert function.poll_once().failed == 1
    # THEN the callback is still owed, and the message waits for its retry
    assert (attempts(stack, report_id), callback_status(report_id)) == (1, None)
    assert visible(stack) == []
    # WHEN the last attempt fails too
    time.sleep(2.0)
    assert function.poll_once().failed == 0
    # THEN the report records the callback as exhausted, and the event is set aside with its attributes
    assert len(failing.requests) == 2
    assert callback_status(report_id) == "exhausted"
    [dead] = visible(stack, "CallbacksDeadLetterQueue")
    assert json.loads(dead["Body"])["data"]["id"] == report_id
    assert dead["MessageAttributes"]["hasCallback"]["StringValue"] == "true"
    assert waiting(stack) == 0
    # WHEN another copy of the event arrives later
    enqueue(stack, report_id)
    function.poll_once()
    # THEN it is not POSTed again: it joins the first in the dead-letter queue
    assert len(failing.requests) == 2
    assert (waiting(stack), waiting(stack, "CallbacksDeadLetterQueue")) == (0, 2)


# --- a retry carries a PDF link that still works ----------------------------------------------------------


def test_every_attempt_carries_a_freshly_presigned_pdf_link(
    api: InProcessApi,
    seeded: DataStack,
    jobs: SqsEventSource,
    gates: Callable[..., Gate],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a completed report whose event carries the pdfUri presigned when it completed (minutes of life)
    gate = gates(status=500)
    report_id = submit(api, gate.url())
    jobs.drain()
    event = json.loads(event_body(report_id))
    event["data"]["pdfUri"] = "https://expired.example/old-link"
    bodies: list[dict[str, Any]] = []
    real = webhooks.deliver

    def capture(target: Any, payload: bytes, *args: Any, **kwargs: Any) -> Any:
        bodies.append(json.loads(payload))
        return real(target, payload, *args, **kwargs)

    monkeypatch.setattr(deliveries, "deliver", capture)
    # WHEN the callback is attempted, later
    deliver_callback(
        json.dumps(event),
        store=dependencies.report_store(),
        leases=DynamoCallbackLeases(boto3.client("dynamodb", region_name=REGION), settings().reports_table),
        secret=dependencies.webhook_signing_secret(),
        now=utc_now(),
        time_left=30.0,
        policy=policy(),
        presign=dependencies.presign_report_pdf,
    )
    # THEN it carries a link presigned now, which downloads the PDF, not the stale one
    link = bodies[0]["data"]["pdfUri"]
    assert link != "https://expired.example/old-link"
    assert requests.get(link, timeout=10).content.startswith(b"%PDF")
