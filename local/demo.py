"""``make demo``: the whole flow over real HTTP, on this machine, no Docker, no AWS account.

Starts the local runtime (template.yaml's resources in an embedded moto, the REST API, the queue
feeding the process function), seeds the sample sales, submits a COFFEE_SALES report for
2021-01-01 with a callback to a local webhook receiver, and follows it over every channel at once
with the Python client (``client/``): WebSocket push with live progress, polling with the server's
``Retry-After`` and backoff, and the signed webhook. Then it streams the PDF from its presigned URL
into ``out/``, checks that what it saved is a whole PDF (the ``%PDF-`` header, ``%%EOF`` at its end;
exit status 1 if not), and stops.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
PDF_HEADER = b"%PDF-"
PDF_EOF = b"%%EOF"
PDF_TAIL_BYTES = 1024
"""Where the ``%%EOF`` marker must be: in the file's last 1024 bytes, as PDF readers look for it."""


def pdf_problem(path: Path) -> str | None:
    """Why ``path`` is not a whole PDF (no ``%PDF-`` header, no ``%%EOF`` at its end); None if it is one."""
    try:
        size = path.stat().st_size
        with path.open("rb") as file:
            head = file.read(len(PDF_HEADER))
            file.seek(max(0, size - PDF_TAIL_BYTES))
            tail = file.read()
    except OSError as error:
        return f"cannot read it: {error.strerror or error}"
    if size == 0:
        return "it is empty"
    if head != PDF_HEADER:
        return f"it does not start with {PDF_HEADER.decode()} (it starts with {head!r})"
    if PDF_EOF not in tail:
        return f"no {PDF_EOF.decode()} marker in its last {PDF_TAIL_BYTES} bytes (cut short?)"
    return None


def submit_route(routes: Sequence[tuple[str, str]]) -> str | None:
    """The template's route to submit to: its POST without path parameters (the first, if several)."""
    return next((path for method, path in routes if method == "POST" and "{" not in path), None)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--type", default="COFFEE_SALES", help="report type (%(default)s)")
    parser.add_argument("--date", default="2021-01-01", help="report date (%(default)s)")
    parser.add_argument("--out", type=Path, default=ROOT / "out", help="where the PDF goes (%(default)s)")
    parser.add_argument("--timeout", type=float, default=120.0, help="give up after this many seconds")
    parser.add_argument("--verbose", action="store_true", help="log every request and invocation")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(name)-12s %(message)s"
    )
    for noisy in ("werkzeug", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.ERROR)

    from async_reports_client import AsyncReportsError, Client, Report
    from async_reports_client.client import Via
    from async_reports_client.progress import ProgressBar
    from async_reports_client.webhooks import WebhookReceiver
    from local.runtime import LocalRuntime, LocalRuntimeError, RuntimeConfig
    from reports.sales import SAMPLE_DATA_END, SAMPLE_DATA_START

    started = time.perf_counter()
    print(f"Starting the local runtime and seeding sales {SAMPLE_DATA_START} to {SAMPLE_DATA_END} ...")
    config = RuntimeConfig.from_environment(api_port=0, ws_port=0, seed=(SAMPLE_DATA_START, SAMPLE_DATA_END))
    try:
        runtime = LocalRuntime(config)
        runtime.start()
    except LocalRuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    api_key = next(iter(config.api_keys))
    submit_path = submit_route(runtime.routes)
    if submit_path is None:
        runtime.stop()
        listed = ", ".join(f"{method} {path}" for method, path in runtime.routes) or "none"
        print(f"error: the template routes no POST to submit a report to (routes: {listed})", file=sys.stderr)
        return 2
    target = args.out / f"{args.type.lower().replace('_', '-')}-{args.date}.pdf"
    try:
        print(f"  ready in {time.perf_counter() - started:.1f} s: API {runtime.api_url}, WebSocket {runtime.ws_url}")
        with WebhookReceiver(runtime.webhook_secret) as receiver:
            client = Client(runtime.api_url, api_key)
            print(f"POST {runtime.api_url}{submit_path} {args.type} {args.date}, callbackUrl {receiver.url}")
            report = client.submit(args.type, args.date, callback_url=receiver.url)
            submitted = time.monotonic()
            print(f"  201 Created: {report.id}, Retry-After: {report.retry_after:g} s")
            print("Following it over each channel at once (the bar is the WebSocket's live progress):")
            learned: dict[str, tuple[float, int, Report | BaseException]] = {}

            def follow(via: Via, on_update: Any = None) -> None:
                own = Client(runtime.api_url, api_key)  # its own counter of status requests
                try:
                    final: Report | BaseException = own.wait(
                        report, via=via, timeout=args.timeout, receiver=receiver, on_update=on_update,
                        raise_on_failure=False,
                    )  # fmt: skip
                except AsyncReportsError as error:
                    final = error
                learned[via] = (time.monotonic() - submitted, own.requests_made, final)

            bar = ProgressBar(sys.stdout)
            waiters = [
                threading.Thread(target=follow, args=("websocket", bar)),
                threading.Thread(target=follow, args=("poll",)),
                threading.Thread(target=follow, args=("webhook",)),
            ]
            for waiter in waiters:
                waiter.start()
            for waiter in waiters:
                waiter.join()
            bar.close()
        for via, (after, requests_made, final) in sorted(learned.items(), key=lambda item: item[1][0]):
            outcome = final.status if isinstance(final, Report) else f"error: {final}"
            print(f"  {via:<9} learned {outcome} after {after:.2f} s with {requests_made} status request(s)")
        final = learned["poll"][2]
        if not isinstance(final, Report):
            print(f"  the report did not finish: {final}", file=sys.stderr)
            return 1
        if final.failed:
            failure = final.error or {}
            print(f"  report FAILED: {failure.get('code')}: {failure.get('message')}", file=sys.stderr)
            return 1
        # The path the client asks for the PDF: the report's own link, as the API gave it.
        pdf_path = urlsplit(client.report_url(final)).path + "/pdf"
        print(f"GET {pdf_path} -> 303 See Other (presigned S3 URL), streamed to {target}")
        size = client.download(final, target)
    except AsyncReportsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        runtime.stop()
    problem = pdf_problem(target)
    if problem is not None:
        print(f"error: {target} ({size} bytes) is not a valid PDF: {problem}", file=sys.stderr)
        return 1
    print(f"Saved {target} ({size / 1024:.0f} KiB) in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
