"""Render benchmark: the daily and monthly reports against a naive baseline, and a cold process.

    python bench/bench_render.py [--repeats 15] [--cold 5]

Prints one figure per line as ``name: value unit`` (see bench/README.md). Every figure is measured
in the same run as its baseline, repetitions interleaved (ABAB...) so that load from elsewhere on
the machine hits both alike, and reported as medians. Numbers, not pass/fail: budgets are checked
by reading them, never by timed tests.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from _figures import figure  # noqa: E402

from reports.catalog import RenderInput, report_definitions  # noqa: E402
from reports.sales import SaleRecord, decode_day, encode_day, generate_day  # noqa: E402

REPORT_DATE = date(2021, 1, 1)
REPORT_ID = "01BENCH0000000000000000000"

_COLD_CHILD = """
import importlib.util, sys, time
from datetime import UTC, date, datetime
from pathlib import Path

if importlib.util.find_spec("handlers") and importlib.util.find_spec("handlers.process"):
    import handlers.process  # noqa: F401  (what the Process function's cold start imports)
from reports.catalog import RenderInput, report_definitions
from reports.sales import decode_day

folder, day = Path(sys.argv[1]), date.fromisoformat(sys.argv[2])
definition = report_definitions()["COFFEE_SALES"]
start, end = definition.period(day)
records = [r for path in sorted(folder.glob("*.csv.gz")) for r in decode_day(path.read_bytes())]
pdf = definition.render(RenderInput("01COLD", day, start, end, records, datetime.now(UTC)))
assert pdf.startswith(b"%PDF"), "not a PDF"
print(f"rendered_at={time.time()!r}", flush=True)
"""
_BARE_CHILD = 'import time; print(f"rendered_at={time.time()!r}", flush=True)'
_IMPORT_FLOOR_CHILD = """
import importlib.util, time

if importlib.util.find_spec("handlers") and importlib.util.find_spec("handlers.process"):
    import handlers.process  # noqa: F401
import matplotlib.figure, matplotlib.backends.backend_agg, reportlab.platypus  # noqa: E401, F401

print(f"rendered_at={time.time()!r}", flush=True)
"""


def days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]


def stored_records(start: date, end: date) -> list[SaleRecord]:
    """The records as the Process function gets them: generated, encoded to gz CSV, decoded."""
    return [record for day in days(start, end) for record in decode_day(encode_day(generate_day(day)))]


def full_render(name: str, day: date) -> Callable[[], bytes]:
    definition = report_definitions()[name]
    start, end = definition.period(day)
    data = RenderInput(REPORT_ID, day, start, end, stored_records(start, end), datetime.now(UTC))
    return lambda: definition.render(data)


def naive_render(day: date) -> Callable[[], bytes]:
    """The baseline of the issue: one pyplot bar chart as a 150-dpi PNG in a one-page SimpleDocTemplate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Image, Paragraph, SimpleDocTemplate

    records = stored_records(day, day)

    def render() -> bytes:
        revenue: dict[str, int] = {}
        for record in records:
            revenue[record.product] = revenue.get(record.product, 0) + record.total_cents
        figure, ax = plt.subplots()
        ax.bar(list(revenue), [cents / 100 for cents in revenue.values()])
        png = io.BytesIO()
        figure.savefig(png, format="png", dpi=150)
        plt.close(figure)
        png.seek(0)
        output = io.BytesIO()
        story = [Paragraph(f"Sales {day}", getSampleStyleSheet()["Title"]), Image(png, width=480, height=360)]
        SimpleDocTemplate(output, pagesize=A4).build(story)
        return output.getvalue()

    return render


def interleaved(candidates: Sequence[Callable[[], object]], repeats: int) -> list[float]:
    """Median seconds of each candidate, run in turn (order reversed every round) after one warm-up each."""
    for candidate in candidates:
        candidate()
    times: list[list[float]] = [[] for _ in candidates]
    order = list(range(len(candidates)))
    for _ in range(repeats):
        for index in order:
            began = time.perf_counter()
            candidates[index]()
            times[index].append(time.perf_counter() - began)
        order.reverse()
    return [statistics.median(samples) for samples in times]


LAMBDA_SITE = ROOT / ".bench" / "lambda-site"
LAMBDA_REQUIREMENTS = (ROOT / "src" / "requirements.txt", ROOT / "layers" / "render" / "requirements.txt")


