"""``async-reports``: submit a report, follow it, download the PDF.

async-reports submit --type COFFEE_SALES --date 2021-01-01 --wait --output r.pdf
id=$(async-reports submit --type COFFEE_SALES --date 2021-01-01)
async-reports wait "$id" --via websocket && async-reports download "$id" -o r.pdf
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from async_reports_client.client import Client
from async_reports_client.defaults import (
    API_KEY_VARIABLE,
    LOCAL_API_URL,
    LOCAL_WEBHOOK_SECRET,
    URL_VARIABLE,
    WEBHOOK_SECRET_VARIABLE,
)
from async_reports_client.errors import ApiError, AsyncReportsError, ReportFailedError
from async_reports_client.model import Report
from async_reports_client.progress import ProgressBar

EXIT_CODES = """exit codes:
  0  done (the report is COMPLETED, or the command did what it says)
  1  the report FAILED (its error code and message are printed)
  2  bad command line
  3  the API refused the request (its problem detail is printed)
  4  the report was not final within --timeout
  5  the API or the WebSocket API could not be reached
  130 interrupted"""


def _global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """Accepted before or after the command; the command's copy only overrides when given."""

    def default(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--url",
        default=default(os.environ.get(URL_VARIABLE)),
        help=f"the API's URL (the stack's ApiUrl output); ${URL_VARIABLE}, else the local runtime {LOCAL_API_URL}",
    )
    parser.add_argument(
        "--api-key",
        default=default(os.environ.get(API_KEY_VARIABLE)),
        help=f"the API key; ${API_KEY_VARIABLE}, else the local runtime's dev key (local URLs only)",
    )
    parser.add_argument("--request-timeout", type=float, default=default(10.0), help="seconds per HTTP request (10)")
    parser.add_argument(
        "--retries",
        type=int,
        default=default(4),
        help="retries of a request on 429/502/503/504 or a network error (4)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", default=default(False), help="no progress bar")
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=default(False), help="log retries and reconnects"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="async-reports",
        description="Submit async-reports reports, wait for them (polling, WebSocket or webhook), download the PDF.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _global_options(parser, defaults=True)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, defaults=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    submit = commands.add_parser(
        "submit", parents=[common], help="request a report (prints its id, or waits with --wait)"
    )
    submit.add_argument("--type", required=True, dest="report_type", help="report type, e.g. COFFEE_SALES")
    submit.add_argument("--date", required=True, dest="report_date", help="report date, YYYY-MM-DD")
    submit.add_argument("--callback-url", help="a URL the API POSTs the signed report.completed/failed event to")
    submit.add_argument("--idempotency-key", help="repeat a submission safely (default: a fresh key)")
    submit.add_argument("--wait", action="store_true", help="wait until the report is final")
    _waiting_options(submit)
    submit.add_argument("--json", action="store_true", help="print the report resource as JSON")

    status = commands.add_parser("status", parents=[common], help="show a report's state")
    status.add_argument("report_id")
    status.add_argument("--json", action="store_true", help="print the report resource as JSON")

    wait = commands.add_parser("wait", parents=[common], help="wait until a report is final")
    wait.add_argument("report_id")
    _waiting_options(wait)
    wait.add_argument("--json", action="store_true", help="print the final report resource as JSON")

    download = commands.add_parser("download", parents=[common], help="save a COMPLETED report's PDF")
    download.add_argument("report_id")
    download.add_argument("-o", "--output", help="file to write, or - for stdout (default: TYPE-DATE.pdf)")
    return parser


def _waiting_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--via", choices=("poll", "websocket", "webhook"), default="poll", help="how to wait (poll)")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds (600)")
    parser.add_argument("-o", "--output", help="once COMPLETED, save the PDF here (- for stdout)")
    parser.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="--via webhook: where to receive the event (default: 127.0.0.1 on a free port, or the "
        "report's own loopback callbackUrl)",
    )
    parser.add_argument(
        "--public-url",
        help="--via webhook: the URL the API should call when it cannot reach --listen directly (a tunnel)",
    )
    parser.add_argument(
        "--webhook-secret",
        default=os.environ.get(WEBHOOK_SECRET_VARIABLE),
        help=f"--via webhook: the whsec_ signing key; ${WEBHOOK_SECRET_VARIABLE}, else the local runtime's dev key",
    )


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s", stream=err
    )
    try:
        client = Client(args.url, args.api_key, timeout=args.request_timeout, retries=max(0, args.retries))
    except ValueError as error:
        print(f"error: {error}", file=err)
        return 2
    command = Command(client, args, out, err)
    try:
        return command.run()
    except ReportFailedError as error:
        _show(command, Report(error.report), final=True)
        print(f"error: report {error.report.get('id')} FAILED: {error.code}: {error.message}", file=err)
        return error.exit_code
    except ApiError as error:
        print(f"error: {error.status} {error.title or 'refused'}: {error.detail}", file=err)
        return error.exit_code
    except AsyncReportsError as error:
        print(f"error: {error}", file=err)
        return error.exit_code
    except ValueError as error:  # an argument the client refused (a malformed id, a bad --listen)
        print(f"error: {error}", file=err)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=err)
        return 130


