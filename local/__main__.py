"""``make run``: serve template.yaml on this machine until Ctrl-C.

LOCAL_API_PORT=3000 LOCAL_WS_PORT=3001 LOCAL_API_KEYS=local-dev-key=local python -m local

``LOCAL_PARAMETERS="LogLevel=DEBUG StageName=v2"`` overrides template parameters (as
``sam deploy --parameter-overrides`` does); unset, the functions log at ``LogLevel=WARNING``.
``LOCAL_TEMPLATE=path/to/template.yaml`` serves another template than the checkout's.

Only the standard library and ``local`` itself are imported before the packages are checked, so a
missing one is a message saying how to install it, not a traceback. Ctrl-C while starting stops what
was started and exits 130; Ctrl-C once ready stops and exits 0.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from local import INSTALL_HINT, missing_packages


def _cli_command(api_url: str, key: str) -> str:
    """How to call the CLI against this runtime: bare when it is on the defaults."""
    from async_reports_client.defaults import LOCAL_API_KEY, LOCAL_API_URL

    command = os.path.relpath(Path(sys.executable).with_name("async-reports"))
    if api_url != LOCAL_API_URL:
        command += f" --url {api_url}"
    if key != LOCAL_API_KEY:
        command += f" --api-key {key}"
    return command


def _banner(runtime: Any, key: str, began: float) -> str:
    api = runtime.api_url
    routes = runtime.routes
    # The route to submit to: the template's POST without path parameters (the first, if several).
    submit = next((path for method, path in routes if method == "POST" and "{" not in path), None)
    websocket = f"  WebSocket    {runtime.ws_url}   (@connections on the same port)\n" if runtime.ws_url else ""
    listed = ", ".join(f"{method} {path}" for method, path in routes) or "none"
    lines = [
        f"Ready in {time.perf_counter() - began:.1f} s.",
        f"  REST API     {api}{submit or ''}",
        f"  Routes       {listed}",
        f"  API key      {key}   (header x-api-key; LOCAL_API_KEYS sets others)",
        *([websocket.rstrip("\n")] if websocket else []),
        f"  AWS (moto)   {runtime.aws_endpoint}",
        f"  Webhooks     signed with {runtime.webhook_secret}",
        "               (WEBHOOK_SECRET sets it; callbacks to 127.0.0.1 are allowed here)",
        "Try:",
        f"  open {api}/ in a browser (submit, live progress, the PDF)",
        f"  {_cli_command(api, key)} submit --type COFFEE_SALES --date 2021-01-01 --wait --via websocket"
        " --output r.pdf",
    ]
    if submit:
        lines.append(
            f"  curl -si -X POST {api}{submit} -H 'x-api-key: {key}' -H 'Content-Type: application/json' "
            '-d \'{"reportType": "COFFEE_SALES", "reportDate": "2021-01-01"}\''
        )
    lines.append("Ctrl-C stops it.")
    return "\n".join(lines)


def main() -> int:
    missing = missing_packages()
    if missing:
        print(f"error: missing Python packages: {', '.join(missing)}; {INSTALL_HINT}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)-12s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("werkzeug", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    received: list[int] = []

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        # The first Ctrl-C (or SIGTERM) stops; any more while stopping are ignored, so stopping finishes.
        received.append(signum)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    runtime: Any = None
    ready = False
    try:
        from local.runtime import LocalRuntime, LocalRuntimeError, RuntimeConfig

        try:
            config = RuntimeConfig.from_environment()
            began = time.perf_counter()
            seeding = f"seeding sales {config.seed[0]} to {config.seed[1]}" if config.seed else "no sales data"
            print(f"Starting async-reports locally ({seeding}; LOCAL_SEED changes it) ...", flush=True)
            runtime = LocalRuntime(config)
            runtime.start()  # on an error or Ctrl-C, it stops what it had started before raising
        except LocalRuntimeError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(_banner(runtime, next(iter(config.api_keys)), began), flush=True)
        ready = True
        threading.Event().wait()  # until a signal raises KeyboardInterrupt
    except KeyboardInterrupt:
        print("\nStopping ..." if ready else "\nStopping before it was ready ...", flush=True)
        if runtime is not None:
            runtime.stop()  # again, if start() already did: stopping twice is harmless
        print("Stopped.", flush=True)
        return 0 if ready else 128 + (received[0] if received else signal.SIGINT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
