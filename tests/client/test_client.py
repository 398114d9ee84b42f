"""The client's HTTP behaviour against a scripted server: retries, idempotency keys, conditional
polling with the server's hints, problem details, and downloads that are whole or absent."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from async_reports_client import ApiError, Client, ConnectionFailedError, Report, WaitTimeoutError
from async_reports_client.client import _Updates

REPORT_ID = "01M84C6K8PXH5HGAWP3K1KCAGT"


@dataclass
class Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_length: int | None = None


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class ScriptedApi:
    """Answers each request with the next scripted answer; records what it was sent."""

    def __init__(self) -> None:
        self.script: list[Answer] = []
        self.seen: list[Seen] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                api.seen.append(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                answer = api.script.pop(0)
                raw = answer.raw if answer.raw is not None else b""
                if answer.body is not None:
                    raw = json.dumps(answer.body).encode()
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(answer.content_length or len(raw)))
                self.end_headers()
                self.wfile.write(raw)
                if answer.content_length:
                    self.close_connection = True

            do_GET = do_POST = _any

            def log_message(self, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def api() -> Iterator[ScriptedApi]:
    scripted = ScriptedApi()
    yield scripted
    scripted.server.shutdown()
    scripted.server.server_close()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The client's sleeps, recorded instead of slept."""
    recorded: list[float] = []
    monkeypatch.setattr("async_reports_client.client.time.sleep", recorded.append)
    return recorded


def report(status: str, version: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": REPORT_ID,
        "reportType": "COFFEE_SALES",
        "reportDate": "2021-01-01",
        "status": status,
        "version": version,
        "_links": {"self": {"href": f"/v1/api/v1/report/{REPORT_ID}"}},
        **extra,
    }


def test_submit_retries_throttling_and_outages_with_one_idempotency_key(api: ScriptedApi, sleeps: list[float]) -> None:
    api.script = [
        Answer(429, {"title": "Too Many Requests", "detail": "slow down"}, {"Retry-After": "2"}),
        Answer(503, {"detail": "unavailable"}),
        Answer(201, report("QUEUED", 1), {"ETag": 'W/"x.1"', "Retry-After": "3"}),
    ]
    created = Client(f"{api.url}/v1", "key").submit("COFFEE_SALES", "2021-01-01")
    assert created.status == "QUEUED"
    assert created.retry_after == 3
    keys = {seen.headers["idempotency-key"] for seen in api.seen}
    assert len(api.seen) == 3
    assert len(keys) == 1, "a retried POST must be recognised as the same submission"
    assert all(seen.headers["x-api-key"] == "key" for seen in api.seen)
    assert json.loads(api.seen[0].body) == {"reportType": "COFFEE_SALES", "reportDate": "2021-01-01"}
    assert 2 <= sleeps[0] <= 2.2, "the 429's Retry-After is honoured"


def test_a_refusal_raises_with_the_problem_detail_and_is_not_retried(api: ScriptedApi) -> None:
    api.script = [Answer(400, {"title": "Invalid request", "status": 400, "detail": "reportDate is not a date"})]
    with pytest.raises(ApiError) as refused:
        Client(api.url, "key").submit("COFFEE_SALES", "x")
    assert (refused.value.status, refused.value.detail) == (400, "reportDate is not a date")
    assert str(refused.value) == "400 Invalid request: reportDate is not a date"
    assert len(api.seen) == 1


def test_an_answer_that_is_not_json_still_gives_a_readable_error(api: ScriptedApi) -> None:
    api.script = [Answer(500, raw=b"<html>upstream exploded</html>")]
    with pytest.raises(ApiError, match="upstream exploded"):
        Client(api.url, "key", retries=0).get(REPORT_ID)


def test_polling_is_conditional_follows_hints_and_reports_each_change_once(
    api: ScriptedApi, sleeps: list[float]
) -> None:
    api.script = [
        Answer(200, report("QUEUED", 1), {"ETag": 'W/"a.1"', "Retry-After": "4"}),
        Answer(304, None, {"ETag": 'W/"a.1"', "Retry-After": "3"}),
        Answer(200, report("RUNNING", 2, progress={"step": "charting", "percent": 40}), {"ETag": 'W/"a.2"'}),
        Answer(200, report("COMPLETED", 3, pdfUri="https://s3/x.pdf"), {"ETag": 'W/"a.3"'}),
    ]
    updates: list[Report] = []
    final = Client(api.url, "key").wait(REPORT_ID, on_update=updates.append)
    assert final.completed
    assert final.pdf_uri == "https://s3/x.pdf"
    assert [u.status for u in updates] == ["QUEUED", "RUNNING", "COMPLETED"]
    assert [s.headers.get("if-none-match") for s in api.seen] == [None, 'W/"a.1"', 'W/"a.1"', 'W/"a.2"']
    # the hints (4 then 3 s, the 304's own) win; with none, the backoff restarts small after a change
    assert 4 <= sleeps[0] <= 4.4
    assert 3 <= sleeps[1] <= 3.3
    assert sleeps[2] <= 0.5


