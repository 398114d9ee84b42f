"""``make demo``: the whole flow on this machine, no Docker, no AWS account.

An embedded moto server holds template.yaml's tables, queues and buckets; the real handlers run
in-process with Lambda-shaped events: submit a COFFEE_SALES report for 2021-01-01, let the queue
feed the process function, poll the way a good client does (the server's ``Retry-After``, else
exponential backoff), follow ``/pdf`` to the presigned URL and save the PDF under ``out/``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEMO_API_KEY_ID = "local"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--type", default="COFFEE_SALES", help="report type (%(default)s)")
    parser.add_argument("--date", default="2021-01-01", help="report date (%(default)s)")
    parser.add_argument("--out", type=Path, default=ROOT / "out", help="where the PDF goes (%(default)s)")
    parser.add_argument("--timeout", type=float, default=120.0, help="give up after this many seconds")
    return parser.parse_args(argv)


class Api:
    """Calls the API functions in-process with the events API Gateway would send them."""

    def __init__(self) -> None:
        from handlers import status, submit

        self._submit, self._status = submit.handler, status.handler

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, str], Any]:
        from local.events import LambdaContext, api_gateway_event

        parts = path.strip("/").split("/")
        report_id = parts[3] if len(parts) > 3 else None
        resource = "/api/v1/report" + ("/{id}" if report_id else "") + ("/pdf" if path.endswith("/pdf") else "")
        event = api_gateway_event(
            method=method,
            path=path,
            resource=resource,
            path_parameters={"id": report_id} if report_id else None,
            headers={"Content-Type": "application/json"} if body is not None else {},
            body=json.dumps(body).encode() if body is not None else None,
            api_key_id=DEMO_API_KEY_ID,
            stage="",
        )
        handler, name = (self._submit, "SubmitFunction") if method == "POST" else (self._status, "StatusFunction")
        response = handler(event, LambdaContext(function_name=name, timeout_seconds=10))
        headers = dict(response.get("headers") or {})
        headers.update({k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()})
        text = response.get("body") or ""
        return response["statusCode"], headers, json.loads(text) if text else None


def run_workers(aws: Any, stop: threading.Event) -> threading.Thread:
    """The Jobs queue -> ProcessFunction and DLQ -> DeadLetterFunction mappings, long-polling."""
    from handlers import dead_letter, process
    from local.event_sources import SqsEventSource

    sources = []
    for queue, function, handler in (
        ("JobsQueue", "ProcessFunction", process.handler),
        ("JobsDeadLetterQueue", "DeadLetterFunction", dead_letter.handler),
    ):
        spec = aws.template.functions()[function]
        sources.append(
            SqsEventSource(
                aws.client("sqs"),
                queue_url=aws.stack.ref(queue),
                queue_arn=aws.stack.get_att(queue, "Arn"),
                handler=handler,
                function_name=function,
                timeout_seconds=spec.timeout,
                batch_size=5,
            )
        )

    def loop() -> None:
        while not stop.is_set():
            for source in sources:
                source.poll_once(wait_seconds=1 if source is sources[0] else 0)

    thread = threading.Thread(target=loop, name="event-sources", daemon=True)
    thread.start()
    return thread


def wait_for_report(api: Api, location: str, *, timeout: float) -> dict[str, Any]:
    """Poll as a considerate client: honour Retry-After, else back off exponentially (capped)."""
    deadline = time.monotonic() + timeout
    backoff, polls = 0.5, 0
    while True:
        status, headers, report = api.call("GET", location)
        polls += 1
        if status != 200:
            raise SystemExit(f"GET {location} answered {status}: {report}")
        progress = report.get("progress") or {}
        step = f" - {progress['step']} ({progress['percent']}%)" if progress else ""
        print(f"  poll {polls}: {report['status']}{step}")
        if report["status"] in ("COMPLETED", "FAILED"):
            return dict(report)
        hint = headers.get("Retry-After")
        delay = float(hint) if hint else backoff
        backoff = min(backoff * 2, 8.0)
        if time.monotonic() + delay > deadline:
            raise SystemExit(f"report not finished after {timeout:.0f} s")
        time.sleep(delay)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    os.environ.setdefault("MPLCONFIGDIR", str(ROOT / "out" / ".matplotlib"))
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"

    import logging

    import requests

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the moto server's access log

    from local.embedded import embedded_aws
    from reports.sales import SAMPLE_DATA_END, SAMPLE_DATA_START
    from reports.sales_archive import SalesArchive

    started = time.perf_counter()
    print("Starting an embedded moto server with template.yaml's data resources ...")
    with embedded_aws(parameters={"LogLevel": "WARNING"}) as aws:
        print(f"  AWS endpoint {aws.endpoint_url}; stack resources: {', '.join(sorted(aws.stack.physical_ids))}")
        seed_began = time.perf_counter()
        days = SalesArchive(aws.client("s3"), aws.stack.ref("SalesBucket")).seed(SAMPLE_DATA_START, SAMPLE_DATA_END)
        print(
            f"  seeded {days} days of sample sales ({SAMPLE_DATA_START} to {SAMPLE_DATA_END})"
            f" in {time.perf_counter() - seed_began:.1f} s"
        )

        stop = threading.Event()
        workers = run_workers(aws, stop)
        try:
            api = Api()
            body = {"reportType": args.type, "reportDate": date.fromisoformat(args.date).isoformat()}
            print(f"POST /api/v1/report {json.dumps(body)}")
            status, headers, report = api.call("POST", "/api/v1/report", body)
            if status != 201:
                print(f"  refused with {status}: {report.get('detail')}", file=sys.stderr)
                return 1
            location = headers["Location"]
            print(f"  {status} Created, Location: {location}, Retry-After: {headers.get('Retry-After')}")
            report = wait_for_report(api, location, timeout=args.timeout)
            if report["status"] == "FAILED":
                print(f"  report FAILED: {report['error']['code']}: {report['error']['message']}", file=sys.stderr)
                return 1
            status, headers, _ = api.call("GET", f"{location}/pdf")
            print(f"GET {location}/pdf -> {status} See Other (presigned S3 URL)")
            download = requests.get(headers["Location"], timeout=30)
            download.raise_for_status()
        finally:
            stop.set()
            workers.join(timeout=5)

    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"{args.type.lower().replace('_', '-')}-{args.date}.pdf"
    target.write_bytes(download.content)
    print(f"Saved {target} ({len(download.content) / 1024:.0f} KiB) in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
