"""The async-reports API from Python: submit, get, wait (poll, WebSocket or webhook), download.

from async_reports_client import Client

client = Client()  # ASYNC_REPORTS_URL / ASYNC_REPORTS_API_KEY, else the local runtime
report = client.submit("COFFEE_SALES", "2021-01-01")
report = client.wait(report, via="websocket", on_update=print)
client.download(report, "coffee-sales.pdf")
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal
from urllib.parse import urljoin, urlsplit

import requests

from async_reports_client.defaults import API_KEY_VARIABLE, LOCAL_API_KEY, LOCAL_API_URL, URL_VARIABLE
from async_reports_client.errors import ApiError, ConnectionFailedError, ReportFailedError, WaitTimeoutError
from async_reports_client.model import Report
from async_reports_client.polling import Backoff, Deadline, parse_retry_after

if TYPE_CHECKING:
    from async_reports_client.webhooks import WebhookReceiver

logger = logging.getLogger("async_reports_client")

Via = Literal["poll", "websocket", "webhook"]
OnUpdate = Callable[[Report], None]
REPORTS_PATH = "/api/v1/report"
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
USER_AGENT = "async-reports-client/0.1"


def _default_api_key(url: str) -> str | None:
    """The dev key only for the local runtime: a deployed API must not be sent a made-up key."""
    return LOCAL_API_KEY if urlsplit(url).hostname in LOOPBACK_HOSTS else None


class Client:
    """``url`` is the API's root (the ``ApiUrl`` output, with the stage: ``https://…/v1``).

    Requests that are safe to repeat are retried on connection errors, 429 (after its
    ``Retry-After``), 502, 503 and 504; ``submit`` is made safe to repeat by always sending an
    ``Idempotency-Key``. Other refusals raise :class:`ApiError` with the problem's ``detail``.
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        session: requests.Session | None = None,
        timeout: float = 10.0,
        retries: int = 4,
        retry_backoff: Backoff | None = None,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self.url = (url or environ.get(URL_VARIABLE) or LOCAL_API_URL).rstrip("/")
        if urlsplit(self.url).scheme not in ("http", "https") or not urlsplit(self.url).hostname:
            raise ValueError(f"the API URL must be http(s)://host[/stage], got {self.url!r}")
        self.api_key = api_key or environ.get(API_KEY_VARIABLE) or _default_api_key(self.url)
        self.timeout = timeout
        self.retries = retries
        self.retry_backoff = retry_backoff or Backoff(initial=0.5, max_interval=8.0)
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", USER_AGENT)
        self.requests_made = 0
        """Every HTTP request sent to the API (retries included), for callers that count."""
        self.websocket_connections = 0
        self.websocket_pings = 0

    # -- the resource ---------------------------------------------------------------------------

    def submit(
        self,
        report_type: str,
        report_date: str | date,
        *,
        callback_url: str | None = None,
        idempotency_key: str | None = None,
    ) -> Report:
        """``POST /api/v1/report``; the new report (``201``), or the same one for a repeated key."""
        body: dict[str, Any] = {"reportType": report_type, "reportDate": str(report_date)}
        if callback_url:
            body["callbackUrl"] = callback_url
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        response = self._request("POST", self.url + REPORTS_PATH, json=body, headers=headers)
        return self._report(response)

    def get(self, report: Report | str, *, etag: str | None = None) -> Report | None:
        """The report now; None when ``etag`` still names the current version (``304``)."""
        return self._fetch(report, etag)[0]

    def _fetch(self, report: Report | str, etag: str | None) -> tuple[Report | None, float | None]:
        """The report (None for ``304``) and the server's ``Retry-After`` hint, 304s included."""
        headers = {"If-None-Match": etag} if etag else {}
        response = self._request("GET", self._self_url(report), headers=headers)
        hint = parse_retry_after(response.headers.get("Retry-After"))
        return (None if response.status_code == 304 else self._report(response)), hint

    def refresh(self, report: Report | str) -> Report:
        """The report now (no ``If-None-Match``, so never None)."""
        fresh = self.get(report)
        if fresh is None:
            raise ApiError(304, {"detail": "the API answered 304 Not Modified to an unconditional GET"})
        return fresh

    def report_url(self, report: Report | str) -> str:
        return self._self_url(report)

    # -- waiting --------------------------------------------------------------------------------

    def wait(
        self,
        report: Report | str,
        *,
        via: Via = "poll",
        timeout: float | None = 600.0,
        on_update: OnUpdate | None = None,
        backoff: Backoff | None = None,
        receiver: WebhookReceiver | None = None,
        ping_interval: float = 300.0,
        raise_on_failure: bool = True,
    ) -> Report:
        """Until the report is COMPLETED or FAILED, by ``via``; ``on_update`` sees each new state.

        Raises :class:`WaitTimeoutError` after ``timeout`` seconds, and :class:`ReportFailedError`
        for a FAILED report unless ``raise_on_failure`` is false."""
        deadline = Deadline(timeout)
        notify = _Updates(on_update)
        if via == "poll":
            final = self._wait_polling(report, deadline, notify, backoff or Backoff())
        elif via == "websocket":
            from async_reports_client.websocket import wait_websocket

            final = wait_websocket(
                self, report, deadline, notify, ping_interval=ping_interval, backoff=backoff or Backoff(max_interval=30)
            )
        elif via == "webhook":
            if receiver is None:
                raise ValueError("waiting by webhook needs a running WebhookReceiver (see submit(callback_url=...))")
            final = self._wait_webhook(report, deadline, notify, receiver)
        else:
            raise ValueError(f"via must be poll, websocket or webhook, not {via!r}")
        if final.failed and raise_on_failure:
            raise ReportFailedError(final.data)
        return final

    def _wait_polling(self, report: Report | str, deadline: Deadline, notify: _Updates, backoff: Backoff) -> Report:
        current = report if isinstance(report, Report) and report.etag else None
        attempt = 0
        if current is not None:
            notify(current)
            if current.is_final:
                return current
            if current.retry_after is not None:  # the 201 (or last GET) already said when to look
                time.sleep(deadline.clamp(backoff.delay(attempt, current.retry_after)))
        while True:
            try:
                fresh, hint = self._fetch(report, current.etag if current else None)
            except ConnectionFailedError:
                if deadline.expired:
                    raise
                fresh, hint = None, None  # a network hiccup is not the end of a long wait
            if fresh is not None:
                if notify(fresh):
                    attempt = 0  # it moved: the backoff starts again from the bottom
                current = fresh
                if current.is_final:
                    return current
            if deadline.expired:
                raise WaitTimeoutError(deadline.seconds or 0, current.data if current else None)
            time.sleep(deadline.clamp(backoff.delay(attempt, hint)))
            attempt += 1

    def _wait_webhook(
        self, report: Report | str, deadline: Deadline, notify: _Updates, receiver: WebhookReceiver
    ) -> Report:
        """Look once (it may be final already), then wait for the signed event. Every
        ``recheck`` seconds without one, look again: a lost webhook must not hang the caller."""
        recheck = 30.0
        current = self.refresh(report)
        notify(current)
        while not current.is_final:
            remaining = deadline.remaining()
            if remaining == 0:
                raise WaitTimeoutError(deadline.seconds or 0, current.data)
            event = receiver.next_event(recheck if remaining is None else min(recheck, remaining), current.id)
            if event is not None:
                current = Report(event.report)
            elif not deadline.expired:
                current = self.refresh(current)
            notify(current)
        return current

    # -- the PDF --------------------------------------------------------------------------------

    def pdf_url(self, report: Report | str) -> str:
        """A fresh presigned URL: ``GET …/pdf`` answers ``303 See Other`` to it."""
        response = self._request("GET", self._self_url(report) + "/pdf", allow_redirects=False)
        location = response.headers.get("Location")
        if response.status_code != 303 or not location:
            raise ApiError(response.status_code, {"detail": f"expected 303 See Other, got {response.status_code}"})
        return location

    def download(
        self,
        report: Report | str,
        destination: str | Path | IO[bytes],
        *,
        chunk_size: int = 64 * 1024,
        on_progress: Callable[[int, int | None], None] | None = None,
    ) -> int:
        """Stream the PDF to a path (written whole or not at all) or an open binary file; returns
        its size. The presigned URL gets no API key: it goes to S3, not to the API."""
        url = self.pdf_url(report)
        try:
            with requests.get(url, stream=True, timeout=self.timeout, allow_redirects=False) as response:
                if response.status_code != 200:
                    raise ApiError(
                        response.status_code,
                        {"title": "Download failed", "detail": f"the PDF's URL answered {response.status_code}"},
                    )
                total = int(response.headers["Content-Length"]) if "Content-Length" in response.headers else None
                chunks = response.iter_content(chunk_size)
                if isinstance(destination, str | Path):
                    return _write_atomically(Path(destination), chunks, total, on_progress)
                return _copy(chunks, destination, total, on_progress)
        except requests.RequestException as error:
            raise ConnectionFailedError(f"could not download the PDF: {error}") from error

    # -- HTTP -----------------------------------------------------------------------------------

    def _self_url(self, report: Report | str) -> str:
        if isinstance(report, Report):
            href = report.link("self")
            if href:
                return urljoin(self.url + "/", href)
            report = report.id
        if not report or "/" in report or "?" in report:
            raise ValueError(f"not a report id: {report!r}")
        return f"{self.url}{REPORTS_PATH}/{report}"

    def _report(self, response: requests.Response) -> Report:
        return Report(
            response.json(),
            etag=response.headers.get("ETag"),
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        headers = {"Accept": "application/json, application/problem+json", **kwargs.pop("headers", {})}
        if self.api_key:
            headers["x-api-key"] = self.api_key
        attempt = 0
        while True:
            try:
                self.requests_made += 1
                response = self.session.request(method, url, headers=headers, timeout=self.timeout, **kwargs)
            except requests.RequestException as error:
                if attempt >= self.retries:
                    raise ConnectionFailedError(f"could not reach {url}: {_reason(error)}") from error
                logger.info("%s %s failed (%s); retrying", method, url, _reason(error))
                time.sleep(self.retry_backoff.delay(attempt))
                attempt += 1
                continue
            if response.status_code in RETRYABLE_STATUSES and attempt < self.retries:
                logger.info("%s %s answered %d; retrying", method, url, response.status_code)
                hint = parse_retry_after(response.headers.get("Retry-After"))
                time.sleep(self.retry_backoff.delay(attempt, hint))
                attempt += 1
                continue
            if response.status_code >= 400:
                raise ApiError(response.status_code, _problem(response))
            return response


class _Updates:
    """Calls ``on_update`` once per new state: never twice for one version, never going back."""

    def __init__(self, on_update: OnUpdate | None) -> None:
        self._on_update = on_update
        self.last: Report | None = None

    def __call__(self, report: Report) -> bool:
        last = self.last
        if last is not None:
            if report.version and last.version:
                if report.version <= last.version:
                    return False
            elif (report.status, report.step, report.percent) == (last.status, last.step, last.percent):
                return False
        self.last = report
        if self._on_update is not None:
            self._on_update(report)
        return True


def _problem(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    text = response.text.strip()[:200]
    return {"title": response.reason or "", "detail": text or f"HTTP {response.status_code}"}


def _reason(error: requests.RequestException) -> str:
    if isinstance(error, requests.Timeout):
        return "timed out"
    if isinstance(error, requests.ConnectionError):
        return "connection refused or dropped"
    return type(error).__name__


def _copy(
    chunks: Any, target: IO[bytes], total: int | None, on_progress: Callable[[int, int | None], None] | None
) -> int:
    written = 0
    for chunk in chunks:
        target.write(chunk)
        written += len(chunk)
        if on_progress:
            on_progress(written, total)
    if total is not None and written != total:
        raise ConnectionFailedError(f"the download stopped after {written} of {total} bytes")
    return written


def _write_atomically(
    path: Path, chunks: Any, total: int | None, on_progress: Callable[[int, int | None], None] | None
) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("wb", dir=path.parent, prefix=f".{path.name}.", delete=False) as partial:
        try:
            written = _copy(chunks, partial, total, on_progress)
        except BaseException:
            partial.close()
            os.unlink(partial.name)
            raise
    os.replace(partial.name, path)
    return written