def lambda_site() -> Path:
    """What ProcessFunction's package and layer hold, for this machine's architecture: installed once
    with ``pip --target`` from the same requirement files ``sam build`` reads, reinstalled when they change.
    The dev venv would overstate a cold start (awscrt, cryptography and more come with aws-sam-cli)."""
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in LAMBDA_REQUIREMENTS)).hexdigest()
    stamp = LAMBDA_SITE / ".requirements-sha256"
    if not stamp.exists() or stamp.read_text() != digest:
        shutil.rmtree(LAMBDA_SITE, ignore_errors=True)
        requirements = [arg for path in LAMBDA_REQUIREMENTS for arg in ("-r", str(path))]
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(LAMBDA_SITE), *requirements],
            check=True,
        )
        stamp.write_text(digest)
    return LAMBDA_SITE


def lambda_command(code: str, *args: str) -> list[str]:
    """The base interpreter with ``-S``: no site-packages but the Lambda site on PYTHONPATH."""
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    return [str(base), "-S", "-c", code, *args]


def lambda_environment(config_dir: str) -> dict[str, str]:
    """A fresh /tmp (empty MPLCONFIGDIR) and the variables that make Powertools' Tracer patch as in Lambda."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "MPLCONFIGDIR": config_dir,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(lambda_site())]),
        "LAMBDA_TASK_ROOT": str(ROOT / "src"),
        "AWS_LAMBDA_FUNCTION_NAME": "ProcessFunction",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "async-reports",
        "POWERTOOLS_METRICS_NAMESPACE": "AsyncReports",
    }


def cold_process(folder: Path, day: date) -> float:
    """Seconds from spawning a fresh interpreter (empty MPLCONFIGDIR) until it has imported everything and rendered.

    Timed to the child's own "rendered" stamp, not to its exit: Lambda keeps the process after the first
    invocation, so interpreter teardown (~0.3 s with botocore and X-Ray loaded) is no part of a cold start.
    """
    with tempfile.TemporaryDirectory(prefix="mplconfig-") as config_dir:
        command = lambda_command(_COLD_CHILD, str(folder), day.isoformat())
        return _time_to_stamp(command, lambda_environment(config_dir))


def bare_process() -> float:
    """The same measurement for an interpreter that does nothing."""
    return _time_to_stamp(lambda_command(_BARE_CHILD), {"PATH": os.environ.get("PATH", "/usr/bin:/bin")})


def import_floor_process() -> float:
    """The same measurement for a child that only imports what a render cannot avoid (and renders nothing)."""
    with tempfile.TemporaryDirectory(prefix="mplconfig-") as config_dir:
        return _time_to_stamp(lambda_command(_IMPORT_FLOOR_CHILD), lambda_environment(config_dir))


def _time_to_stamp(command: list[str], env: dict[str, str]) -> float:
    began = time.time()
    result = subprocess.run(command, env=env, cwd=ROOT, check=True, capture_output=True, text=True)
    stamps = [line.split("=", 1)[1] for line in result.stdout.splitlines() if line.startswith("rendered_at=")]
    if not stamps:
        raise RuntimeError(f"child printed no rendered_at stamp; stderr: {result.stderr[-2000:]}")
    return float(stamps[-1]) - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--cold", type=int, default=5)
    args = parser.parse_args()

    full = full_render("COFFEE_SALES", REPORT_DATE)
    monthly = full_render("COFFEE_SALES_MONTHLY", REPORT_DATE)
    naive = naive_render(REPORT_DATE)
    full_s, naive_s, monthly_s = interleaved([full, naive, monthly], args.repeats)

    with tempfile.TemporaryDirectory(prefix="sales-") as folder:
        start, end = report_definitions()["COFFEE_SALES"].period(REPORT_DATE)
        for day in days(start, end):
            records = generate_day(day)
            if records:
                (Path(folder) / f"{day.isoformat()}.csv.gz").write_bytes(encode_day(records))
        cold, floor, bare = [], [], []
        for _ in range(args.cold):
            cold.append(cold_process(Path(folder), REPORT_DATE))
            floor.append(import_floor_process())
            bare.append(bare_process())

    figure("render_full_median_s", full_s, "s", digits=4)
    figure("render_naive_median_s", naive_s, "s", digits=4)
    figure("render_ratio", full_s / naive_s, "x", digits=2, note="budget 1.0")
    figure("process_cold_start_s", statistics.median(cold), "s", note="budget 1.2")
    figure("process_import_floor_s", statistics.median(floor), "s")
    figure("process_bare_python_s", statistics.median(bare), "s")
    figure("render_monthly_median_s", monthly_s, "s", digits=4)
    return 0


if __name__ == "__main__":
    sys.exit(main())
