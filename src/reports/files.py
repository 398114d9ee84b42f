"""The Files bucket: finished PDFs under ``reports/``, handed out as short-lived presigned URLs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from reports.errors import FileStoreError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PDF_PREFIX = "reports/"


def pdf_key(tenant: str, report_id: str) -> str:
    """Deterministic, so a redelivered job overwrites or finds its own PDF instead of adding one."""
    return f"{PDF_PREFIX}{tenant}/{report_id}.pdf"


class ReportFiles:
    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def put_pdf(self, key: str, data: bytes, *, report_id: str) -> None:
        try:
            self._client.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=data,
                ContentType="application/pdf",
                Metadata={"report-id": report_id},
            )
        except ClientError as error:
            raise FileStoreError(f"could not store {key}: {error}") from error

    def pdf_exists(self, key: str, *, report_id: str) -> bool:
        """True when an earlier attempt already uploaded this report's PDF."""
        try:
            head = self._client.head_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise FileStoreError(f"could not look up {key}: {error}") from error
        return head.get("Metadata", {}).get("report-id") == report_id and head.get("ContentLength", 0) > 0

    def presign_pdf(self, key: str, *, filename: str, expires_seconds: int) -> str:
        """A GET URL valid for ``expires_seconds`` that downloads as ``filename``."""
        return self._client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self._bucket,
                "Key": key,
                "ResponseContentType": "application/pdf",
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
            },
            ExpiresIn=expires_seconds,
        )
