"""``make run`` as a user meets it: ``python -m local`` starts, serves, and stops cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "local"],
        cwd=ROOT,
        env={**os.environ, **env},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def read_until(process: subprocess.Popen[str], marker: str, timeout: float = 60) -> str:
    assert process.stdout is not None
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"{marker!r} never appeared; output:\n{''.join(seen)}")


@pytest.fixture
def port() -> int:
    return free_port()


def test_run_serves_the_api_and_stops_cleanly_on_ctrl_c(port: int) -> None:
    # GIVEN
    process = start(
        {
            "LOCAL_API_PORT": str(port),
            "LOCAL_WS_PORT": str(free_port()),
            "LOCAL_SEED": "none",
            "LOCAL_API_KEYS": "k1=tenant-1",
        }
    )
    try:
        banner = read_until(process, "Ctrl-C stops it.")
        assert f"http://127.0.0.1:{port}/api/v1/report" in banner
        assert "API key      k1" in banner
        # (and how to drive it with the CLI, flags included since the port and key are not the defaults)
        assert f"async-reports --url http://127.0.0.1:{port} --api-key k1 submit" in banner
        # WHEN a client uses it
        response = requests.post(
            f"http://127.0.0.1:{port}/api/v1/report",
            headers={"x-api-key": "k1"},
            json={"reportType": "COFFEE_SALES", "reportDate": "2021-01-01"},
            timeout=30,
        )
        assert response.status_code == 201
        # AND the user presses Ctrl-C
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    finally:
        process.kill()
    # THEN it logged the request and the invocation, stopped, exited 0, and freed the port
    assert process.returncode == 0
    assert "POST /api/v1/report -> 201 Created in" in output
    assert "SubmitFunction" in output
    assert "Stopped." in output
    with socket.socket() as probe:  # as a restart would bind it (TIME_WAIT from the client may linger)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))


def test_run_refuses_a_port_in_use_with_a_fix(port: int) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        process = start({"LOCAL_API_PORT": str(port), "LOCAL_WS_PORT": str(free_port()), "LOCAL_SEED": "none"})
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in output
    assert "LOCAL_API_PORT" in output


def test_run_refuses_a_malformed_seed_range() -> None:
    process = start({"LOCAL_SEED": "last-tuesday", "LOCAL_WS_PORT": "0"})
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "LOCAL_SEED must be none or FIRST:LAST" in output
