"""SNS messages are believed only when SNS's own certificate, fetched from SNS's own host, verifies them.

Messages here are signed for real with a throwaway RSA key and a self-signed certificate, which an injected
``fetch_certificate`` serves in place of SNS; nothing leaves the process.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from async_reports_client import sns
from async_reports_client.errors import WebhookVerificationError
from async_reports_client.sns import SnsVerifier, check_sns_url, confirm_subscription, string_to_sign

REGION = "us-east-1"
TOPIC_ARN = f"arn:aws:sns:{REGION}:123456789012:async-reports-ReportEvents"
CERT_URL = f"https://sns.{REGION}.amazonaws.com/SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem"
SUBSCRIBE_URL = f"https://sns.{REGION}.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC_ARN}&Token=2336412f37"
REPORT = {"id": "01JABCDEFGHJKMNPQRSTVWXYZ0", "reportType": "COFFEE_SALES", "status": "COMPLETED"}
EVENT = {"type": "report.completed", "timestamp": "2021-01-02T03:04:05.678Z", "data": REPORT}


# --- a stand-in for SNS: its key, its certificate, and messages signed with them ------------------------------


def make_certificate(
    key: rsa.RSAPrivateKey, *, not_before: datetime | None = None, not_after: datetime | None = None
) -> bytes:
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(days=1))
        .not_valid_after(not_after or now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


@dataclass
class FakeSns:
    """Signs messages as SNS would and serves the certificate, remembering every URL it was asked for."""

    key: rsa.RSAPrivateKey
    certificate: bytes
    fetched: list[str] = field(default_factory=list)

    def fetch(self, url: str) -> bytes:
        self.fetched.append(url)
        return self.certificate

    def verifier(self, **options: Any) -> SnsVerifier:
        return SnsVerifier(self.fetch, **options)

    def signed(self, message: dict[str, Any], *, version: str = "2") -> dict[str, Any]:
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(string_to_sign(message), padding.PKCS1v15(), algorithm)
        return message | {
            "SignatureVersion": version,
            "Signature": base64.b64encode(signature).decode(),
            "SigningCertURL": CERT_URL,
        }

    def notification(
        self,
        event: dict[str, Any] = EVENT,
        *,
        message_id: str = "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        version: str = "2",
        **extra: str,
    ) -> dict[str, Any]:
        message = {
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": TOPIC_ARN,
            "Message": json.dumps(event, separators=(",", ":")),
            "Timestamp": "2021-01-02T03:04:06.001Z",
            "UnsubscribeURL": f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={TOPIC_ARN}:1",
        }
        return self.signed(message | extra, version=version)

    def confirmation(self, message_type: str = "SubscriptionConfirmation", *, version: str = "2") -> dict[str, Any]:
        message = {
            "Type": message_type,
            "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
            "Token": "2336412f37",
            "TopicArn": TOPIC_ARN,
            "Message": f"You have chosen to subscribe to the topic {TOPIC_ARN}.\nTo confirm the subscription, visit "
            "the SubscribeURL included in this message.",
            "SubscribeURL": SUBSCRIBE_URL,
            "Timestamp": "2021-01-02T03:04:06.001Z",
        }
        return self.signed(message, version=version)


def refusal(verify: Callable[[], object]) -> str:
    with pytest.raises(WebhookVerificationError) as caught:
        verify()
    return str(caught.value)


# --- the string to sign ---------------------------------------------------------------------------------------


def test_the_string_to_sign_of_a_notification_is_the_documented_fields_in_order() -> None:
    # GIVEN the Notification of AWS's own example, with a Subject and fields that are not signed
    message = {
        "Type": "Notification",
        "MessageId": "4d4dc071-ddbf-465d-bba8-08f81c89da64",
        "TopicArn": "arn:aws:sns:us-east-2:123456789012:s4-MySNSTopic-1G1WEFCOXTC0P",
        "Subject": "My subject",
        "Message": "My Test Message",
        "Timestamp": "2019-01-31T04:37:04.321Z",
        "SignatureVersion": "1",
        "UnsubscribeURL": "https://sns.us-east-2.amazonaws.com/?Action=Unsubscribe",
    }
    # THEN each name and value is on its own line, in AWS's fixed order, ending with a newline
    assert string_to_sign(message) == (
        b"Message\nMy Test Message\n"
        b"MessageId\n4d4dc071-ddbf-465d-bba8-08f81c89da64\n"
        b"Subject\nMy subject\n"
        b"Timestamp\n2019-01-31T04:37:04.321Z\n"
        b"TopicArn\narn:aws:sns:us-east-2:123456789012:s4-MySNSTopic-1G1WEFCOXTC0P\n"
        b"Type\nNotification\n"
    )
    # AND without a Subject, the Subject lines are left out rather than left empty
    del message["Subject"]
    assert b"Subject" not in string_to_sign(message)


@pytest.mark.parametrize("message_type", ["SubscriptionConfirmation", "UnsubscribeConfirmation"])
def test_the_string_to_sign_of_a_confirmation_includes_subscribe_url_and_token(message_type: str) -> None:
    message = {
        "Type": message_type,
        "MessageId": "3d891288-136d-417f-bc05-901c108273ee",
        "Token": "233",
        "TopicArn": "arn:aws:sns:us-east-2:123456789012:T",
        "Message": "Line one\nline two",
        "SubscribeURL": "https://sns.us-east-2.amazonaws.com/?Action=ConfirmSubscription&Token=233",
        "Timestamp": "2019-01-31T19:25:13.719Z",
        "Subject": "not signed for confirmations",
    }
    assert string_to_sign(message) == (
        b"Message\nLine one\nline two\n"
        b"MessageId\n3d891288-136d-417f-bc05-901c108273ee\n"
        b"SubscribeURL\nhttps://sns.us-east-2.amazonaws.com/?Action=ConfirmSubscription&Token=233\n"
        b"Timestamp\n2019-01-31T19:25:13.719Z\n"
        b"Token\n233\n"
        b"TopicArn\narn:aws:sns:us-east-2:123456789012:T\n" + f"Type\n{message_type}\n".encode()
    )


def test_the_string_to_sign_refuses_an_unknown_type_or_a_missing_field() -> None:
    assert "unknown SNS message Type 'Bogus'" in refusal(lambda: string_to_sign({"Type": "Bogus"}))
    assert "has no MessageId" in refusal(
        lambda: string_to_sign({"Type": "Notification", "Message": "m", "Timestamp": "t", "TopicArn": "a"})
    )


# --- verification ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("kind", ["Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"])
def test_a_genuine_message_of_every_type_verifies_with_either_signature_version(
    fake_sns: FakeSns, kind: str, version: str
) -> None:
    # GIVEN a message signed with SHA1withRSA (version 1) or SHA256withRSA (version 2)
    if kind == "Notification":
        message = fake_sns.notification(version=version)
    else:
        message = fake_sns.confirmation(kind, version=version)
    # WHEN it is verified THEN it passes, with the certificate fetched from its SigningCertURL
    fake_sns.verifier().verify(message)
    assert fake_sns.fetched == [CERT_URL]


def test_a_notification_with_a_subject_verifies(fake_sns: FakeSns) -> None:
    fake_sns.verifier().verify(fake_sns.notification(Subject="Report ready"))


@pytest.mark.parametrize(
    ("field_name", "value"),
    [
        ("Message", json.dumps(EVENT | {"data": REPORT | {"status": "FAILED"}})),
        ("MessageId", "another-id"),
        ("Timestamp", "2030-01-01T00:00:00.000Z"),
        ("TopicArn", f"arn:aws:sns:{REGION}:999999999999:other"),
        ("Subject", "added after signing"),
    ],
)
def test_a_message_changed_after_signing_is_refused(fake_sns: FakeSns, field_name: str, value: str) -> None:
    # GIVEN a genuine notification with one signed field changed (or added)
    message = fake_sns.notification() | {field_name: value}
    # THEN it is refused as not matching its signature
    assert "does not match its Signature" in refusal(lambda: fake_sns.verifier().verify(message))


def test_a_message_signed_by_another_key_is_refused(fake_sns: FakeSns) -> None:
    # GIVEN a notification signed by a key other than the one in SNS's certificate
    impostor = FakeSns(rsa.generate_private_key(public_exponent=65537, key_size=2048), fake_sns.certificate)
    assert "does not match its Signature" in refusal(lambda: fake_sns.verifier().verify(impostor.notification()))


def test_a_version_1_signature_does_not_pass_as_version_2(fake_sns: FakeSns) -> None:
    message = fake_sns.notification(version="1") | {"SignatureVersion": "2"}
    assert "does not match its Signature" in refusal(lambda: fake_sns.verifier().verify(message))


@pytest.mark.parametrize(
    ("certificate_url", "reason"),
    [
        (f"http://sns.{REGION}.amazonaws.com/cert.pem", "only https:// is accepted"),
        (f"https://sns.{REGION}.amazonaws.com.evil.example/cert.pem", "is not sns.<region>.amazonaws.com"),
        (f"https://evil.example/sns.{REGION}.amazonaws.com/cert.pem", "is not sns.<region>.amazonaws.com"),
        (f"https://evil.example/?sns.{REGION}.amazonaws.com", "is not sns.<region>.amazonaws.com"),
        (f"https://sns.{REGION}.amazonaws.com@evil.example/cert.pem", "user name or password"),
        (f"https://sns.{REGION}.amazonaws.com:x@evil.example/cert.pem", "user name or password"),
        (f"https://user@sns.{REGION}.amazonaws.com/cert.pem", "user name or password"),
        (f"https://sns.{REGION}.amazonaws.com\\@evil.example/cert.pem", "backslash"),
        (f"https://sns.{REGION}.amazonaws.com:8443/cert.pem", "port 8443"),
        (f"https://sns.{REGION}.amazonaws.com./cert.pem", "is not sns.<region>.amazonaws.com"),
        ("https://sns.amazonaws.com/cert.pem", "is not sns.<region>.amazonaws.com"),
        ("https://s3.us-east-1.amazonaws.com/cert.pem", "is not sns.<region>.amazonaws.com"),
        ("https://evil.sns.us-east-1.amazonaws.com/cert.pem", "is not sns.<region>.amazonaws.com"),
        ("https://sns.us-east-1.amazonaws.com.cn.evil.example/cert.pem", "is not sns.<region>.amazonaws.com"),
        ("file:///etc/passwd", "only https:// is accepted"),
        ("", "missing"),
    ],
)
def test_a_signing_certificate_from_anywhere_but_sns_is_refused_before_any_fetch(
    fake_sns: FakeSns, certificate_url: str, reason: str
) -> None:
    # GIVEN a message that points at a certificate outside SNS (even one the attacker signed with)
    message = fake_sns.notification() | {"SigningCertURL": certificate_url}
    # THEN it is refused, saying why, and the certificate was never requested
    assert reason in refusal(lambda: fake_sns.verifier().verify(message))
    assert fake_sns.fetched == []


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem",
        "https://SNS.EU-WEST-1.AMAZONAWS.COM:443/?Action=ConfirmSubscription&Token=x",
    ],
)
def test_sns_urls_in_every_partition_are_accepted(url: str) -> None:
    check_sns_url(url)


@pytest.mark.parametrize(("version", "shown"), [("3", "'3'"), (None, "None"), (1, "1")])
def test_an_unknown_signature_version_is_refused_before_any_fetch(
    fake_sns: FakeSns, version: object, shown: str
) -> None:
    message = fake_sns.notification() | {"SignatureVersion": version}
    assert f"unsupported SNS SignatureVersion {shown}" in refusal(lambda: fake_sns.verifier().verify(message))
    assert fake_sns.fetched == []


@pytest.mark.parametrize(
    ("not_before", "not_after"),
    [(timedelta(days=-30), timedelta(days=-1)), (timedelta(days=1), timedelta(days=30))],
    ids=["expired", "not-yet-valid"],
)
def test_a_certificate_outside_its_validity_is_refused(
    sns_key: rsa.RSAPrivateKey, not_before: timedelta, not_after: timedelta
) -> None:
    now = datetime.now(UTC)
    fake_sns = FakeSns(sns_key, make_certificate(sns_key, not_before=now + not_before, not_after=now + not_after))
    assert "is not valid now" in refusal(lambda: fake_sns.verifier().verify(fake_sns.notification()))


def test_only_allowed_topics_are_accepted_when_an_allowlist_is_given(fake_sns: FakeSns) -> None:
    # GIVEN a verifier that accepts one topic
    fake_sns.verifier(topic_arns=[TOPIC_ARN]).verify(fake_sns.notification())
    # WHEN a genuine message from another topic arrives THEN it is refused without fetching anything
    fake_sns.fetched.clear()
    other = fake_sns.signed({**fake_sns.notification(), "TopicArn": f"arn:aws:sns:{REGION}:999999999999:other"})
    assert "is not an accepted one" in refusal(lambda: fake_sns.verifier(topic_arns=[TOPIC_ARN]).verify(other))
    assert fake_sns.fetched == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"Signature": "not base64!"}, "Signature is not base64"),
        ({"Signature": ""}, "has no Signature"),
        ({"Type": "Notice"}, "unknown SNS message Type 'Notice'"),
        ({"Message": None}, "has no Message string"),
        ({"MessageId": 42}, "has no MessageId string"),
    ],
)
def test_a_malformed_message_is_refused_with_what_is_wrong(
    fake_sns: FakeSns, change: dict[str, Any], reason: str
) -> None:
    message = fake_sns.notification() | change
    assert reason in refusal(lambda: fake_sns.verifier().verify(message))


def test_a_certificate_that_cannot_be_fetched_or_read_is_a_verification_failure(fake_sns: FakeSns) -> None:
    def unreachable(url: str) -> bytes:
        raise OSError("connection refused")

    message = fake_sns.notification()
    assert "could not fetch the SNS signing certificate" in refusal(lambda: SnsVerifier(unreachable).verify(message))
    assert "is not a PEM X.509 certificate" in refusal(lambda: SnsVerifier(lambda url: b"<html>").verify(message))


def test_the_default_fetcher_downloads_each_certificate_once_without_redirects(
    fake_sns: FakeSns, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN requests.get standing in for SNS's certificate host
    calls: list[tuple[str, dict[str, Any]]] = []

    class Response:
        status_code = 200
        content = fake_sns.certificate

    def get(url: str, **options: Any) -> Response:
        calls.append((url, options))
        return Response()

    monkeypatch.setattr("requests.get", get)
    sns._download_certificate.cache_clear()
    # WHEN two messages signed with the same certificate are verified by two verifiers
    SnsVerifier().verify(fake_sns.notification(message_id="m1"))
    SnsVerifier().verify(fake_sns.notification(message_id="m2"))
    sns._download_certificate.cache_clear()
    # THEN the certificate was fetched once, with a timeout and without following redirects
    assert calls == [(CERT_URL, {"timeout": 10.0, "allow_redirects": False})]


def test_confirming_a_subscription_refuses_a_url_outside_sns_without_requesting_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    requested: list[str] = []
    monkeypatch.setattr("requests.get", lambda url, **options: requested.append(url))
    assert "is not sns.<region>.amazonaws.com" in refusal(
        lambda: confirm_subscription("https://attacker.example/?Action=ConfirmSubscription")
    )
    assert requested == []
