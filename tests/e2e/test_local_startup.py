"""``python -m local`` driven only by the template: renamed resources still serve, every start-up
mistake is a message and exit status 2 (never a traceback), and Ctrl-C while starting stops cleanly."""

from __future__ import annotations

import base64
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
import requests

from tests.e2e.test_run_command import ROOT, free_port, read_until, start

TEMPLATE = ROOT / "template.yaml"
RENAMES = {
    "ReportsApi": "ServiceApi",
    "WebSocketApi": "WatchApi",
    "SalesBucket": "OrdersBucket",
    "WebhookSigningSecret": "CallbackSigningKey",
    "WebSocketTokenSecret": "WatchTokenKey",
}


def template_copy(tmp_path: Path, change: Callable[[str], str]) -> Path:
    """template.yaml, changed as text (its tags survive), saved as tmp_path/template.yaml."""
    text = TEMPLATE.read_text()
    changed = change(text)
    assert changed != text, "the change did not apply: has template.yaml changed shape?"
    path = tmp_path / "template.yaml"
    path.write_text(changed)
    return path


def renamed(text: str) -> str:
    for old, new in RENAMES.items():
        text = re.sub(rf"\b{old}\b", new, text)
    return text


def run_to_exit(env: dict[str, str], timeout: float = 120) -> tuple[int, str]:
    process = start({"LOCAL_API_PORT": "0", "LOCAL_WS_PORT": "0", "LOCAL_SEED": "none", **env})
    try:
        output, _ = process.communicate(timeout=timeout)
    finally:
        process.kill()
    return process.returncode, output


# -- the template's names are the only names ------------------------------------------------------


def test_a_template_with_renamed_apis_bucket_and_secrets_starts_and_completes_a_report(tmp_path: Path) -> None:
    # GIVEN the template with its REST API, WebSocket API, sales bucket and secrets renamed
    path = template_copy(tmp_path, renamed)
    secret = "whsec_" + base64.b64encode(b"a key of this test").decode()
    api_port, ws_port = free_port(), free_port()
    process = start(
        {
            "LOCAL_TEMPLATE": str(path),
            "LOCAL_API_PORT": str(api_port),
            "LOCAL_WS_PORT": str(ws_port),
            "LOCAL_SEED": "2021-01-01:2021-01-01",
            "LOCAL_API_KEYS": "k1=tenant-1",
            "WEBHOOK_SECRET": secret,
        }
    )
    try:
        banner = read_until(process, "Ctrl-C stops it.", timeout=120)
        # THEN it serves the routes of the renamed API, the WebSocket API, and signs with the key given
        assert f"REST API     http://127.0.0.1:{api_port}/api/v1/report" in banner
        assert f"WebSocket    ws://127.0.0.1:{ws_port}" in banner
        assert f"signed with {secret}" in banner
        aws = re.search(r"AWS \(moto\)\s+(\S+)", banner)
        assert aws is not None, banner

        # WHEN a report is submitted and followed
        headers = {"x-api-key": "k1"}
        created = requests.post(
            f"http://127.0.0.1:{api_port}/api/v1/report",
            headers=headers,
            json={"reportType": "COFFEE_SALES", "reportDate": "2021-01-01"},
            timeout=30,
        )
        assert created.status_code == 201, created.text
        report = created.json()
        deadline = time.monotonic() + 90
        while report["status"] not in ("COMPLETED", "FAILED") and time.monotonic() < deadline:
            time.sleep(0.5)
            url = f"http://127.0.0.1:{api_port}{report['_links']['self']['href']}"
            report = requests.get(url, headers=headers, timeout=30).json()

        # THEN it completes, its watch link is the renamed WebSocket API served here, and the
        # renamed secrets exist under their own names, the webhook one holding the key given
        assert report["status"] == "COMPLETED", report
        assert report["_links"]["websocket"]["href"].startswith(f"ws://127.0.0.1:{ws_port}?")
        secrets = boto3.client(
            "secretsmanager",
            endpoint_url=aws[1],
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        names = {entry["Name"]: entry["ARN"] for entry in secrets.list_secrets()["SecretList"]}
        assert sorted(name.rsplit("-", 1)[0] for name in names) == ["CallbackSigningKey", "WatchTokenKey"]
        signing = next(arn for name, arn in names.items() if name.startswith("CallbackSigningKey-"))
        assert secrets.get_secret_value(SecretId=signing)["SecretString"] == "a key of this test"
        process.send_signal(signal.SIGINT)
        output = stopped_output(process)
    finally:
        process.kill()
    assert process.returncode == 0, output
    assert "Traceback" not in banner + output


def stopped_output(process: subprocess.Popen[str], timeout: float = 90) -> str:
    """What the process printed until it exited; a failure showing it, if it does not exit in time."""
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"still running {timeout:g} s after Ctrl-C; it printed:\n{output}")
    return output


