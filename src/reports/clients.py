"""boto3 clients, made once per process and only when first used.

Never at import time: moto must be active before a client exists, and a cold start pays only for
the clients its function really uses. Tests call ``clear_clients()`` between moto contexts.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from botocore.config import Config
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient


def _config(read_timeout: int) -> Config:
    from botocore.config import Config

    # Standard retry mode backs off with jitter on throttling. Short timeouts and two attempts
    # bound one call to about 2 x (1 + read_timeout) s plus a backoff, so a stalled dependency
    # surfaces as an error the code can handle well within a 10 s function timeout.
    return Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=1, read_timeout=read_timeout)


@cache
def dynamodb() -> DynamoDBClient:
    import boto3

    return boto3.client("dynamodb", config=_config(2))


@cache
def s3() -> S3Client:
    import boto3
    from botocore.config import Config

    # SigV4 presigned URLs work in every region (SigV2 ones do not).
    config = Config(
        signature_version="s3v4", retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=30
    )
    return boto3.client("s3", config=config)


@cache
def sqs() -> SQSClient:
    import boto3

    return boto3.client("sqs", config=_config(2))


@cache
def sns() -> Any:
    import boto3

    return boto3.client("sns", config=_config(2))


@cache
def secretsmanager() -> Any:
    import boto3

    return boto3.client("secretsmanager", config=_config(2))


@cache
def connections(endpoint_url: str) -> Any:
    """The WebSocket API's @connections management endpoint (https://{api}.execute-api.../{stage})."""
    import boto3

    return boto3.client("apigatewaymanagementapi", endpoint_url=endpoint_url, config=_config(2))


def clear_clients() -> None:
    for factory in (dynamodb, s3, sqs, sns, secretsmanager, connections):
        factory.cache_clear()
