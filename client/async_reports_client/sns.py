"""Amazon SNS HTTP/HTTPS subscription messages, verified as AWS describes in "Verifying the signatures of
Amazon SNS messages": rebuild the string to sign, fetch the signing certificate from SNS itself and check the
RSA signature with it.

The certificate is trusted because of where it comes from: an ``https://sns.<region>.amazonaws.com`` URL,
fetched with TLS verification and without following redirects. That URL is checked before anything is
fetched, so a forged message cannot make us request an address of its choosing.
"""

from __future__ import annotations

import base64
import binascii
import functools
import logging
import re
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from async_reports_client.errors import WebhookVerificationError

logger = logging.getLogger(__name__)

NOTIFICATION = "Notification"
SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"
MESSAGE_TYPES = (NOTIFICATION, SUBSCRIPTION_CONFIRMATION, UNSUBSCRIBE_CONFIRMATION)
MESSAGE_TYPE_HEADER = "x-amz-sns-message-type"

# SignatureVersion -> the hash of SHA1withRSA / SHA256withRSA (both RSASSA-PKCS1-v1_5).
SIGNATURE_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}

# The name-value pairs of the string to sign, in the fixed (byte-sorted) order AWS documents; Subject only
# when the message has one.
_NOTIFICATION_FIELDS: tuple[str, ...] = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION_FIELDS: tuple[str, ...] = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
_OPTIONAL_FIELDS = frozenset({"Subject"})

# sns.us-east-1.amazonaws.com, sns.us-gov-west-1.amazonaws.com, sns.cn-north-1.amazonaws.com.cn, ...
_SNS_HOST = re.compile(r"sns\.[a-z]{2}(?:-[a-z]+)+-\d{1,2}\.amazonaws\.com(?:\.cn)?")
# Characters no honest SNS URL has, and that URL parsers disagree about (backslash, whitespace, controls).
_SUSPICIOUS = re.compile(r"[\x00-\x20\x7f\\]")

FETCH_TIMEOUT = 10.0
MAX_CERTIFICATE_BYTES = 64 * 1024


def check_sns_url(url: str) -> None:
    """Refuse any URL that is not plainly ``https://sns.<region>.amazonaws.com[.cn]/...``.

    Guards ``SigningCertURL`` (where the key to trust comes from) and ``SubscribeURL`` (what we GET to confirm
    a subscription): no other scheme, host, port or userinfo, and nothing a different URL parser might read
    as another host.
    """
    if not isinstance(url, str) or not url:
        raise WebhookVerificationError("the SNS URL is missing or not a string")
    shown = _shown(url)
    if _SUSPICIOUS.search(url):
        raise WebhookVerificationError(f"refusing SNS URL {shown}: it contains whitespace, control or backslash")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise WebhookVerificationError(f"refusing SNS URL {shown}: {error}") from error
    if parts.scheme != "https":
        raise WebhookVerificationError(f"refusing SNS URL {shown}: only https:// is accepted")
    if "@" in parts.netloc:
        raise WebhookVerificationError(f"refusing SNS URL {shown}: it has a user name or password")
    if port not in (None, 443):
        raise WebhookVerificationError(f"refusing SNS URL {shown}: port {port} is not SNS's")
    host = parts.hostname or ""
    if not _SNS_HOST.fullmatch(host):
        raise WebhookVerificationError(
            f"refusing SNS URL {shown}: host {host!r} is not sns.<region>.amazonaws.com[.cn]"
        )


def string_to_sign(message: dict[str, Any]) -> bytes:
    """The bytes SNS signed: ``name\\nvalue\\n`` for each field of the message's type, in AWS's fixed order."""
    message_type = message.get("Type")
    if message_type == NOTIFICATION:
        fields = _NOTIFICATION_FIELDS
    elif message_type in (SUBSCRIPTION_CONFIRMATION, UNSUBSCRIBE_CONFIRMATION):
        fields = _CONFIRMATION_FIELDS
    else:
        raise WebhookVerificationError(
            f"unknown SNS message Type {_shown(message_type)}; expected one of {', '.join(MESSAGE_TYPES)}"
        )
    lines: list[str] = []
    for name in fields:
        value = message.get(name)
        if value is None and name in _OPTIONAL_FIELDS:
            continue
        if not isinstance(value, str):
            raise WebhookVerificationError(f"SNS {message_type} message has no {name} string")
        lines += (name, value)
    return "".join(f"{line}\n" for line in lines).encode("utf-8")


def confirm_subscription(subscribe_url: str, *, timeout: float = FETCH_TIMEOUT) -> None:
    """Confirm an HTTP/HTTPS subscription the way SNS asks: GET its ``SubscribeURL`` (checked first)."""
    _get_from_sns(subscribe_url, "the subscription confirmation at", timeout)
    logger.info("SNS subscription confirmed", extra={"subscribe_url": subscribe_url.split("&Token=", maxsplit=1)[0]})


