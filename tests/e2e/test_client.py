"""The Python client and the ``async-reports`` CLI against the local runtime, over each channel,
and the ways a wait goes wrong: a FAILED report, a timeout, a dropped WebSocket, no API at all."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from async_reports_client import (
    ApiError,
    Backoff,
    Client,
    ConnectionFailedError,
    Report,
    ReportFailedError,
    WaitTimeoutError,
)
from async_reports_client.cli import main
from async_reports_client.webhooks import WebhookReceiver
from local.runtime import LocalRuntime
from tests.e2e.conftest import KEY_A

STEPS = ["fetching data", "charting", "laying out", "uploading"]
FAST = Backoff(initial=0.2, max_interval=2.0)


@pytest.fixture
def api(runtime: LocalRuntime) -> Client:
    return Client(runtime.api_url, KEY_A)


def assert_pdf(path: Path) -> None:
    assert path.read_bytes().startswith(b"%PDF-")
    assert path.stat().st_size > 10_000


def assert_moves_forward(updates: list[Report]) -> None:
    versions = [u.version for u in updates]
    assert versions == sorted(set(versions)), versions
    order = ["QUEUED", "RUNNING", "COMPLETED", "FAILED"]
    statuses = [order.index(u.status) for u in updates]
    assert statuses == sorted(statuses)


def test_poll_follows_the_server_hints_and_downloads_the_pdf(api: Client, tmp_path: Path) -> None:
    report = api.submit("COFFEE_SALES", "2021-01-05")
    assert report.status == "QUEUED"
    assert report.etag
    assert report.retry_after is not None
    updates: list[Report] = []
    final = api.wait(report, via="poll", timeout=60, on_update=updates.append)
    assert final.completed
    assert final.pdf_uri
    assert_moves_forward(updates)
    assert updates[-1] == final
    # AND the current version answers 304: a poller that keeps asking downloads nothing new
    assert api.get(final, etag=final.etag) is None
    size = api.download(final, tmp_path / "r.pdf")
    assert size == (tmp_path / "r.pdf").stat().st_size
    assert_pdf(tmp_path / "r.pdf")


def test_websocket_shows_every_step_and_needs_no_polling(api: Client) -> None:
    report = api.submit("COFFEE_SALES", "2021-01-06")
    before = api.requests_made
    updates: list[Report] = []
    final = api.wait(report, via="websocket", timeout=60, on_update=updates.append)
    assert final.completed
    assert final.pdf_uri
    assert api.requests_made == before, "the WebSocket wait sent no status requests"
    assert_moves_forward(updates)
    steps = [u.step for u in updates if u.status == "RUNNING" and u.step]
    assert steps == [s for s in STEPS if s in steps]
    assert "uploading" in steps


def test_webhook_receives_the_signed_event_for_its_report(api: Client) -> None:
    with WebhookReceiver(os.environ["WEBHOOK_SECRET"]) as receiver:
        report = api.submit("COFFEE_SALES", "2021-01-07", callback_url=receiver.url)
        assert report.data["callbackUrl"] == receiver.url
        final = api.wait(report, via="webhook", receiver=receiver, timeout=60)
    assert final.completed
    assert final.id == report.id


def test_a_failed_report_raises_with_its_error(api: Client) -> None:
    report = api.submit("COFFEE_SALES", "2020-12-25")  # closed on Christmas Day: no sales
    with pytest.raises(ReportFailedError) as failed:
        api.wait(report, via="websocket", timeout=60)
    assert failed.value.code == "NO_DATA"
    assert "25 December 2020" in failed.value.message
    final = api.wait(report, via="poll", timeout=5, raise_on_failure=False)
    assert final.failed


def test_a_wait_gives_up_at_its_timeout_with_the_last_state(api: Client) -> None:
    report = api.submit("COFFEE_SALES", "2021-01-08")
    for via in ("poll", "websocket"):
        with pytest.raises(WaitTimeoutError) as timed_out:
            api.wait(report, via=via, timeout=0.05)  # type: ignore[arg-type]
        assert timed_out.value.last is not None
        assert timed_out.value.last["status"] in ("QUEUED", "RUNNING")
    api.wait(report, timeout=60)


def test_a_dropped_websocket_reconnects_and_still_sees_the_end(
    runtime: LocalRuntime, api: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a report held in the queue until the watcher has reconnected (so the test is not a race)
    process = runtime.functions["ProcessFunction"]
    release = threading.Event()
    real_invoke = process.invoke

    def held(event: dict[str, Any], **kwargs: Any) -> Any:
        release.wait(30)
        return real_invoke(event, **kwargs)

    monkeypatch.setattr(process, "invoke", held)
    report = api.submit("COFFEE_SALES", "2021-01-04")
    updates: list[Report] = []
    dropped: list[int] = []

    def until(condition: Any) -> None:
        deadline = time.monotonic() + 30
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.02)

    def network() -> None:
        """Cuts the watcher's connection once it is up, and lets the work go once it is back."""
        until(lambda: api.websocket_connections >= 1)
        until(lambda: runtime.drop_websocket_connections() > 0)  # once the server has it too
        dropped.append(api.websocket_connections)
        until(lambda: api.websocket_connections >= 2)
        release.set()

    threading.Thread(target=network, daemon=True).start()
    try:
        # WHEN it waits
        final = api.wait(report, via="websocket", timeout=60, on_update=updates.append, backoff=FAST)
    finally:
        release.set()
    # THEN it reconnected (a fresh token from one GET) and saw every later state, in order
    assert dropped == [1]
    assert api.websocket_connections == 2
    assert final.completed
    assert_moves_forward(updates)
    assert [u.step for u in updates if u.status == "RUNNING" and u.step][-1] == "uploading"


