"""The catalog of report types.

A report type is one module in ``reports/report_types/`` that defines ``DEFINITION``. The catalog
discovers them, so adding a type is adding one module. The API functions use the catalog to
validate requests, so a report-type module must stay light at import time: it imports matplotlib
and reportlab (through ``reports.render``) inside its ``render`` function, never at module level.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from reports.sales import SaleRecord


class ProgressCallback(Protocol):
    """Called by a renderer as it moves through its steps; ``percent`` only ever grows."""

    def __call__(self, step: str, percent: int) -> None: ...


@dataclass(frozen=True)
class RenderInput:
    """Everything a renderer needs; it never talks to AWS itself."""

    report_id: str
    report_date: date
    start: date
    end: date
    records: Sequence[SaleRecord]
    generated_at: datetime
    progress: ProgressCallback = field(default=lambda step, percent: None)


@dataclass(frozen=True)
class ReportDefinition:
    """What the catalog knows about one report type."""

    name: str
    title: str
    description: str
    period: Callable[[date], tuple[date, date]]
    """Inclusive range of sales days the report for ``reportDate`` needs."""
    render: Callable[[RenderInput], bytes]
    """Returns the PDF; raises ``NoDataError`` when the records cannot make a report."""
    expected_seconds: float = 5.0
    """Hint for ``Retry-After`` until real durations of this type have been measured."""


def _load() -> dict[str, ReportDefinition]:
    from reports import report_types

    found: dict[str, ReportDefinition] = {}
    for module_info in sorted(pkgutil.iter_modules(report_types.__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{report_types.__name__}.{module_info.name}")
        definition = getattr(module, "DEFINITION", None)
        if not isinstance(definition, ReportDefinition):
            raise TypeError(f"{module.__name__} must define DEFINITION = ReportDefinition(...)")
        if definition.name in found:
            raise ValueError(f"report type {definition.name} is defined twice")
        found[definition.name] = definition
    return found


@cache
def report_definitions() -> Mapping[str, ReportDefinition]:
    """All report types by name, discovered once per process."""
    return _load()


def get_definition(name: str) -> ReportDefinition | None:
    return report_definitions().get(name)
