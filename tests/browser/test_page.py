"""web/ in headless Chromium against the local runtime: a report from Submit to its PDF, every
refusal and failure shown where a person sees it, live updates that survive a dropped WebSocket, and
the page served from another origin (CORS)."""

from __future__ import annotations

import re
import socket
import time

import pytest
import requests

from local.runtime import LocalRuntime
from tests.browser.conftest import API_KEY, StaticSite, browser_missing, in_ci

_missing = browser_missing()
if _missing:
    if in_ci():
        pytest.fail(f"CI is set, so the browser tests must run, but {_missing}", pytrace=False)
    pytest.skip(f"no browser to drive: {_missing}", allow_module_level=True)

from playwright.sync_api import Locator, Page, WebSocketRoute, expect  # noqa: E402

REPORT_TIMEOUT_MS = 60_000
ANY_WEBSOCKET = re.compile(r"^wss?://")
RECORD_STEP_LABELS = """
window.stepLabels = [];
document.addEventListener("DOMContentLoaded", () => {
  const label = document.querySelector("[data-testid=step]");
  new MutationObserver(() => {
    if (window.stepLabels.at(-1) !== label.textContent) window.stepLabels.push(label.textContent);
  }).observe(label, { childList: true, characterData: true, subtree: true });
});
"""


