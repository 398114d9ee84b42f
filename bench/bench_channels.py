"""Three ways to learn that one report of known duration is done, side by side in one run: a naive
poller asking every second, the Python client's backoff following the server's ``Retry-After``, and
the client over the WebSocket API. For each: status requests made, and the delay from the server's
``completedAt`` to the moment it knew. Prints ``name: value unit`` lines (``-v``: a trace on stderr).

The work is a stand-in: every ProcessFunction invocation first sleeps ``WORK_SECONDS`` (as a long
report would take), then renders the day's COFFEE_SALES report as usual."""

from __future__ import annotations

import logging
import statistics
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import requests  # noqa: E402
from _figures import figure  # noqa: E402
from _local_runtime import KEY, bench_config  # noqa: E402

from async_reports_client import Client  # noqa: E402
from async_reports_client.model import Report  # noqa: E402
from local.runtime import LocalRuntime  # noqa: E402

WORK_SECONDS = 8.0
WARM_UPS = 2
REPORTS = 3
TIMEOUT = 60.0
REPORT_TYPE, REPORT_DATE = "COFFEE_SALES", "2021-01-05"
NO_DATA_DATE = "2021-03-01"  # after the seeded days
FINAL = frozenset({"COMPLETED", "FAILED"})
VERBOSE = "-v" in sys.argv[1:]


def trace(message: str) -> None:
    if VERBOSE:
        print(message, file=sys.stderr, flush=True)


