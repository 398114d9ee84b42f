"""The receiver hands out an event only once it is verified, and each event once, however often it is sent.

Requests go over real HTTP to a receiver on 127.0.0.1 started in the test; SNS's certificate is served by the
injected fetcher of ``test_sns.FakeSns``, so nothing else is contacted.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from standardwebhooks.webhooks import Webhook

from async_reports_client.webhooks import ReceivedEvent, WebhookReceiver
from reports.webhooks import sign, webhook_message_id, webhook_payload
from tests.client.test_sns import EVENT, REPORT, SUBSCRIBE_URL, FakeSns

SECRET = "whsec_" + base64.b64encode(b"async-reports-client-test-secret").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"somebody else's secret, not ours").decode()
PROBLEM = "application/problem+json"


def event_for(report_id: str, event_type: str = "report.completed") -> dict[str, Any]:
    return {"type": event_type, "timestamp": "2021-01-02T03:04:05.678Z", "data": REPORT | {"id": report_id}}


def webhook_request(
    event: dict[str, Any], *, message_id: str = "msg_1", secret: str = SECRET, at: datetime | None = None
) -> tuple[bytes, dict[str, str]]:
    """A body and the Standard Webhooks headers the standardwebhooks library signs it with."""
    body = json.dumps(event, separators=(",", ":"))
    moment = at or datetime.now(UTC)
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id=message_id, timestamp=moment, data=body),
        "Content-Type": "application/json",
    }
    return body.encode(), headers


def sns_headers(message: dict[str, Any]) -> dict[str, str]:
    """The headers SNS sends with every HTTP/HTTPS delivery."""
    return {
        "x-amz-sns-message-type": message["Type"],
        "x-amz-sns-message-id": message["MessageId"],
        "x-amz-sns-topic-arn": message["TopicArn"],
        "Content-Type": "text/plain; charset=UTF-8",
    }


@pytest.fixture
def confirmed() -> list[str]:
    return []


@pytest.fixture
def receiver(fake_sns: FakeSns, confirmed: list[str]) -> Iterator[WebhookReceiver]:
    with WebhookReceiver(
        SECRET, path="/hooks", sns_verifier=fake_sns.verifier(), confirm_subscription=confirmed.append
    ) as started:
        yield started


def post(receiver: WebhookReceiver, body: bytes, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.post(receiver.url, data=body, headers=headers or {}, timeout=5)


def problem_detail(response: requests.Response) -> str:
    assert response.headers["Content-Type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == response.status_code
    detail: str = problem["detail"]
    return detail


# --- Standard Webhooks -----------------------------------------------------------------------------------------


def test_a_signed_webhook_is_delivered_once_even_when_it_is_sent_twice(receiver: WebhookReceiver) -> None:
    # GIVEN a webhook signed with the shared secret, and the same webhook retried with the same webhook-id
    body, headers = webhook_request(EVENT, message_id="msg_retry")
    # WHEN both are posted
    first, retry = post(receiver, body, headers), post(receiver, body, headers)
    # THEN both are acknowledged, so the sender stops retrying
    assert (first.status_code, retry.status_code) == (200, 200)
    # AND the event is handed out once, with the report it carries
    event = receiver.next_event(timeout=2)
    assert event == ReceivedEvent(channel="webhook", id="msg_retry", type="report.completed", report=REPORT, body=EVENT)
    assert receiver.next_event(timeout=0.2) is None


def test_a_webhook_signed_by_the_server_code_is_accepted(receiver: WebhookReceiver) -> None:
    # GIVEN the exact headers and bytes the service's webhook sender produces
    payload = webhook_payload("report.failed", REPORT | {"status": "FAILED"}, datetime.now(UTC))
    message_id = webhook_message_id(REPORT["id"], "report.failed")
    headers = sign(SECRET, message_id, datetime.now(UTC), payload)
    # THEN the receiver accepts them and hands out the event
    assert post(receiver, payload, headers).status_code == 200
    event = receiver.next_event(timeout=2)
    assert event is not None
    assert (event.id, event.type, event.report["status"]) == (message_id, "report.failed", "FAILED")


def test_a_tampered_webhook_is_refused_and_never_delivered(receiver: WebhookReceiver) -> None:
    # GIVEN a signed webhook whose body was changed on the way
    body, headers = webhook_request(EVENT)
    tampered = body.replace(b'"COMPLETED"', b'"FAILED"')
    # THEN it is refused as unauthenticated, saying the signature does not match
    response = post(receiver, tampered, headers)
    assert response.status_code == 401
    assert "webhook-signature does not match the body" in problem_detail(response)
    assert receiver.next_event(timeout=0.2) is None
    # AND the genuine one, sent afterwards with the same id, is still accepted
    assert post(receiver, body, headers).status_code == 200
    assert receiver.next_event(timeout=2) is not None


def test_a_webhook_signed_with_another_secret_is_refused(receiver: WebhookReceiver) -> None:
    response = post(receiver, *webhook_request(EVENT, secret=OTHER_SECRET))
    assert response.status_code == 401
    assert receiver.next_event(timeout=0.2) is None


@pytest.mark.parametrize(
    ("offset", "reason"),
    [(timedelta(minutes=-10), "more than 5 minutes in the past"), (timedelta(minutes=10), "in the future")],
)
def test_a_webhook_with_a_stale_or_future_timestamp_is_refused(
    receiver: WebhookReceiver, offset: timedelta, reason: str
) -> None:
    # GIVEN a correctly signed webhook, signed ten minutes away from now (a replay, or a skewed clock)
    response = post(receiver, *webhook_request(EVENT, at=datetime.now(UTC) + offset))
    # THEN it is refused, saying why
    assert response.status_code == 401
    assert reason in problem_detail(response)
    assert receiver.next_event(timeout=0.2) is None


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"webhook-id": "msg_1"}, "no webhook-timestamp, webhook-signature header"),
        ({"webhook-id": "msg_1", "webhook-timestamp": "soon", "webhook-signature": "v1,AAAA"}, "not a number"),
        ({"webhook-id": "msg_1", "webhook-timestamp": str(int(time.time())), "webhook-signature": "v1"}, "malformed"),
    ],
)
def test_a_webhook_with_missing_or_malformed_headers_is_refused(
    receiver: WebhookReceiver, headers: dict[str, str], reason: str
) -> None:
    response = post(receiver, json.dumps(EVENT).encode(), headers)
    assert response.status_code == 401
    assert reason in problem_detail(response)


def test_a_receiver_without_a_secret_refuses_every_webhook() -> None:
    with WebhookReceiver(None) as receiver:
        response = post(receiver, *webhook_request(EVENT))
        assert response.status_code == 401
        assert "no webhook secret" in problem_detail(response)
        assert receiver.next_event(timeout=0.2) is None


def test_a_signed_webhook_that_is_not_a_report_event_is_a_bad_request(receiver: WebhookReceiver) -> None:
    response = post(receiver, *webhook_request({"type": "report.completed", "data": "nope"}))
    assert response.status_code == 400
    assert '"data": {report}' in problem_detail(response)
    assert receiver.next_event(timeout=0.2) is None


def test_an_invalid_secret_is_refused_when_the_receiver_is_made() -> None:
    with pytest.raises(ValueError, match="followed by base64"):
        WebhookReceiver("whsec_not*base64")


# --- SNS -------------------------------------------------------------------------------------------------------


def test_a_verified_subscription_confirmation_is_confirmed_with_its_subscribe_url(
    receiver: WebhookReceiver, fake_sns: FakeSns, confirmed: list[str]
) -> None:
    message = fake_sns.confirmation()
    response = post(receiver, json.dumps(message).encode(), sns_headers(message))
    assert response.status_code == 200
    assert confirmed == [SUBSCRIBE_URL]
    assert receiver.next_event(timeout=0.2) is None


def test_a_forged_subscription_confirmation_is_refused_and_not_confirmed(
    receiver: WebhookReceiver, fake_sns: FakeSns, confirmed: list[str]
) -> None:
    # GIVEN a confirmation whose SubscribeURL was swapped after SNS signed it
    message = fake_sns.confirmation() | {"SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Other"}
    # THEN it is refused and the URL is never visited
    response = post(receiver, json.dumps(message).encode(), sns_headers(message))
    assert response.status_code == 401
    assert "does not match its Signature" in problem_detail(response)
    assert confirmed == []


def test_a_failed_confirmation_is_reported_to_sns_as_a_server_side_failure(fake_sns: FakeSns) -> None:
    def refuse(url: str) -> None:
        raise RuntimeError("SNS said no")

    with WebhookReceiver(SECRET, sns_verifier=fake_sns.verifier(), confirm_subscription=refuse) as receiver:
        message = fake_sns.confirmation()
        response = post(receiver, json.dumps(message).encode(), sns_headers(message))
    assert response.status_code == 502
    assert "SNS said no" in problem_detail(response)


def test_an_sns_notification_delivers_the_event_it_carries_once(receiver: WebhookReceiver, fake_sns: FakeSns) -> None:
    # GIVEN a notification of the ReportEvents topic, delivered twice (SNS retries with the same MessageId)
    message = fake_sns.notification(event_for("r-sns"), message_id="sns-msg-1")
    for _ in range(2):
        assert post(receiver, json.dumps(message).encode(), sns_headers(message)).status_code == 200
    # THEN the parsed event is handed out once
    event = receiver.next_event(timeout=2)
    assert event == ReceivedEvent(
        channel="sns",
        id="sns-msg-1",
        type="report.completed",
        report=event_for("r-sns")["data"],
        body=event_for("r-sns"),
    )
    assert receiver.next_event(timeout=0.2) is None


def test_an_sns_notification_without_sns_headers_is_still_recognised(
    receiver: WebhookReceiver, fake_sns: FakeSns
) -> None:
    # GIVEN an SNS message posted without the x-amz-sns-* headers (as moto's SNS delivers them)
    message = fake_sns.notification(event_for("r-moto"))
    response = post(receiver, json.dumps(message).encode(), {"Content-Type": "text/plain; charset=UTF-8"})
    # THEN it is verified and delivered all the same
    assert response.status_code == 200
    event = receiver.next_event(timeout=2, report_id="r-moto")
    assert event is not None
    assert event.channel == "sns"


def test_a_tampered_sns_notification_is_refused(receiver: WebhookReceiver, fake_sns: FakeSns) -> None:
    message = fake_sns.notification(event_for("r-1")) | {"Message": json.dumps(event_for("r-1", "report.failed"))}
    response = post(receiver, json.dumps(message).encode(), sns_headers(message))
    assert response.status_code == 401
    assert "SNS message verification failed" in problem_detail(response)
    assert receiver.next_event(timeout=0.2) is None


def test_an_sns_notification_from_a_look_alike_certificate_host_is_refused_without_fetching(
    receiver: WebhookReceiver, fake_sns: FakeSns
) -> None:
    message = fake_sns.notification() | {"SigningCertURL": "https://sns.us-east-1.amazonaws.com.evil.example/c.pem"}
    response = post(receiver, json.dumps(message).encode(), sns_headers(message))
    assert response.status_code == 401
    assert "is not sns.<region>.amazonaws.com" in problem_detail(response)
    assert fake_sns.fetched == []


def test_an_unsubscribe_confirmation_is_acknowledged_without_an_event(
    receiver: WebhookReceiver, fake_sns: FakeSns, confirmed: list[str]
) -> None:
    message = fake_sns.confirmation("UnsubscribeConfirmation")
    assert post(receiver, json.dumps(message).encode(), sns_headers(message)).status_code == 200
    assert confirmed == []
    assert receiver.next_event(timeout=0.2) is None


def test_an_sns_header_that_contradicts_the_message_type_is_a_bad_request(
    receiver: WebhookReceiver, fake_sns: FakeSns, confirmed: list[str]
) -> None:
    message = fake_sns.confirmation()
    headers = sns_headers(message) | {"x-amz-sns-message-type": "Notification"}
    response = post(receiver, json.dumps(message).encode(), headers)
    assert response.status_code == 400
    assert "header says 'Notification'" in problem_detail(response)
    assert confirmed == []


# --- waiting for events ----------------------------------------------------------------------------------------


def test_events_for_other_reports_wait_for_their_own_callers(receiver: WebhookReceiver) -> None:
    # GIVEN a caller already waiting for report "a"
    found: dict[str, ReceivedEvent | None] = {}
    waiter = threading.Thread(target=lambda: found.update(a=receiver.next_event(timeout=5, report_id="a")))
    waiter.start()
    # WHEN an event for "b" arrives first, then one for "a"
    assert post(receiver, *webhook_request(event_for("b"), message_id="msg_b")).status_code == 200
    assert post(receiver, *webhook_request(event_for("a"), message_id="msg_a")).status_code == 200
    waiter.join(timeout=5)
    # THEN the waiter gets "a", and "b" is still there for whoever asks for it
    event_a = found["a"]
    assert event_a is not None
    assert event_a.report["id"] == "a"
    event_b = receiver.next_event(timeout=0, report_id="b")
    assert event_b is not None
    assert event_b.id == "msg_b"
    assert receiver.next_event(timeout=0) is None


def test_next_event_gives_up_after_its_timeout_with_none(receiver: WebhookReceiver) -> None:
    started = time.monotonic()
    assert receiver.next_event(timeout=0.3) is None
    assert 0.25 <= time.monotonic() - started < 2


def test_next_event_without_a_report_id_takes_the_oldest(receiver: WebhookReceiver) -> None:
    for report_id in ("first", "second"):
        post(receiver, *webhook_request(event_for(report_id), message_id=f"msg_{report_id}"))
    events = [receiver.next_event(timeout=1), receiver.next_event(timeout=1)]
    assert [event.report["id"] for event in events if event] == ["first", "second"]


# --- what is not an event --------------------------------------------------------------------------------------


def test_a_post_that_is_neither_a_webhook_nor_sns_is_a_bad_request_saying_what_is_expected(
    receiver: WebhookReceiver,
) -> None:
    response = post(receiver, json.dumps(EVENT).encode(), {"Content-Type": "application/json"})
    assert response.status_code == 400
    detail = problem_detail(response)
    assert "webhook-signature" in detail
    assert "x-amz-sns-message-type" in detail


def test_other_paths_and_methods_are_refused(receiver: WebhookReceiver) -> None:
    base = receiver.url.removesuffix("/hooks")
    assert requests.post(base + "/elsewhere", data=b"{}", timeout=5).status_code == 404
    response = requests.get(receiver.url, timeout=5)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert problem_detail(response) == "events are POSTed"


def test_a_body_over_one_mebibyte_is_refused(receiver: WebhookReceiver) -> None:
    body, headers = webhook_request(EVENT | {"padding": "x" * (1024 * 1024)})
    response = post(receiver, body, headers)
    assert response.status_code == 413
    assert "at most 1048576" in problem_detail(response)
    assert receiver.next_event(timeout=0.2) is None


def test_the_url_is_the_public_one_when_given() -> None:
    receiver = WebhookReceiver(SECRET, public_url="https://hooks.example.com/reports")
    assert receiver.url == "https://hooks.example.com/reports"
    with WebhookReceiver(SECRET, path="/cb") as local:
        assert local.url.startswith("http://127.0.0.1:")
        assert local.url.endswith("/cb")
