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

from reports.sales import SAMPLE_DATA_END, SAMPLE_DATA_START
from reports.sales_archive import SalesArchive

SALES_BUCKET_OUTPUT = "SalesBucketName"


def bucket_from_stack(stack_name: str) -> str:
    """The stack's ``SalesBucketName`` output, so nobody has to copy a generated bucket name by hand."""
    stacks = boto3.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    for output in stacks[0].get("Outputs", []):
        if output.get("OutputKey") == SALES_BUCKET_OUTPUT and output.get("OutputValue"):
            return output["OutputValue"]
    raise SystemExit(f"stack {stack_name} has no output {SALES_BUCKET_OUTPUT}; is it deployed from template.yaml?")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.seed", description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--bucket", help="sales bucket name")
    where.add_argument("--stack", help="CloudFormation stack whose SalesBucketName output names the bucket")
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