def iso_seconds(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class Channel:
    """One watcher: waits for the report from the shared start, then records what it cost."""

    def __init__(self, name: str, watch: Callable[[Report], tuple[int, dict[str, Any]]]) -> None:
        self.name = name
        self._watch = watch
        self.requests = 0
        self.detected = 0.0
        self.final: dict[str, Any] = {}
        self.error: BaseException | None = None

    def run(self, report: Report, start: threading.Barrier) -> None:
        start.wait()
        try:
            self.requests, self.final = self._watch(report)
            self.detected = time.time()
        except BaseException as error:  # reported by the main thread
            self.error = error


def fixed_poller(session: requests.Session, url: str) -> Callable[[Report], tuple[int, dict[str, Any]]]:
    """A plain ``GET`` once a second (on a fixed schedule) until the status is final."""

    def watch(_: Report) -> tuple[int, dict[str, Any]]:
        began, gets = time.monotonic(), 0
        while True:
            gets += 1
            body = session.get(url, timeout=10).json()
            if body["status"] in FINAL:
                return gets, body
            if time.monotonic() - began > TIMEOUT:
                raise TimeoutError("the fixed poller gave up")
            time.sleep(max(0.0, began + gets * 1.0 - time.monotonic()))

    return watch


def client_waiter(client: Client, via: Literal["poll", "websocket"]) -> Callable[[Report], tuple[int, dict[str, Any]]]:
    def watch(report: Report) -> tuple[int, dict[str, Any]]:
        before = client.requests_made
        final = client.wait(report, via=via, timeout=TIMEOUT)
        return client.requests_made - before, final.data

    return watch


def hint_recorder(client: Client, hints: list[tuple[float, int, str | None]]) -> None:
    """Keep (time, status code, Retry-After) of every response the client sees, for the trace."""
    client.session.hooks["response"].append(
        lambda response, *_, **__: hints.append(
            (time.time(), response.status_code, response.headers.get("Retry-After"))
        )
    )


def prewarm(runtime: LocalRuntime, client: Client) -> None:
    """Pay every cold start before any report completes, so none inflates the server's mean
    duration (two warm-ups make that mean; one cold start in it would weigh half). A report for a
    day with no sales goes through the API and ProcessFunction and ends FAILED (NO_DATA), which
    records no duration; a render in this process imports what the renderer needs."""
    from reports.catalog import RenderInput, report_definitions
    from reports.sales_archive import SalesArchive

    empty = client.wait(client.submit(REPORT_TYPE, NO_DATA_DATE), timeout=TIMEOUT, raise_on_failure=False)
    if empty.status != "FAILED":
        raise RuntimeError(f"the warm-up for a day without sales ended {empty.status}, not FAILED")
    definition = report_definitions()[REPORT_TYPE]
    start, end = definition.period(date.fromisoformat(REPORT_DATE))
    records = SalesArchive(runtime.aws.client("s3"), runtime.aws.stack.ref("SalesBucket")).load(start, end)
    definition.render(
        RenderInput("01BENCH", start=start, end=end, report_date=end, records=records, generated_at=datetime.now(UTC))
    )


def slow_down(runtime: LocalRuntime) -> None:
    """Every ProcessFunction invocation sleeps WORK_SECONDS before the real one (the event
    sources call ``function.invoke`` at each event, so replacing it on the instance is enough)."""
    process = runtime.functions["ProcessFunction"]
    real_invoke = process.invoke

    def invoke(event: dict[str, Any], *, describe: str = "") -> Any:
        time.sleep(WORK_SECONDS)
        return real_invoke(event, describe=describe)

    process.invoke = invoke


def main() -> int:
    logging.basicConfig(level=logging.ERROR)
    config = bench_config()
    rows: dict[str, list[tuple[int, float]]] = {"fixed": [], "backoff": [], "websocket": []}
    durations, first_hints = [], []
    with LocalRuntime(config) as runtime:
        submitter = Client(runtime.api_url, KEY)
        prewarm(runtime, submitter)
        slow_down(runtime)
        for _ in range(WARM_UPS):
            done = submitter.wait(submitter.submit(REPORT_TYPE, REPORT_DATE), via="poll", timeout=TIMEOUT)
            trace(f"warm-up took {iso_seconds(done.data['completedAt']) - iso_seconds(done.data['createdAt']):.3f} s")

        # The server's estimate (the mean submit-to-completion time of the type) is cached per
        # process for 60 s, and the first submission above cached the catalog's default. A deployed
        # API re-reads the mean within 60 s; rather than sit out the TTL, drop just that cache, so
        # the figures show a server whose estimate has caught up with the work (as it is in a
        # steady state). The warm-ups' durations include no cold start (see prewarm).
        from reports import dependencies

        dependencies.duration_estimates.cache_clear()
        estimate = dependencies.duration_estimates().expected_seconds(REPORT_TYPE)
        trace(f"server estimate after warm-up: {estimate:.3f} s")

        for index in range(REPORTS):
            report = submitter.submit(REPORT_TYPE, REPORT_DATE)
            session = requests.Session()
            session.headers["x-api-key"] = KEY
            backoff, websocket = Client(runtime.api_url, KEY), Client(runtime.api_url, KEY)
            hints: list[tuple[float, int, str | None]] = []
            hint_recorder(backoff, hints)
            channels = [
                Channel("fixed", fixed_poller(session, submitter.report_url(report))),
                Channel("backoff", client_waiter(backoff, "poll")),
                Channel("websocket", client_waiter(websocket, "websocket")),
            ]
            start = threading.Barrier(len(channels))
            threads = [threading.Thread(target=c.run, args=(report, start)) for c in channels]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

            created = iso_seconds(report.data["createdAt"])
            completed = None
            for channel in channels:
                if channel.error is not None:
                    raise RuntimeError(f"{channel.name} failed") from channel.error
                if channel.final["status"] != "COMPLETED":
                    raise RuntimeError(f"the report ended {channel.final['status']}")
                completed = iso_seconds(channel.final["completedAt"])
                rows[channel.name].append((channel.requests, channel.detected - completed))
            assert completed is not None
            durations.append(completed - created)
            first_hints.append(report.retry_after)
            trace(
                f"report {index + 1}: took {completed - created:.3f} s, 201 Retry-After {report.retry_after}, "
                f"websocket connections {websocket.websocket_connections}"
            )
            for channel in channels:
                trace(f"  {channel.name}: {channel.requests} requests, {channel.detected - completed:+.3f} s")
            for moment, status, hint in hints:
                trace(f"  backoff {moment - created:6.3f} s after createdAt: {status}, Retry-After {hint}")

    def median(name: str, column: int) -> float:
        return statistics.median(row[column] for row in rows[name])

    note = f"median of {REPORTS}"
    figure(
        "channels_report_duration_s",
        statistics.median(durations),
        "s",
        note=f"{note}; createdAt to completedAt, {WORK_SECONDS:g} s of it a sleep standing in for a long report",
    )
    figure(
        "channels_retry_after_first_s",
        statistics.median(h or 0 for h in first_hints),
        "s",
        digits=0,
        note=f"{note}; the 201's",
    )
    figure("channels_fixed_poll_requests", median("fixed", 0), "requests", digits=0, note=f"{note}; GET every 1.0 s")
    figure("channels_fixed_poll_delay_s", median("fixed", 1), "s", note=f"{note}; completedAt to the final GET")
    figure(
        "channels_backoff_requests", median("backoff", 0), "requests", digits=0, note=f"{note}; client wait via poll"
    )
    figure("channels_backoff_delay_s", median("backoff", 1), "s", note=f"{note}; completedAt to wait returning")
    figure(
        "channels_websocket_requests",
        median("websocket", 0),
        "requests",
        digits=0,
        note=f"{note}; client wait via websocket",
    )
    figure("channels_websocket_delay_s", median("websocket", 1), "s", note=f"{note}; completedAt to wait returning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
