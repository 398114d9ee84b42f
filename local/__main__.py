"""``make run``: serve template.yaml on this machine until Ctrl-C.

LOCAL_API_PORT=3000 LOCAL_WS_PORT=3001 LOCAL_API_KEYS=local-dev-key=local python -m local
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from async_reports_client.defaults import LOCAL_API_KEY, LOCAL_API_URL
from local.runtime import LocalRuntime, LocalRuntimeError, RuntimeConfig


def _cli_command(api_url: str, key: str) -> str:
    """How to call the CLI against this runtime: bare when it is on the defaults."""
    command = os.path.relpath(Path(sys.executable).with_name("async-reports"))
    if api_url != LOCAL_API_URL:
        command += f" --url {api_url}"
    if key != LOCAL_API_KEY:
        command += f" --api-key {key}"
    return command


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)-12s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("werkzeug", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        config = RuntimeConfig.from_environment()
        began = time.perf_counter()
        seeding = f"seeding sales {config.seed[0]} to {config.seed[1]}" if config.seed else "no sales data"
        print(f"Starting async-reports locally ({seeding}; LOCAL_SEED changes it) ...", flush=True)
        runtime = LocalRuntime(config)
        runtime.start()
    except LocalRuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    key = next(iter(config.api_keys))
    cli = _cli_command(runtime.api_url, key)
    websocket = f"  WebSocket    {runtime.ws_url}   (@connections on the same port)\n" if runtime.ws_url else ""
    print(
        f"Ready in {time.perf_counter() - began:.1f} s.\n"
        f"  REST API     {runtime.api_url}/api/v1/report\n"
        f"  API key      {key}   (header x-api-key; LOCAL_API_KEYS sets others)\n"
        f"{websocket}"
        f"  AWS (moto)   {runtime.aws_endpoint}\n"
        f"  Webhooks     signed with {os.environ['WEBHOOK_SECRET']}\n"
        "               (WEBHOOK_SECRET sets it; callbacks to 127.0.0.1 are allowed here)\n"
        f"Try:\n"
        f"  open {runtime.api_url}/ in a browser (submit, live progress, the PDF)\n"
        f"  {cli} submit --type COFFEE_SALES --date 2021-01-01 --wait --via websocket --output r.pdf\n"
        f"  curl -si -X POST {runtime.api_url}/api/v1/report -H 'x-api-key: {key}' "
        '-H \'Content-Type: application/json\' -d \'{"reportType": "COFFEE_SALES", "reportDate": "2021-01-01"}\'\n'
        "Ctrl-C stops it.",
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        stopped.wait()
    print("\nStopping ...", flush=True)
    runtime.stop()
    print("Stopped.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
