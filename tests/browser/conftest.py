"""web/ driven as a person would drive it: the local runtime on free ports, and headless Chromium
(Debian's, at /usr/bin/chromium; Playwright downloads no browser) through Playwright's sync API."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from datetime import date
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from local.runtime import WEB_DIR, LocalRuntime, RuntimeConfig

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
API_KEY = "browser-key"


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -r requirements.txt)"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="package")
def runtime() -> Iterator[LocalRuntime]:
    """Sales around 2021-01-01 (with the week before, for the comparison) and around Christmas 2021,
    when the stores close: a report on 2021-12-25 fails with NO_DATA."""
    config = RuntimeConfig(
        api_port=0,
        ws_port=0,
        api_keys={API_KEY: "tenant-browser"},
        seed=(date(2020, 12, 18), date(2021, 1, 8)),
        parameters={"LogLevel": "WARNING"},
        poll_seconds=1,
    )
    with LocalRuntime(config) as started:
        started.seed(date(2021, 12, 18), date(2021, 12, 31))
        yield started


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh context per test: nothing remembered in localStorage from another test."""
    context = browser.new_context(accept_downloads=True)
    context.set_default_timeout(30_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


class StaticSite:
    """web/ served by a plain file server on another port (so another origin), with a config.json
    naming the API, as an S3 bucket or CloudFront would serve the page."""

    def __init__(self, root: Path, config: dict[str, Any]) -> None:
        import json

        shutil.copytree(WEB_DIR, root, dirs_exist_ok=True)
        (root / "config.json").write_text(json.dumps(config))

        class Quiet(SimpleHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Nothing: pytest shows the runtime's own request lines."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(root)))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="static-site", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def static_site(tmp_path: Path, runtime: LocalRuntime) -> Iterator[StaticSite]:
    site = StaticSite(tmp_path / "site", {"apiUrl": runtime.api_url})
    yield site
    site.close()
