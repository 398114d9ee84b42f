"""How every benchmark reports: ``name: value unit`` on stdout, one per line and nothing else, so
runs can be compared by machine; what a figure means goes to stderr beside it."""

from __future__ import annotations

import sys


def figure(name: str, value: float, unit: str, *, digits: int = 3, note: str = "") -> None:
    print(f"{name}: {value:.{digits}f} {unit}", flush=True)
    if note:
        print(f"#   {name}: {note}", file=sys.stderr, flush=True)