def test_polling_stops_at_the_deadline_whatever_the_hint(api: ScriptedApi) -> None:
    api.script = [
        Answer(200, report("QUEUED", 1), {"ETag": 'W/"a.1"', "Retry-After": "3600"}),
        Answer(304, None, {"Retry-After": "3600"}),
    ]
    began = time.monotonic()
    with pytest.raises(WaitTimeoutError) as timed_out:
        Client(api.url, "key").wait(REPORT_ID, timeout=0.3)
    assert time.monotonic() - began < 2
    assert timed_out.value.last is not None
    assert timed_out.value.last["status"] == "QUEUED"
    assert len(api.seen) == 2, "one look at the start, one at the deadline"


def test_the_dev_key_goes_only_to_the_local_runtime() -> None:
    assert Client("http://127.0.0.1:3000", environ={}).api_key == "local-dev-key"
    assert Client("https://abc.execute-api.eu-west-1.amazonaws.com/v1", environ={}).api_key is None
    env = {"ASYNC_REPORTS_URL": "https://api.example/v1", "ASYNC_REPORTS_API_KEY": "k"}
    assert (Client(environ=env).url, Client(environ=env).api_key) == ("https://api.example/v1", "k")
    assert Client(environ={}).url == "http://127.0.0.1:3000"
    with pytest.raises(ValueError, match="http"):
        Client("ftp://example")


def test_ids_that_are_not_ids_never_reach_the_network() -> None:
    client = Client("http://127.0.0.1:9", "k")
    for bad in ("", "../../etc", "a/b", "x?y=1"):
        with pytest.raises(ValueError, match="not a report id"):
            client.get(bad)


def test_download_streams_to_the_file_without_the_api_key(api: ScriptedApi, tmp_path: Path) -> None:
    pdf = b"%PDF-1.4\n" + b"x" * 200_000
    api.script = [
        Answer(303, None, {"Location": f"{api.url}/files/r.pdf?X-Amz-Signature=abc"}),
        Answer(200, raw=pdf, headers={"Content-Type": "application/pdf"}),
    ]
    progress: list[tuple[int, int | None]] = []
    size = Client(api.url, "key").download(
        REPORT_ID, tmp_path / "out" / "r.pdf", on_progress=lambda n, t: progress.append((n, t))
    )
    assert size == len(pdf)
    assert (tmp_path / "out" / "r.pdf").read_bytes() == pdf
    assert api.seen[0].path == f"/api/v1/report/{REPORT_ID}/pdf"
    assert "x-api-key" not in api.seen[1].headers, "the presigned URL goes to S3: no API key there"
    assert progress[-1] == (len(pdf), len(pdf))


def test_a_download_cut_short_leaves_no_file(api: ScriptedApi, tmp_path: Path) -> None:
    api.script = [
        Answer(303, None, {"Location": f"{api.url}/files/r.pdf"}),
        Answer(200, raw=b"%PDF-1.4 only the start", content_length=100_000),
    ]
    with pytest.raises(ConnectionFailedError):
        Client(api.url, "key").download(REPORT_ID, tmp_path / "r.pdf")
    assert list(tmp_path.iterdir()) == []


def test_a_pdf_not_ready_says_why(api: ScriptedApi, tmp_path: Path) -> None:
    api.script = [Answer(409, {"title": "Not ready", "detail": "the report is RUNNING; retry after 2 s"})]
    with pytest.raises(ApiError, match="RUNNING"):
        Client(api.url, "key").download(REPORT_ID, tmp_path / "r.pdf")


def test_updates_never_go_back_or_repeat() -> None:
    seen: list[int] = []
    updates = _Updates(lambda r: seen.append(r.version))
    for version in (1, 3, 2, 3, 4):
        updates(Report(report("RUNNING", version)))
    assert seen == [1, 3, 4]


def test_waiting_on_a_fresh_submission_first_sleeps_what_the_201_said(api: ScriptedApi, sleeps: list[float]) -> None:
    submitted = Report(report("QUEUED", 1), etag='W/"a.1"', retry_after=9)
    api.script = [Answer(200, report("COMPLETED", 3), {"ETag": 'W/"a.3"'})]
    final = Client(api.url, "key").wait(submitted)
    assert final.completed
    assert 9 <= sleeps[0] <= 9.9, "no GET before the hint the 201 carried"
    assert [s.headers.get("if-none-match") for s in api.seen] == ['W/"a.1"']
