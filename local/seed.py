"""Fill a sales bucket with the deterministic sample data, in AWS or in the local moto server.

    python -m local.seed --stack async-reports
    AWS_ENDPOINT_URL=http://127.0.0.1:5000 python -m local.seed --bucket sales-local

Uses the default boto3 session, so ``AWS_PROFILE``, ``AWS_REGION`` and ``AWS_ENDPOINT_URL`` apply.
Re-running is harmless: a day's object is the same bytes every time.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import date

import boto3

from local.template import SamTemplate
from reports import settings
from reports.sales import SAMPLE_DATA_END, SAMPLE_DATA_START
from reports.sales_archive import SalesArchive


def sales_bucket_output(template: SamTemplate | None = None) -> str:
    """The stack output that names the sales bucket: the one whose value is the expression the
    functions' ``SALES_BUCKET`` variable has in template.yaml (``!Ref`` the bucket)."""
    template = template or SamTemplate.load()
    expressions = [
        spec.environment[settings.SALES_BUCKET]
        for spec in template.functions().values()
        if settings.SALES_BUCKET in spec.environment
    ]
    for name, output in (template.document.get("Outputs") or {}).items():
        if isinstance(output, dict) and output.get("Value") in expressions:
            return str(name)
    raise SystemExit(
        f"{template.path.name} has no output whose value is the functions' {settings.SALES_BUCKET}; "
        "add one, or name the bucket with --bucket"
    )


def bucket_from_stack(stack_name: str) -> str:
    """The stack's output naming the sales bucket, so nobody has to copy a generated bucket name by hand."""
    output_name = sales_bucket_output()
    stacks = boto3.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    for output in stacks[0].get("Outputs", []):
        if output.get("OutputKey") == output_name and output.get("OutputValue"):
            return str(output["OutputValue"])
    raise SystemExit(f"stack {stack_name} has no output {output_name}; is it deployed from template.yaml?")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.seed", description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--bucket", help="sales bucket name")
    where.add_argument("--stack", help="CloudFormation stack whose output for the bucket (from template.yaml) names it")
    parser.add_argument("--start", type=date.fromisoformat, default=SAMPLE_DATA_START, help="first day (%(default)s)")
    parser.add_argument("--end", type=date.fromisoformat, default=SAMPLE_DATA_END, help="last day (%(default)s)")
    parser.add_argument("--workers", type=int, default=8, help="parallel uploads (%(default)s)")
    args = parser.parse_args(argv)
    if args.end < args.start:
        parser.error(f"--end {args.end} is before --start {args.start}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    bucket = args.bucket or bucket_from_stack(args.stack)
    archive = SalesArchive(boto3.client("s3"), bucket)
    began = time.perf_counter()
    written = archive.seed(args.start, args.end, workers=args.workers)
    elapsed = time.perf_counter() - began
    total = (args.end - args.start).days + 1
    print(
        f"seeded s3://{bucket}/sales/: {written} days with sales of {total} from {args.start} to {args.end}"
        f" ({total - written} closed) in {elapsed:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