def open_page(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")  # config.json read


def submit(page: Page, report_type: str = "COFFEE_SALES", report_date: str = "2021-01-01") -> None:
    page.get_by_label("Report type").fill(report_type)
    page.get_by_label("Date").fill(report_date)
    page.get_by_role("button", name="Submit").click()


def download_link(page: Page) -> Locator:
    return page.get_by_role("link", name="Download the PDF")


def wait_until_final(runtime: LocalRuntime, report_id: str, timeout: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        response = requests.get(
            f"{runtime.api_url}/api/v1/report/{report_id}", headers={"x-api-key": API_KEY}, timeout=30
        )
        report: dict[str, object] = response.json()
        if report["status"] in ("COMPLETED", "FAILED"):
            return report
        assert time.monotonic() < deadline, f"report {report_id} still {report['status']} after {timeout} s"
        time.sleep(0.2)


def test_a_report_goes_from_submit_through_live_progress_to_its_pdf(page: Page, runtime: LocalRuntime) -> None:
    # GIVEN the page the runtime serves at /, filled in from the config.json it serves beside it
    page.add_init_script(RECORD_STEP_LABELS)
    open_page(page, f"{runtime.api_url}/")
    expect(page.get_by_label("API URL")).to_have_value(runtime.api_url)
    expect(page.get_by_label("API key")).to_have_value(API_KEY)

    # WHEN a report is submitted
    submit(page)

    # THEN its progress shows at once, and the download link appears when it is done
    expect(page.get_by_test_id("report")).to_be_visible()
    expect(page.get_by_role("progressbar")).to_be_visible()
    link = download_link(page)
    expect(link).to_be_visible(timeout=REPORT_TIMEOUT_MS)
    expect(page.get_by_test_id("status")).to_have_text("COMPLETED")
    expect(page.get_by_role("progressbar", name="done")).to_have_js_property("value", 100)
    expect(page.get_by_test_id("percent")).to_have_text("100%")
    expect(page.get_by_test_id("error")).to_be_hidden()
    expect(page.get_by_test_id("connection")).to_have_text("")
    # AND the step label moved from the queue to done (through whatever steps the socket caught)
    labels = page.evaluate("window.stepLabels")
    assert labels[0] == "waiting in the queue"
    assert labels[-1] == "done"
    assert len(labels) == len(set(labels)) >= 2, labels
    # AND the link is the report's presigned PDF, named for saving
    assert link.get_attribute("download") == "coffee-sales-2021-01-01.pdf"
    pdf = requests.get(str(link.get_attribute("href")), timeout=30)
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")


@pytest.mark.parametrize(
    ("field", "value", "detail"),
    [
        ("Date", "2021-02-30", "reportDate 2021-02-30 is not a calendar date"),
        ("Report type", "TEA", "choose one of"),
    ],
    ids=["impossible date", "unknown type"],
)
def test_a_refused_request_shows_the_problem_detail(
    page: Page, runtime: LocalRuntime, field: str, value: str, detail: str
) -> None:
    # GIVEN the page
    open_page(page, f"{runtime.api_url}/")
    # WHEN the API refuses what was asked for
    page.get_by_label(field).fill(value)
    page.get_by_role("button", name="Submit").click()
    # THEN its problem (title, status and detail) is announced, and no report is shown
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text(detail)
    expect(alert).to_contain_text("(400)")
    expect(page.get_by_test_id("report")).to_be_hidden()


def test_a_report_without_sales_shows_why_it_failed(page: Page, runtime: LocalRuntime) -> None:
    # GIVEN the page
    open_page(page, f"{runtime.api_url}/")
    # WHEN a report is asked for Christmas Day, when every store is closed
    submit(page, report_date="2021-12-25")
    # THEN the failure's code and message are announced, and there is nothing to download
    failure = page.get_by_test_id("failure")
    expect(failure).to_be_visible(timeout=REPORT_TIMEOUT_MS)
    expect(failure).to_have_attribute("role", "alert")
    expect(failure).to_have_text(re.compile(r"^NO_DATA: there are no sales records for Saturday, 25 December 2021"))
    expect(page.get_by_test_id("status")).to_have_text("FAILED")
    expect(page.get_by_test_id("step")).to_have_text("failed")
    expect(download_link(page)).to_be_hidden()


def test_an_api_that_cannot_be_reached_is_a_visible_network_error(page: Page, runtime: LocalRuntime) -> None:
    # GIVEN the page, pointed at a port nothing listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    open_page(page, f"{runtime.api_url}/")
    page.get_by_label("API URL").fill(f"http://127.0.0.1:{closed_port}")
    # WHEN a report is submitted
    submit(page)
    # THEN the failure to connect is announced, naming the URL tried
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Network error")
    expect(alert).to_contain_text(f"http://127.0.0.1:{closed_port}/api/v1/report")
    expect(page.get_by_role("button", name="Submit")).to_be_enabled()


def test_the_page_on_another_origin_calls_the_api_through_cors(
    page: Page, runtime: LocalRuntime, static_site: StaticSite
) -> None:
    # GIVEN the page as a static asset on its own origin, whose config.json names the API but no key
    assert static_site.url != runtime.api_url
    open_page(page, f"{static_site.url}/")
    expect(page.get_by_label("API URL")).to_have_value(runtime.api_url)
    expect(page.get_by_label("API key")).to_have_value("")

    # WHEN a wrong key is typed, THEN API Gateway's own 403 problem is readable across origins
    page.get_by_label("API key").fill("not-a-key")
    submit(page)
    expect(page.get_by_role("alert")).to_contain_text("A valid API key is required in the x-api-key header.")
    expect(page.get_by_role("alert")).to_contain_text("(403)")

    # WHEN the user's key is typed, THEN the whole report runs as on the API's own origin
    page.get_by_label("API key").fill(API_KEY)
    submit(page)
    expect(download_link(page)).to_be_visible(timeout=REPORT_TIMEOUT_MS)
    expect(page.get_by_test_id("error")).to_be_hidden()

    # AND the key typed is remembered for the next visit
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.get_by_label("API key")).to_have_value(API_KEY)


def test_a_dropped_websocket_resumes_from_the_api_with_a_fresh_link(page: Page, runtime: LocalRuntime) -> None:
    # GIVEN a network that drops the page's first WebSocket as soon as it opens
    sockets: list[WebSocketRoute] = []

    def route(ws: WebSocketRoute) -> None:
        sockets.append(ws)
        if len(sockets) == 1:
            ws.close(code=4000, reason="dropped")
        else:
            ws.connect_to_server()

    page.route_web_socket(ANY_WEBSOCKET, route)
    open_page(page, f"{runtime.api_url}/")

    # WHEN a report is submitted
    with page.expect_response(lambda r: r.request.method == "GET" and "/api/v1/report/" in r.url) as read:
        submit(page)

    # THEN the page reads the report again (its state, and a fresh link) and sees it to the end,
    # through a new connection unless the report was already final when read
    expect(download_link(page)).to_be_visible(timeout=REPORT_TIMEOUT_MS)
    report_id = str(page.get_by_test_id("report-id").text_content())
    assert read.value.url == f"{runtime.api_url}/api/v1/report/{report_id}"
    assert read.value.status == 200
    read_status = read.value.json()["status"]
    assert len(sockets) == (1 if read_status == "COMPLETED" else 2), read_status
    expect(page.get_by_test_id("error")).to_be_hidden()
    # (no state is shown twice: each line of the history is a new one)
    history = page.get_by_test_id("history").locator("li").all_text_contents()
    assert history == list(dict.fromkeys(history))


def test_a_report_that_finished_while_disconnected_is_shown_without_a_new_socket(
    page: Page, runtime: LocalRuntime
) -> None:
    # GIVEN a WebSocket that goes silent: the page hears nothing the server sends
    sockets: list[WebSocketRoute] = []

    def route(ws: WebSocketRoute) -> None:
        sockets.append(ws)
        ws.connect_to_server().on_message(lambda message: None)

    page.route_web_socket(ANY_WEBSOCKET, route)
    open_page(page, f"{runtime.api_url}/")
    submit(page)
    expect(page.get_by_test_id("connection")).to_have_text("live")
    expect(page.get_by_test_id("status")).to_have_text("QUEUED")

    # WHEN the report completes unseen, and only then the connection drops
    report_id = str(page.get_by_test_id("report-id").text_content())
    wait_until_final(runtime, report_id)
    sockets[0].close(code=1006)

    # THEN the page learns the final state from the API and stops, with no new connection
    expect(download_link(page)).to_be_visible(timeout=REPORT_TIMEOUT_MS)
    expect(page.get_by_test_id("status")).to_have_text("COMPLETED")
    expect(page.get_by_test_id("connection")).to_have_text("")
    page.wait_for_timeout(1000)
    assert len(sockets) == 1


def test_an_open_websocket_pings_every_five_minutes(page: Page, runtime: LocalRuntime) -> None:
    # GIVEN the page's clock under the test's control, and a socket kept open (updates held back)
    page.clock.install()
    sent: list[str | bytes] = []
    answers: list[str | bytes] = []

    def route(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def page_to_server(message: str | bytes) -> None:
            sent.append(message)
            server.send(message)

        ws.on_message(page_to_server)
        server.on_message(lambda message: answers.append(message) if b"pong" in _bytes(message) else None)

    page.route_web_socket(ANY_WEBSOCKET, route)
    open_page(page, f"{runtime.api_url}/")
    submit(page)
    expect(page.get_by_test_id("connection")).to_have_text("live")

    # WHEN just under five minutes pass, THEN nothing is sent
    page.clock.run_for("04:59")
    page.wait_for_timeout(200)
    assert sent == []

    # WHEN five minutes have passed, THEN a ping goes out, and the server answers it
    page.clock.run_for("00:02")
    deadline = time.monotonic() + 10
    while not answers and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert [_bytes(m) for m in sent] == [b'{"action":"ping"}']
    assert [_bytes(m) for m in answers] == [b'{"type": "pong"}']


def _bytes(message: str | bytes) -> bytes:
    return message.encode() if isinstance(message, str) else message