def _get_from_sns(url: str, what: str, timeout: float) -> Any:
    """GET ``url`` after ``check_sns_url``, with no redirects; anything but 200 is refused."""
    import requests

    check_sns_url(url)
    try:
        response = requests.get(url, timeout=timeout, allow_redirects=False)
    except requests.RequestException as error:
        raise WebhookVerificationError(f"could not reach {what} {_shown(url)}: {error}") from error
    if response.status_code != 200:
        raise WebhookVerificationError(f"SNS answered HTTP {response.status_code} to {what} {_shown(url)}")
    return response


class SnsVerifier:
    """Checks that an SNS message really comes from SNS (and, optionally, from one of ``topic_arns``).

    ``fetch_certificate`` takes a URL that already passed ``check_sns_url`` and returns the PEM there; the
    default downloads it with ``requests`` and keeps it for the life of the process. Tests inject their own.
    """

    def __init__(
        self,
        fetch_certificate: Callable[[str], bytes] | None = None,
        *,
        topic_arns: Collection[str] | None = None,
    ) -> None:
        self._fetch = fetch_certificate or _download_certificate
        self._topic_arns = None if topic_arns is None else frozenset(topic_arns)

    def verify(self, message: dict[str, Any]) -> None:
        """Return if ``message`` is authentic; raise ``WebhookVerificationError`` saying why not otherwise."""
        if not isinstance(message, dict):
            raise WebhookVerificationError("an SNS message is a JSON object")
        signed = string_to_sign(message)  # also refuses an unknown Type or a missing field
        version = message.get("SignatureVersion")
        algorithm = SIGNATURE_HASHES.get(version) if isinstance(version, str) else None
        if algorithm is None:
            raise WebhookVerificationError(
                f"unsupported SNS SignatureVersion {_shown(version)}; expected one of {', '.join(SIGNATURE_HASHES)}"
            )
        topic_arn = message["TopicArn"]
        if self._topic_arns is not None and topic_arn not in self._topic_arns:
            raise WebhookVerificationError(f"SNS message from topic {_shown(topic_arn)}, which is not an accepted one")
        certificate_url = message.get("SigningCertURL")
        if not isinstance(certificate_url, str):
            raise WebhookVerificationError("the SNS message has no SigningCertURL")
        check_sns_url(certificate_url)  # before anything is fetched
        signature = _decode_signature(message.get("Signature"))
        public_key = _signing_key(self._load_certificate(certificate_url))
        try:
            public_key.verify(signature, signed, padding.PKCS1v15(), algorithm())
        except InvalidSignature:
            raise WebhookVerificationError(
                f"the SNS {message['Type']} message {_shown(message['MessageId'])} does not match its Signature"
            ) from None

    def _load_certificate(self, url: str) -> x509.Certificate:
        try:
            pem = self._fetch(url)
        except WebhookVerificationError:
            raise
        except Exception as error:  # an injected fetcher may raise anything; the message stays unverified
            raise WebhookVerificationError(
                f"could not fetch the SNS signing certificate {_shown(url)}: {error}"
            ) from error
        try:
            certificate = x509.load_pem_x509_certificate(pem)
        except (ValueError, TypeError) as error:
            raise WebhookVerificationError(f"{_shown(url)} is not a PEM X.509 certificate") from error
        now = datetime.now(UTC)
        start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
        if not start <= now <= end:
            raise WebhookVerificationError(
                f"the SNS signing certificate {_shown(url)} is not valid now "
                f"(valid {start:%Y-%m-%dT%H:%M:%SZ} to {end:%Y-%m-%dT%H:%M:%SZ})"
            )
        return certificate


def _signing_key(certificate: x509.Certificate) -> rsa.RSAPublicKey:
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise WebhookVerificationError("the SNS signing certificate does not hold an RSA key")
    return key


def _decode_signature(value: object) -> bytes:
    if not isinstance(value, str) or not value:
        raise WebhookVerificationError("the SNS message has no Signature")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as error:
        raise WebhookVerificationError("the SNS message's Signature is not base64") from error


@functools.lru_cache(maxsize=32)
def _download_certificate(url: str) -> bytes:
    """One GET per URL per process: ``lru_cache`` keeps successes only, so a failed fetch is tried again."""
    content: bytes = _get_from_sns(url, "the signing certificate", FETCH_TIMEOUT).content
    if len(content) > MAX_CERTIFICATE_BYTES:
        raise WebhookVerificationError(f"the SNS signing certificate {_shown(url)} is implausibly large")
    return content


def _shown(value: object, limit: int = 200) -> str:
    """A value for an error message: repr'd (so control characters show) and cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
