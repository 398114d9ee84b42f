"""The S3 adapter for sales data, against moto's S3 (in-process, no network)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from reports.errors import FileStoreError
from reports.sales import decode_day, generate_day, sales_key
from reports.sales_archive import SalesArchive

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BUCKET = "sales-test"


@pytest.fixture
def s3() -> Iterator[S3Client]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def archive(s3: S3Client) -> SalesArchive:
    return SalesArchive(s3, BUCKET)


def keys(s3: S3Client) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def test_a_stored_day_is_one_gzip_csv_under_its_date_partition(s3: S3Client, archive: SalesArchive) -> None:
    # GIVEN a day's records
    day = date(2021, 2, 3)
    records = generate_day(day)
    # WHEN stored
    written = archive.store_day(day, records)
    # THEN one object holds exactly those records
    assert written is True
    assert keys(s3) == ["sales/date=2021-02-03/orders.csv.gz"]
    assert decode_day(s3.get_object(Bucket=BUCKET, Key=sales_key(day))["Body"].read()) == records


def test_a_day_without_records_writes_no_object(s3: S3Client, archive: SalesArchive) -> None:
    # WHEN a closed day is stored
    written = archive.store_day(date(2020, 12, 25), [])
    # THEN nothing is written, so readers see no data for it
    assert written is False
    assert keys(s3) == []


def test_seed_writes_every_open_day_and_counts_them(s3: S3Client, archive: SalesArchive) -> None:
    # WHEN the week around Christmas 2020 is seeded
    written = archive.seed(date(2020, 12, 22), date(2020, 12, 28), workers=4)
    # THEN six days are written and Christmas Day has no object
    assert written == 6
    assert "sales/date=2020-12-25/orders.csv.gz" not in keys(s3)
    assert len(keys(s3)) == 6


def test_load_returns_the_range_inclusive_in_date_order_skipping_missing_days(archive: SalesArchive) -> None:
    # GIVEN a seeded week that includes a closed day
    archive.seed(date(2020, 12, 22), date(2020, 12, 28))
    # WHEN a range reaching past the seeded days is loaded
    records = archive.load(date(2020, 12, 20), date(2020, 12, 26))
    # THEN it holds the stored days in order, and the missing ones are simply absent
    days = [record.sold_at.date() for record in records]
    assert sorted(set(days)) == [date(2020, 12, 22), date(2020, 12, 23), date(2020, 12, 24), date(2020, 12, 26)]
    assert days == sorted(days)
    assert records == [r for d in (22, 23, 24, 26) for r in generate_day(date(2020, 12, d))]


def test_load_of_a_single_day_works_without_threads(archive: SalesArchive) -> None:
    archive.seed(date(2021, 1, 1), date(2021, 1, 1))
    assert archive.load(date(2021, 1, 1), date(2021, 1, 1)) == generate_day(date(2021, 1, 1))


def test_load_of_an_empty_bucket_is_empty_not_an_error(archive: SalesArchive) -> None:
    assert archive.load(date(2021, 1, 1), date(2021, 1, 31)) == []


def test_a_missing_bucket_is_a_file_store_error_naming_bucket_and_day(s3: S3Client) -> None:
    # GIVEN an archive pointed at a bucket that does not exist
    archive = SalesArchive(s3, "no-such-bucket")
    # WHEN a day is loaded
    with pytest.raises(FileStoreError) as raised:
        archive.load(date(2021, 1, 1), date(2021, 1, 1))
    # THEN the error says what failed, where
    assert "no-such-bucket" in str(raised.value)
    assert "2021-01-01" in str(raised.value)


def test_access_denied_is_a_file_store_error_not_a_missing_day(s3: S3Client, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN S3 refusing reads
    def refuse(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject")

    monkeypatch.setattr(s3, "get_object", refuse)
    archive = SalesArchive(s3, BUCKET)
    # WHEN a month is loaded
    # THEN the refusal is not mistaken for days without sales
    with pytest.raises(FileStoreError, match="AccessDenied"):
        archive.load(date(2021, 1, 1), date(2021, 1, 31))


def test_a_corrupt_object_is_a_file_store_error(s3: S3Client, archive: SalesArchive) -> None:
    # GIVEN an object that is not gzip
    s3.put_object(Bucket=BUCKET, Key=sales_key(date(2021, 1, 4)), Body=b"not gzip")
    # THEN loading it fails with the key in the message
    with pytest.raises(FileStoreError, match=r"date=2021-01-04"):
        archive.load(date(2021, 1, 4), date(2021, 1, 4))


def test_a_refused_write_is_a_file_store_error(s3: S3Client) -> None:
    archive = SalesArchive(s3, "no-such-bucket")
    with pytest.raises(FileStoreError, match="could not write sales for 2021-01-04"):
        archive.store_day(date(2021, 1, 4), generate_day(date(2021, 1, 4)))