def test_a_long_websocket_wait_keeps_its_connection_alive_with_pings(
    runtime: LocalRuntime, api: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a report that sits in the queue for a while (API Gateway closes connections idle for 10 min)
    process = runtime.functions["ProcessFunction"]
    real_invoke = process.invoke

    def slow(event: dict[str, Any], **kwargs: Any) -> Any:
        time.sleep(1.5)
        return real_invoke(event, **kwargs)

    monkeypatch.setattr(process, "invoke", slow)
    report = api.submit("COFFEE_SALES", "2021-01-05")
    # WHEN the client waits with a ping every 0.3 s (300 s by default)
    final = api.wait(report, via="websocket", timeout=60, ping_interval=0.3)
    # THEN it pinged while waiting, on the one connection, and still got the end (pongs are not states)
    assert final.completed
    assert api.websocket_pings >= 3
    assert api.websocket_connections == 1
    with pytest.raises(ValueError, match="idle limit"):
        api.wait(report, via="websocket", ping_interval=600)


def test_no_api_is_a_connection_error_not_a_hang() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = Client(f"http://127.0.0.1:{port}", "any", retries=1, retry_backoff=FAST)
    with pytest.raises(ConnectionFailedError, match="could not reach"):
        client.submit("COFFEE_SALES", "2021-01-01")
    assert client.requests_made == 2


def test_refusals_carry_the_problem_detail(api: Client, runtime: LocalRuntime) -> None:
    with pytest.raises(ApiError) as refused:
        api.submit("COFFEE_SALES", "2021-02-30")
    assert refused.value.status == 400
    assert "2021-02-30" in refused.value.detail
    with pytest.raises(ApiError) as forbidden:
        Client(runtime.api_url, "not-a-key").submit("COFFEE_SALES", "2021-01-01")
    assert forbidden.value.status == 403
    assert "x-api-key" in forbidden.value.detail


# -- the CLI ---------------------------------------------------------------------------------------


def cli(runtime: LocalRuntime, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--url", runtime.api_url, "--api-key", KEY_A, "--retries", "1", *args], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("via", ["poll", "websocket", "webhook"])
def test_cli_submit_wait_output_by_each_channel(runtime: LocalRuntime, tmp_path: Path, via: str) -> None:
    target = tmp_path / f"{via}.pdf"
    code, out, err = cli(
        runtime,
        "submit",
        "--type",
        "COFFEE_SALES",
        "--date",
        "2021-01-05",
        "--wait",
        "--via",
        via,
        "--output",
        str(target),
        "--webhook-secret",
        os.environ["WEBHOOK_SECRET"],
    )
    assert code == 0, err
    assert out.split()[1] == "COMPLETED"
    assert "100%" in err
    assert f"waiting by {via}" in err
    assert f"saved {target}" in err
    assert_pdf(target)


def test_cli_submit_prints_the_id_for_scripts_then_status_wait_and_download(
    runtime: LocalRuntime, tmp_path: Path
) -> None:
    code, out, _ = cli(runtime, "submit", "--type", "COFFEE_SALES", "--date", "2021-01-06")
    assert code == 0
    report_id = out.strip()
    assert len(report_id) == 26
    code, out, _ = cli(runtime, "wait", report_id, "--via", "websocket", "--quiet")
    assert (code, out.split()[:2]) == (0, [report_id, "COMPLETED"])
    code, out, _ = cli(runtime, "status", report_id, "--json")
    assert code == 0
    assert '"status": "COMPLETED"' in out
    code, _, err = cli(runtime, "download", report_id, "-o", str(tmp_path / "r.pdf"))
    assert code == 0, err
    assert_pdf(tmp_path / "r.pdf")


def test_cli_wait_by_webhook_listens_where_the_report_calls_back(runtime: LocalRuntime) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    callback = f"http://127.0.0.1:{port}/hooks/reports"
    code, out, err = cli(
        runtime, "submit", "--type", "COFFEE_SALES", "--date", "2021-01-07", "--callback-url", callback
    )
    assert code == 0, err
    code, out, err = cli(
        runtime, "wait", out.strip(), "--via", "webhook", "--webhook-secret", os.environ["WEBHOOK_SECRET"]
    )
    assert code == 0, err
    assert "COMPLETED" in out


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["submit", "--type", "COFFEE_SALES", "--date", "2021-02-30"], 3, "not a calendar date"),
        (["submit", "--type", "NO_SUCH_TYPE", "--date", "2021-01-01"], 3, "NO_SUCH_TYPE"),
        (["status", "01M84C6K8PXH5HGAWP3K1KCAGT"], 3, "404"),
        (["submit", "--type", "COFFEE_SALES", "--date", "2020-12-25", "--wait"], 1, "FAILED: NO_DATA"),
        (["submit", "--type", "COFFEE_SALES", "--date", "2021-01-08", "--wait", "--timeout", "0"], 4, "not final"),
        (["wait", "../etc", "--via", "poll"], 2, "not a report id"),
    ],
)
def test_cli_failures_say_why_with_exit_codes_scripts_can_use(
    runtime: LocalRuntime, args: list[str], code: int, says: str
) -> None:
    got, _, err = cli(runtime, *args)
    assert got == code, err
    assert says in err


def test_cli_without_an_api_says_so_with_exit_code_5() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    err = io.StringIO()
    code = main(["--url", f"http://127.0.0.1:{port}", "--retries", "0", "status", "X" * 26], stderr=err)
    assert code == 5
    assert "could not reach" in err.getvalue()


def test_the_installed_command_runs(runtime: LocalRuntime) -> None:
    command = Path(sys.executable).with_name("async-reports")
    assert command.exists(), "make install puts async-reports in the project's environment"
    env = {**os.environ, "ASYNC_REPORTS_URL": runtime.api_url, "ASYNC_REPORTS_API_KEY": KEY_A}
    result = subprocess.run(
        [str(command), "submit", "--type", "COFFEE_SALES", "--date", "2021-01-04", "--wait", "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "COMPLETED" in result.stdout
