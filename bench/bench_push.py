"""How soon each push channel learns of a change, through the local runtime: from the status write
(the report's ``completedAt``) to the WebSocket message, and to the callback's arrival at a receiver
on 127.0.0.1. Prints ``name: value unit`` lines."""

from __future__ import annotations

import json
import logging
import statistics
import sys
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import requests  # noqa: E402
from _figures import figure  # noqa: E402
from _local_runtime import KEY, bench_config  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from local.runtime import LocalRuntime  # noqa: E402

REPORTS = 8


def main() -> int:
    logging.basicConfig(level=logging.ERROR)
    arrivals: dict[str, float] = {}

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            arrivals[body["data"]["id"]] = time.time()
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            """Quiet."""

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    callback = f"http://127.0.0.1:{receiver.server_address[1]}/hook"

    config = bench_config()
    to_websocket, to_webhook = [], []
    with LocalRuntime(config) as runtime:
        session = requests.Session()
        session.headers["x-api-key"] = KEY
        for index in range(REPORTS + 1):
            body = {"reportType": "COFFEE_SALES", "reportDate": "2021-01-05", "callbackUrl": callback}
            report = session.post(f"{runtime.api_url}/api/v1/report", json=body, timeout=30).json()
            with connect(report["_links"]["websocket"]["href"]) as ws:
                while True:
                    message = json.loads(ws.recv(timeout=60))
                    if message["report"]["status"] == "COMPLETED":
                        seen = time.time()
                        completed = datetime.fromisoformat(message["report"]["completedAt"].replace("Z", "+00:00"))
                        break
            deadline = time.time() + 60
            while report["id"] not in arrivals and time.time() < deadline:
                time.sleep(0.005)
            if report["id"] not in arrivals:
                print(f"error: no webhook for report {report['id']} within 60 s", file=sys.stderr)
                return 1
            if index == 0:
                continue  # warm-up: the first render imports matplotlib
            to_websocket.append(seen - completed.timestamp())
            to_webhook.append(arrivals[report["id"]] - completed.timestamp())
    receiver.shutdown()
    figure("push_status_to_websocket_s", statistics.median(to_websocket), "s", note=f"median of {REPORTS}")
    figure("push_status_to_webhook_s", statistics.median(to_webhook), "s", note=f"median of {REPORTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
