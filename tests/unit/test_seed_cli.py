"""``python -m local.seed``: fills a sales bucket named directly or through the stack's output."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from local import seed


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def stored_keys(bucket: str) -> list[str]:
    listing = boto3.client("s3").list_objects_v2(Bucket=bucket)
    return [item["Key"] for item in listing.get("Contents", [])]


def test_seed_fills_a_named_bucket_and_says_what_it_did(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN an empty bucket
    boto3.client("s3").create_bucket(Bucket="sales-direct")
    # WHEN the week around Christmas 2020 is seeded into it
    code = seed.main(["--bucket", "sales-direct", "--start", "2020-12-23", "--end", "2020-12-27"])
    # THEN four days are stored (Christmas is closed) and the summary says so
    assert code == 0
    assert len(stored_keys("sales-direct")) == 4
    assert "4 days with sales of 5" in capsys.readouterr().out


def test_seed_finds_the_bucket_from_the_stack_output(aws: None) -> None:
    # GIVEN a stack whose SalesBucketName output names its bucket
    template = {
        "Resources": {"SalesBucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "sales-from-stack"}}},
        "Outputs": {"SalesBucketName": {"Value": {"Ref": "SalesBucket"}}},
    }
    boto3.client("cloudformation").create_stack(StackName="reports", TemplateBody=json.dumps(template))
    # WHEN seeding names the stack
    seed.main(["--stack", "reports", "--start", "2021-01-01", "--end", "2021-01-02"])
    # THEN the stack's bucket is filled
    assert stored_keys("sales-from-stack") == [
        "sales/date=2021-01-01/orders.csv.gz",
        "sales/date=2021-01-02/orders.csv.gz",
    ]


def test_a_stack_without_the_output_is_a_clear_error(aws: None) -> None:
    template = {"Resources": {"Other": {"Type": "AWS::S3::Bucket"}}}
    boto3.client("cloudformation").create_stack(StackName="bare", TemplateBody=json.dumps(template))
    with pytest.raises(SystemExit, match="no output SalesBucketName"):
        seed.main(["--stack", "bare"])


def test_an_end_before_the_start_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        seed.parse_args(["--bucket", "b", "--start", "2021-02-01", "--end", "2021-01-01"])
    assert "before --start" in capsys.readouterr().err
