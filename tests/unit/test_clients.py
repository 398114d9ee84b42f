"""The AWS clients' time limits fit the functions that use them."""

from __future__ import annotations

from reports import clients
from reports.submission import ENQUEUE_SECONDS


def test_the_time_submit_keeps_for_enqueueing_covers_a_send_and_its_undo_at_the_clients_limits() -> None:
    # GIVEN the limits of the SQS and DynamoDB clients (one attempt each: connect, then read)
    config = clients._config(2)
    one_attempt = config.connect_timeout + config.read_timeout
    # THEN a stalled send, then a stalled undo, end before the time submit keeps for them runs out
    assert 2 * one_attempt <= ENQUEUE_SECONDS
    # AND every retry of one call together stays well inside the API functions' 10 s timeout
    assert config.retries["max_attempts"] * one_attempt < 10
