"""The CLI's progress display: one redrawn bar on a terminal, one line per change otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from async_reports_client.model import Report


class ProgressBar:
    def __init__(self, stream: TextIO | None = None, *, width: int = 28, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.enabled = enabled
        self.interactive = enabled and self.stream.isatty()
        self.started = time.monotonic()
        self._drawn = False

    def __call__(self, report: Report) -> None:
        if not self.enabled:
            return
        percent = report.percent if report.percent is not None else 0
        filled = round(self.width * percent / 100)
        bar = "#" * filled + "-" * (self.width - filled)
        label = report.step or report.status.lower()
        if report.failed and report.error:
            label = f"{report.error.get('code')}: {report.error.get('message')}"
        elapsed = time.monotonic() - self.started
        line = f"[{bar}] {percent:3d}%  {report.status:<9} {label}  ({elapsed:.1f} s)"
        if self.interactive:
            self.stream.write("\r\x1b[2K" + line)
            self._drawn = True
            if report.is_final:
                self.close()
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