class Command:
    def __init__(self, client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> None:
        self.client, self.args, self.out, self.err = client, args, out, err

    def run(self) -> int:
        args = self.args
        if args.command == "status":
            report = self.client.refresh(args.report_id)
            _show(self, report, final=report.is_final)
            return 0
        if args.command == "download":
            return self.download(self.client.refresh(args.report_id), args.output)
        with ExitStack() as stack:
            receiver = None
            if args.command == "submit":
                if args.wait and args.via == "webhook":
                    receiver = stack.enter_context(self._receiver(args.listen))
                callback_url = args.callback_url or (receiver.url if receiver else None)
                report = self.client.submit(
                    args.report_type,
                    args.report_date,
                    callback_url=callback_url,
                    idempotency_key=args.idempotency_key,
                )
                if not args.wait:
                    _show(self, report, final=False)
                    return 0
                print(f"submitted {report.id}; waiting by {args.via}", file=self.err)
            else:
                report = self.client.refresh(args.report_id)
                if args.via == "webhook" and not report.is_final:
                    listen, path = _loopback(report)
                    receiver = stack.enter_context(self._receiver(args.listen or listen, path))
            progress = ProgressBar(self.err, enabled=not args.quiet)
            try:
                final = self.client.wait(
                    report, via=args.via, timeout=args.timeout, on_update=progress, receiver=receiver
                )
            finally:
                progress.close()
        _show(self, final, final=True)
        return self.download(final, args.output) if args.output else 0

    def download(self, report: Report, output: str | None) -> int:
        if output == "-":
            size = self.client.download(report, self.out.buffer if hasattr(self.out, "buffer") else sys.stdout.buffer)
            print(f"wrote {size} bytes to stdout", file=self.err)
            return 0
        target = Path(output or report.suggested_filename)
        size = self.client.download(report, target)
        print(f"saved {target} ({size / 1024:.0f} KiB)", file=self.err)
        return 0

    def _receiver(self, listen: str | None, path: str = "/") -> Any:
        from async_reports_client.webhooks import WebhookReceiver

        host, port = _host_port(listen or "127.0.0.1:0")
        secret = self.args.webhook_secret or LOCAL_WEBHOOK_SECRET
        return WebhookReceiver(secret, host=host, port=port, path=path, public_url=self.args.public_url)


def _show(command: Command, report: Report, *, final: bool) -> None:
    if getattr(command.args, "json", False):
        print(json.dumps(report.data, indent=2), file=command.out)
        return
    if command.args.command == "submit" and not final:
        print(report.id, file=command.out)
        return
    parts = [report.id, report.status]
    if report.step and not report.is_final:
        parts.append(f"{report.step} ({report.percent}%)")
    if report.error:
        parts.append(f"{report.error.get('code')}: {report.error.get('message')}")
    if report.pdf_uri and command.args.command == "status":
        parts.append(report.pdf_uri)
    print("  ".join(parts), file=command.out)


def _loopback(report: Report) -> tuple[str | None, str]:
    """Where to listen for a report's callback: its callbackUrl's port if on this machine, and path."""
    callback = report.data.get("callbackUrl")
    if not callback:
        raise ValueError(
            f"report {report.id} has no callbackUrl, so no webhook will come; submit with "
            "--callback-url (or `submit --wait --via webhook`), or wait --via poll|websocket"
        )
    parts = urlsplit(callback)
    path = parts.path or "/"
    if parts.hostname in ("127.0.0.1", "localhost", "::1") and parts.port:
        return f"{parts.hostname}:{parts.port}", path
    return None, path


def _host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--listen must be HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


if __name__ == "__main__":
    raise SystemExit(main())
