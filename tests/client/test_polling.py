"""When the client asks again: Retry-After in both forms, backoff with jitter and a ceiling, the deadline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from async_reports_client.polling import Backoff, Deadline, parse_retry_after

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("3", 3.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        (format_datetime(NOW + timedelta(seconds=7), usegmt=True), 7.0),
        ("Mon, 23 Nov 2026 12:00:30 GMT", 30.0),
        # RFC 9110 §5.6.7: recipients accept the obsolete RFC 850 and asctime forms too
        ("Monday, 23-Nov-26 12:00:30 GMT", 30.0),
        ("Mon Nov 23 12:00:30 2026", 30.0),
        (format_datetime(NOW - timedelta(seconds=30), usegmt=True), 0.0),  # in the past: now
        ("-1", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_reads_delta_seconds_and_http_dates(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


def test_backoff_grows_exponentially_up_to_its_ceiling() -> None:
    backoff = Backoff(initial=0.5, multiplier=2, max_interval=10, jitter=0)
    assert [backoff.delay(n) for n in range(7)] == [0.5, 1, 2, 4, 8, 10, 10]


def test_jitter_spreads_delays_below_the_backoff_never_above() -> None:
    backoff = Backoff(initial=1, multiplier=2, max_interval=10, jitter=0.5)
    assert backoff.delay(2, rand=lambda: 0.0) == 4
    assert backoff.delay(2, rand=lambda: 1.0) == 2
    delays = {round(backoff.delay(2), 6) for _ in range(50)}
    assert len(delays) > 10
    assert all(2 <= d <= 4 for d in delays)


def test_a_server_hint_wins_but_never_beyond_the_ceiling() -> None:
    backoff = Backoff(initial=0.5, max_interval=10, hint_jitter=0.1)
    assert backoff.delay(0, 3, rand=lambda: 0.0) == 3
    assert backoff.delay(0, 3, rand=lambda: 1.0) == pytest.approx(3.3)
    assert backoff.delay(5, 120, rand=lambda: 0.0) == 10
    assert backoff.delay(0, 0, rand=lambda: 0.5) == 0


@pytest.mark.parametrize(
    "settings",
    [{"initial": 0}, {"max_interval": -1}, {"multiplier": 0.5}, {"jitter": 1.5}, {"hint_jitter": -0.1}],
)
def test_nonsense_backoff_settings_are_refused(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message names the setting; any is fine here
        Backoff(**settings)


def test_the_deadline_clamps_the_last_sleep_to_what_is_left() -> None:
    now = [100.0]
    deadline = Deadline(10, clock=lambda: now[0])
    assert deadline.clamp(4) == 4
    now[0] = 108.0
    assert deadline.clamp(4) == 2
    assert not deadline.expired
    now[0] = 110.0
    assert deadline.expired
    assert deadline.remaining() == 0
    forever = Deadline(None)
    assert forever.remaining() is None
    assert forever.clamp(30) == 30
    assert not forever.expired
