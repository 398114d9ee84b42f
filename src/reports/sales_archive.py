"""The S3 adapter for sales data: one gzip CSV object per day under ``sales/date=YYYY-MM-DD/``.

It takes its S3 client from the caller (made once per process by the composition root, or by a
test under moto), and turns ``ClientError`` into ``FileStoreError`` so callers never branch on
AWS error codes. A day with no object is a day without sales (the stores were closed, or the
data does not reach that far), not an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from reports.errors import FileStoreError
from reports.sales import SaleRecord, decode_day, encode_day, generate_day, sales_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_LOAD_WORKERS = 8
"""A month is 31 GETs of ~20 kB: latency-bound, so a few threads cut it to a few round trips."""


class SalesArchive:
    """Reads and writes days of sales in one bucket."""

    def __init__(self, s3: S3Client, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    @property
    def bucket(self) -> str:
        return self._bucket

    def store_day(self, day: date, records: list[SaleRecord]) -> bool:
        """Writes the day's object; a day without records gets none, so readers see it as closed."""
        if not records:
            return False
        return self._put_day(day, encode_day(records))

    def load(self, start: date, end: date) -> list[SaleRecord]:
        """All records from ``start`` to ``end`` inclusive, in date order; days without an object are skipped."""
        days = list(_days(start, end))
        if len(days) <= 1:
            return [record for day in days for record in self._load_day(day)]
        with ThreadPoolExecutor(max_workers=min(_LOAD_WORKERS, len(days)), thread_name_prefix="sales-load") as pool:
            per_day = list(pool.map(self._load_day, days))
        return [record for records in per_day for record in records]

    def seed(self, start: date, end: date, *, workers: int = 8) -> int:
        """Generates and stores the sample data for every open day in the range; returns the days written.

        Generating is CPU-bound and uploading is I/O-bound, so days are generated in worker processes
        (one per core) while threads upload the days already made.
        """
        import multiprocessing
        import os
        from concurrent.futures import ProcessPoolExecutor  # seeding only: keeps API cold starts light

        days = list(_days(start, end))
        with (
            # spawn, not fork: the caller may run threads (the local runtime does), and forking them is unsafe.
            ProcessPoolExecutor(
                max_workers=os.cpu_count() or 1, mp_context=multiprocessing.get_context("spawn")
            ) as generators,
            ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="sales-seed") as uploads,
        ):
            encoded = generators.map(_generate_encoded, days, chunksize=max(1, len(days) // 64))
            futures = [
                uploads.submit(self._put_day, day, body) for day, body in zip(days, encoded, strict=True) if body
            ]
            return sum(future.result() for future in futures)

    def _put_day(self, day: date, body: bytes) -> bool:
        key = sales_key(day)
        try:
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType="application/gzip")
        except (ClientError, BotoCoreError) as exc:
            raise FileStoreError(f"could not write sales for {day} to s3://{self._bucket}/{key}: {exc}") from exc
        return True

    def _load_day(self, day: date) -> list[SaleRecord]:
        key = sales_key(day)
        try:
            response = self._s3.get_object(Bucket=self._bucket, Key=key)
            body = response["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING_CODES:
                return []
            raise FileStoreError(f"could not read sales for {day} from s3://{self._bucket}/{key}: {exc}") from exc
        except BotoCoreError as exc:
            raise FileStoreError(f"could not read sales for {day} from s3://{self._bucket}/{key}: {exc}") from exc
        try:
            return decode_day(body)
        except (OSError, ValueError, EOFError) as exc:
            raise FileStoreError(f"sales object s3://{self._bucket}/{key} is not a valid gzip CSV: {exc}") from exc


def _generate_encoded(day: date) -> bytes | None:
    records = generate_day(day)
    return encode_day(records) if records else None


def _days(start: date, end: date) -> Iterator[date]:
    for offset in range((end - start).days + 1):
        yield start + timedelta(days=offset)