# -- start-up mistakes: a message and exit status 2 ----------------------------------------------


def _broken_variable(text: str) -> str:
    added = r"\1        BROKEN: !GetAtt ReportsTable.Nope\n"
    return re.sub(r"(Globals:.*?Variables:\n)", added, text, count=1, flags=re.S)


def _missing_queue(text: str) -> str:
    return text.replace("Queue: !GetAtt JobsQueue.Arn", "Queue: !GetAtt NoSuchQueue.Arn", 1)


def _table_moto_refuses(text: str) -> str:
    """ReportsTable keyed on an attribute it does not define."""
    return re.sub(r"(ReportsTable:.*?KeySchema:\s*\n\s*- AttributeName: )id", r"\1undefined", text, count=1, flags=re.S)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_broken_variable, "variable BROKEN: AWS::DynamoDB::Table has no attribute Nope"),
        (_missing_queue, "SQS event"),
        (_table_moto_refuses, "moto could not create ReportsTable (AWS::DynamoDB::Table)"),
    ],
    ids=["unknown-attribute", "sqs-event-without-its-queue", "table-moto-refuses"],
)
def test_a_template_mistake_is_a_message_naming_it_and_exit_status_2(
    tmp_path: Path, change: Callable[[str], str], expected: str
) -> None:
    code, output = run_to_exit({"LOCAL_TEMPLATE": str(template_copy(tmp_path, change))})
    assert code == 2, output
    assert expected in output
    assert "fix template.yaml" in output
    assert "Traceback" not in output


def test_the_sqs_event_message_names_the_queue_it_cannot_find(tmp_path: Path) -> None:
    code, output = run_to_exit({"LOCAL_TEMPLATE": str(template_copy(tmp_path, _missing_queue))})
    assert code == 2
    assert "names NoSuchQueue, which is not in the template, not a AWS::SQS::Queue" in output


def test_an_unknown_parameter_override_is_refused_naming_it() -> None:
    code, output = run_to_exit({"LOCAL_PARAMETERS": "LogLevel=DEBUG NoSuchParameter=1"})
    assert code == 2, output
    assert "parameter NoSuchParameter is not declared in template.yaml" in output
    assert "Traceback" not in output


def test_a_parameter_value_the_template_forbids_is_refused_naming_it() -> None:
    code, output = run_to_exit({"LOCAL_PARAMETERS": "LogLevel=LOUD"})
    assert code == 2, output
    assert "parameter LogLevel='LOUD' is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL" in output


def test_missing_packages_are_named_with_how_to_install_them_before_anything_imports_them() -> None:
    # GIVEN a Python where moto's server (flask) and the client package cannot be imported, as
    # Python itself refuses a module whose sys.modules entry is None
    blocked = (
        "import runpy, sys; sys.modules['flask'] = None; sys.modules['async_reports_client'] = None; "
        "runpy.run_module('local', run_name='__main__', alter_sys=True)"
    )
    process = subprocess.run(
        [sys.executable, "-c", blocked],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "LOCAL_API_PORT": "0", "LOCAL_WS_PORT": "0"},
    )
    output = process.stdout + process.stderr
    assert process.returncode == 2, output
    assert "missing Python packages: flask (moto[server]), async-reports-client (client/)" in output
    assert "make install" in output
    assert "Traceback" not in output


# -- Ctrl-C while starting -------------------------------------------------------------------------


@pytest.mark.parametrize("moment", ["starting", "seeding"])
def test_ctrl_c_before_ready_stops_cleanly_with_status_130(moment: str) -> None:
    # GIVEN the runtime starting with all the sample sales to seed (which takes a while)
    api_port = free_port()
    process = start({"LOCAL_API_PORT": str(api_port), "LOCAL_WS_PORT": "0", "LOCAL_SEED": ""})
    try:
        # WHEN Ctrl-C comes as it starts (moto, the stack) or while it seeds
        seen = read_until(process, "Starting async-reports" if moment == "starting" else "seeding s3://")
        if moment == "starting":
            time.sleep(1.5)
        process.send_signal(signal.SIGINT)
        output = seen + stopped_output(process)
    finally:
        process.kill()
    # THEN it stops: no traceback, "Stopped.", 130, and the API's port is free again
    assert process.returncode == 130, output
    assert "Stopped." in output
    assert "Ready in" not in output
    assert "Traceback" not in output
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", api_port))
