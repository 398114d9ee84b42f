"""The local runtime started once for the e2e tests, on free ports, driven over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
import requests

from local.runtime import LocalRuntime, RuntimeConfig

KEY_A, KEY_B = "e2e-key-a", "e2e-key-b"


@pytest.fixture(scope="package")
def runtime() -> Iterator[LocalRuntime]:
    """Package scope: the runtime points this process's boto3 at its moto server, so it must be
    gone before the functional tests (which use moto's in-process mock) run."""
    config = RuntimeConfig(
        api_port=0,
        ws_port=0,
        api_keys={KEY_A: "tenant-a", KEY_B: "tenant-b"},
        seed=(date(2020, 12, 18), date(2021, 1, 8)),
        # A usage plan tight enough that the burst test really meets the throttle.
        parameters={"LogLevel": "WARNING", "ApiRateLimit": "5", "ApiBurstLimit": "10"},
        poll_seconds=1,
    )
    with LocalRuntime(config) as started:
        yield started


class Client:
    """A plain HTTP client for the API, as a user's code would hold one."""

    def __init__(self, base_url: str, api_key: str | None) -> None:
        self.base_url = base_url
        self.throttled = 0
        self.session = requests.Session()
        if api_key:
            self.session.headers["x-api-key"] = api_key

    def post(self, body: Any = None, *, data: bytes | None = None, **kwargs: Any) -> requests.Response:
        json_body = body if data is None else None
        return self._send("POST", "/api/v1/report", json=json_body, data=data, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self._send("GET", path, **kwargs)

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Sends, and after a 429 waits what ``Retry-After`` says and sends again, as clients should."""
        while True:
            response = self.session.request(method, f"{self.base_url}{path}", timeout=30, **kwargs)
            if response.status_code != 429:
                return response
            assert response.headers["Content-Type"] == "application/problem+json"
            self.throttled += 1
            time.sleep(float(response.headers["Retry-After"]))

    def wait(self, location: str, *, timeout: float = 60) -> dict[str, Any]:
        """Poll until final, sleeping what Retry-After says (never a fixed interval)."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.get(location)
            response.raise_for_status()
            report: dict[str, Any] = response.json()
            if report["status"] in ("COMPLETED", "FAILED"):
                return report
            assert time.monotonic() < deadline, f"{location} still {report['status']} after {timeout} s"
            time.sleep(float(response.headers["Retry-After"]))


@pytest.fixture(scope="package")
def client(runtime: LocalRuntime) -> Client:
    return Client(runtime.api_url, KEY_A)


@pytest.fixture(scope="package")
def other_tenant(runtime: LocalRuntime) -> Client:
    return Client(runtime.api_url, KEY_B)
