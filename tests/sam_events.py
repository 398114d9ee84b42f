"""Sample events as ``sam local generate-event`` makes them: the reference our Lambda-shaped events are
held to. The SAM CLI is a development requirement (``requirements.txt``), installed next to this Python.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

SAM = Path(sys.executable).parent / "sam"


@cache
def _generated(service: str, event: str) -> str:
    result = subprocess.run(
        [str(SAM), "local", "generate-event", service, event],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=os.environ | {"SAM_CLI_TELEMETRY": "0"},
    )
    return result.stdout


def generate_event(service: str, event: str) -> dict[str, Any]:
    """``sam local generate-event SERVICE EVENT``, parsed (a fresh copy each call; the CLI runs once)."""
    generated: dict[str, Any] = json.loads(_generated(service, event))
    return generated
