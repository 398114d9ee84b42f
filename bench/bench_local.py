"""The local runtime's own cost: end-to-end latency from POST to COMPLETED as a poller sees it,
minus the render time measured in the same run, and how many submissions per second it accepts in
a burst. Prints ``name: value unit`` lines."""

from __future__ import annotations

import logging
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import requests  # noqa: E402
from _figures import figure  # noqa: E402
from _local_runtime import KEY, bench_config  # noqa: E402

from local.runtime import LocalRuntime  # noqa: E402
from reports.catalog import RenderInput, report_definitions  # noqa: E402

REPORTS = 10
BURST = 200
BODY = {"reportType": "COFFEE_SALES", "reportDate": "2021-01-05"}


def latency(session: requests.Session, base: str) -> float:
    """Seconds from sending POST to the first poll that sees COMPLETED, polling every 20 ms."""
    began = time.perf_counter()
    location = session.post(f"{base}/api/v1/report", json=BODY, timeout=30).headers["Location"]
    while session.get(f"{base}{location}", timeout=30).json()["status"] != "COMPLETED":
        time.sleep(0.02)
    return time.perf_counter() - began


def render_seconds(runtime: LocalRuntime) -> float:
    """The same report's render alone, warm, from the same records the worker loads."""
    from reports.sales_archive import SalesArchive

    definition = report_definitions()["COFFEE_SALES"]
    start, end = definition.period(date.fromisoformat(BODY["reportDate"]))
    records = SalesArchive(runtime.aws.client("s3"), runtime.stack.ref("SalesBucket")).load(start, end)
    data = RenderInput(
        "01BENCH", start=start, end=end, report_date=end, records=records, generated_at=datetime.now(UTC)
    )
    definition.render(data)
    times = []
    for _ in range(REPORTS):
        began = time.perf_counter()
        definition.render(data)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> int:
    logging.basicConfig(level=logging.ERROR)
    config = bench_config()
    with LocalRuntime(config) as runtime:
        session = requests.Session()
        session.headers["x-api-key"] = KEY
        base = runtime.api_url
        latency(session, base)  # warm: the first render imports matplotlib
        latencies = [latency(session, base) for _ in range(REPORTS)]
        render = render_seconds(runtime)

        def submit(_: int) -> int:
            return session.post(f"{base}/api/v1/report", json=BODY, timeout=60).status_code

        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(submit, range(BURST)))
        burst_seconds = time.perf_counter() - began

    e2e = statistics.median(latencies)
    figure("local_e2e_latency_s", e2e, "s", note=f"median of {REPORTS}, POST to COMPLETED seen by a 20 ms poller")
    figure("local_render_s", render, "s", note="the same report's warm render alone")
    figure("local_overhead_s", e2e - render, "s", note="runtime, queue, storage and polling")
    figure(
        "local_burst_submissions_per_s",
        statuses.count(201) / burst_seconds,
        "/s",
        digits=1,
        note=f"{BURST} POSTs from 8 threads",
    )
    return 0 if statuses.count(201) == BURST else 1


if __name__ == "__main__":
    raise SystemExit(main())
