"""The catalog finds the report types, and importing it stays light enough for the API functions."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

from reports.catalog import ReportDefinition, get_definition, report_definitions

ROOT = Path(__file__).resolve().parents[2]


def test_the_catalog_discovers_both_sales_reports() -> None:
    # WHEN the catalog is asked for its report types
    definitions = report_definitions()
    # THEN the daily and monthly reports are there, keyed by name, and helpers are not
    assert set(definitions) >= {"COFFEE_SALES", "COFFEE_SALES_MONTHLY"}
    assert all(isinstance(definition, ReportDefinition) for definition in definitions.values())
    assert all(name == definition.name for name, definition in definitions.items())
    assert get_definition("_sales_tables") is None


def test_the_daily_report_covers_its_day_and_the_same_weekday_a_week_before() -> None:
    definition = get_definition("COFFEE_SALES")
    assert definition is not None
    assert definition.period(date(2021, 1, 8)) == (date(2021, 1, 1), date(2021, 1, 8))


def test_the_monthly_report_covers_its_month_and_the_six_days_its_first_average_needs() -> None:
    definition = get_definition("COFFEE_SALES_MONTHLY")
    assert definition is not None
    assert definition.period(date(2021, 2, 14)) == (date(2021, 1, 26), date(2021, 2, 28))
    assert definition.period(date(2020, 2, 1)) == (date(2020, 1, 26), date(2020, 2, 29))


def test_importing_the_catalog_loads_no_rendering_library() -> None:
    # GIVEN a fresh interpreter, as an API function's cold start
    script = (
        "import json, sys\n"
        "from reports.catalog import report_definitions\n"
        "names = sorted(report_definitions())\n"
        "heavy = sorted(m for m in ('matplotlib', 'reportlab', 'numpy', 'PIL') if m in sys.modules)\n"
        "print(json.dumps({'names': names, 'heavy': heavy}))\n"
    )
    # WHEN it imports the catalog and discovers every report type
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={"PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    # THEN neither matplotlib, reportlab nor numpy has been imported
    found = json.loads(result.stdout)
    assert "COFFEE_SALES" in found["names"]
    assert found["heavy"] == []
