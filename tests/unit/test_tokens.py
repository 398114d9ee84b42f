"""Watch tokens: what a client may send as a token is anything at all, and every wrong one is a
``WatchTokenError`` (a 401), never an exception the handler does not expect (a 500)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reports.tokens import WatchTokenError, issue_watch_token, verify_watch_token

KEY = "unit-test-token-key"
NOW = datetime(2021, 1, 1, 12, tzinfo=UTC)


def test_a_token_grants_its_report_and_tenant_until_it_expires() -> None:
    token = issue_watch_token(KEY, report_id="r1", tenant="tenant-a", now=NOW)
    grant = verify_watch_token(KEY, token, now=NOW + timedelta(minutes=14))
    assert (grant.report_id, grant.tenant) == ("r1", "tenant-a")
    with pytest.raises(WatchTokenError, match="expired"):
        verify_watch_token(KEY, token, now=NOW + timedelta(minutes=16))


@pytest.mark.parametrize(
    "token",
    [
        None,
        "",
        "no-dot",
        ".signature-only",
        "payload-only.",
        "abc.é",  # hmac.compare_digest raises TypeError on a non-ASCII str
        "é.abc",
        "abc.\ud800",  # a lone surrogate, as a JSON body can carry
        "\ud800.abc",
        "eyJyIjoiMDEifQ.c2ln",
        12345,
        ["a", "b"],
    ],
)
def test_a_missing_malformed_or_non_ascii_token_is_refused_cleanly(token: object) -> None:
    with pytest.raises(WatchTokenError):
        verify_watch_token(KEY, token, now=NOW)


def test_a_token_signed_with_another_key_or_tampered_is_refused() -> None:
    token = issue_watch_token(KEY, report_id="r1", tenant="tenant-a", now=NOW)
    payload, _, signature = token.partition(".")
    other = issue_watch_token(KEY, report_id="r2", tenant="tenant-a", now=NOW)
    for forged in (
        issue_watch_token("another-key", report_id="r1", tenant="tenant-a", now=NOW),
        f"{other.partition('.')[0]}.{signature}",  # another report's payload under this signature
        f"{payload}.{signature[:-1]}é",
    ):
        with pytest.raises(WatchTokenError, match="not valid"):
            verify_watch_token(KEY, forged, now=NOW)
