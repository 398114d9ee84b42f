"""``make demo``: the whole flow over real HTTP, on this machine, no Docker, no AWS account.

Starts the local runtime (template.yaml's resources in an embedded moto, the REST API, the queue
feeding the process function), seeds the sample sales, submits a COFFEE_SALES report for
2021-01-01, polls the way a considerate client does (the server's ``Retry-After``, else exponential
backoff with jitter), follows ``/pdf`` to the presigned URL, saves the PDF under ``out/`` and stops.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--type", default="COFFEE_SALES", help="report type (%(default)s)")
    parser.add_argument("--date", default="2021-01-01", help="report date (%(default)s)")
    parser.add_argument("--out", type=Path, default=ROOT / "out", help="where the PDF goes (%(default)s)")
    parser.add_argument("--timeout", type=float, default=120.0, help="give up after this many seconds")
    parser.add_argument("--verbose", action="store_true", help="log every request and invocation")
    return parser.parse_args(argv)


def wait_for_report(session: Any, url: str, *, timeout: float) -> dict[str, Any]:
    """Poll ``url`` until the report is final, honouring ``Retry-After`` and sending ``If-None-Match``."""
    deadline = time.monotonic() + timeout
    backoff, polls, etag, report = 0.5, 0, None, None
    while True:
        response = session.get(url, headers={"If-None-Match": etag} if etag else {}, timeout=10)
        polls += 1
        if response.status_code == 200:
            report, etag = response.json(), response.headers.get("ETag")
        elif response.status_code != 304 or report is None:
            raise SystemExit(f"GET {url} answered {response.status_code}: {response.text}")
        progress = report.get("progress") or {}
        step = f" - {progress['step']} ({progress['percent']}%)" if progress else ""
        print(f"  poll {polls}: {response.status_code} {report['status']}{step}")
        if report["status"] in ("COMPLETED", "FAILED"):
            return dict(report)
        hint = response.headers.get("Retry-After")
        delay = float(hint) if hint and hint.isdigit() else backoff * random.uniform(0.5, 1.0)
        backoff = min(backoff * 2, 8.0)
        if time.monotonic() + delay > deadline:
            raise SystemExit(f"report not finished after {timeout:.0f} s")
        time.sleep(delay)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(name)-12s %(message)s"
    )
    for noisy in ("werkzeug", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.ERROR)

    import requests

    from local.runtime import LocalRuntime, LocalRuntimeError, RuntimeConfig
    from reports.sales import SAMPLE_DATA_END, SAMPLE_DATA_START

    started = time.perf_counter()
    print(f"Starting the local runtime and seeding sales {SAMPLE_DATA_START} to {SAMPLE_DATA_END} ...")
    config = RuntimeConfig.from_environment(api_port=0, seed=(SAMPLE_DATA_START, SAMPLE_DATA_END))
    try:
        runtime = LocalRuntime(config)
        runtime.start()
    except LocalRuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        api_key = next(iter(config.api_keys))
        session = requests.Session()
        session.headers["x-api-key"] = api_key
        print(f"  ready in {time.perf_counter() - started:.1f} s: API {runtime.api_url}, AWS {runtime.aws_endpoint}")
        body = {"reportType": args.type, "reportDate": args.date}
        print(f"POST {runtime.api_url}/api/v1/report {body}")
        created = session.post(f"{runtime.api_url}/api/v1/report", json=body, timeout=10)
        if created.status_code != 201:
            print(f"  refused with {created.status_code}: {created.json().get('detail')}", file=sys.stderr)
            return 1
        location = created.headers["Location"]
        print(f"  201 Created, Location: {location}, Retry-After: {created.headers.get('Retry-After')}")
        report = wait_for_report(session, runtime.api_url + location, timeout=args.timeout)
        if report["status"] == "FAILED":
            print(f"  report FAILED: {report['error']['code']}: {report['error']['message']}", file=sys.stderr)
            return 1
        redirect = session.get(f"{runtime.api_url}{location}/pdf", allow_redirects=False, timeout=10)
        print(f"GET {location}/pdf -> {redirect.status_code} See Other (presigned S3 URL)")
        download = requests.get(redirect.headers["Location"], timeout=30)
        download.raise_for_status()
    finally:
        runtime.stop()

    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"{args.type.lower().replace('_', '-')}-{args.date}.pdf"
    target.write_bytes(download.content)
    print(f"Saved {target} ({len(download.content) / 1024:.0f} KiB) in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
