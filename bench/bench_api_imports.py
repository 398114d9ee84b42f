"""Cold import of each API handler module against what it cannot avoid: boto3, and aws_xray_sdk
patching botocore (``Tracing: Active``). Each figure is the median of fresh interpreters, run
interleaved with its baseline so machine noise hits both alike; only the ratio is a target."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

from _figures import figure

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_IMPORT_RUNS", "15"))
HANDLERS = {"submit": "handlers.submit", "status": "handlers.status"}
BASELINE = "import boto3\nfrom aws_xray_sdk.core import patch\npatch(('botocore',))"

TIMED = """
import time
began = time.perf_counter()
{body}
print(time.perf_counter() - began)
"""


def lambda_environment(function_name: str) -> dict[str, str]:
    """What the Lambda runtime sets that changes what importing does (Tracer patches only in Lambda)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT / "src"),
        "PYTHONDONTWRITEBYTECODE": "0",
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "LAMBDA_TASK_ROOT": str(ROOT / "src"),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "async-reports",
        "POWERTOOLS_METRICS_NAMESPACE": "AsyncReports",
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    }


def time_import(body: str, function_name: str) -> float:
    result = subprocess.run(
        [sys.executable, "-c", TIMED.format(body=body)],
        capture_output=True,
        text=True,
        check=True,
        env=lambda_environment(function_name),
        cwd=ROOT,
    )
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    # Warm the OS file cache and the .pyc files once, as a Lambda image has them.
    time_import(BASELINE, "warmup")
    for module in HANDLERS.values():
        time_import(f"import {module}", "warmup")

    samples: dict[str, list[float]] = {"baseline": [], **{name: [] for name in HANDLERS}}
    for _ in range(RUNS):
        samples["baseline"].append(time_import(BASELINE, "baseline"))
        for name, module in HANDLERS.items():
            samples[name].append(time_import(f"import {module}", f"{name.capitalize()}Function"))

    baseline = statistics.median(samples["baseline"])
    figure("api_import_baseline_s", baseline, "s", digits=4, note="import boto3 + aws_xray_sdk patching botocore")
    ratios = {}
    for name in HANDLERS:
        median = statistics.median(samples[name])
        ratios[name] = median / baseline
        figure(f"api_import_{name}_s", median, "s", digits=4)
        figure(f"api_import_{name}_ratio", ratios[name], "x")
    worst = max(ratios, key=lambda name: ratios[name])
    figure("api_import_ratio", ratios[worst], "x", note=f"worst: {worst}; budget 1.15")


if __name__ == "__main__":
    main()
