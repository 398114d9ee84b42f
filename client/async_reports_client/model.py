"""The report resource as the API returns it (DESIGN.md), with typed accessors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FINAL_STATUSES = frozenset({"COMPLETED", "FAILED"})


@dataclass(frozen=True)
class Report:
    """One state of a report. ``data`` is the resource exactly as sent; ``etag`` and
    ``retry_after`` come from the response headers when it was fetched over HTTP."""

    data: dict[str, Any]
    etag: str | None = None
    retry_after: float | None = field(default=None, compare=False)

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def status(self) -> str:
        return str(self.data.get("status", ""))

    @property
    def report_type(self) -> str:
        return str(self.data.get("reportType", ""))

    @property
    def report_date(self) -> str:
        return str(self.data.get("reportDate", ""))

    @property
    def version(self) -> int:
        """Grows with every change; 0 when the server does not send it."""
        return int(self.data.get("version") or 0)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def completed(self) -> bool:
        return self.status == "COMPLETED"

    @property
    def failed(self) -> bool:
        return self.status == "FAILED"

    @property
    def step(self) -> str | None:
        progress = self.data.get("progress") or {}
        return str(progress["step"]) if progress.get("step") else None

    @property
    def percent(self) -> int | None:
        progress = self.data.get("progress") or {}
        value = progress.get("percent")
        if value is None:
            return 100 if self.completed else None
        return int(value)

    @property
    def pdf_uri(self) -> str | None:
        return self.data.get("pdfUri")

    @property
    def error(self) -> dict[str, str] | None:
        error = self.data.get("error")
        return dict(error) if error else None

    def link(self, name: str) -> str | None:
        href = ((self.data.get("_links") or {}).get(name) or {}).get("href")
        return str(href) if href else None

    @property
    def suggested_filename(self) -> str:
        return f"{self.report_type.lower().replace('_', '-')}-{self.report_date}.pdf"
