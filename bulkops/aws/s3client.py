"""The S3 client of a checkpoint: the job's own session, the bucket's region, the endpoint."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from aiobotocore.config import AioConfig
from botocore.exceptions import BotoCoreError, ClientError

from bulkops import __version__
from bulkops.aws.s3calls import code_of, status_of, translate
from bulkops.aws.s3url import S3Url, resolve_endpoint
from bulkops.errors import AccessDenied, UsageError
from bulkops.log import register_url_password

log = structlog.get_logger("bulkops.aws.s3client")


def s3_config(endpoint: str | None, attempts: int = 4) -> AioConfig:
    return AioConfig(
        # botocore retries SlowDown, 5xx and dropped connections; the store retries again on top
        retries={"total_max_attempts": attempts, "mode": "standard"},
        # a custom endpoint (a local S3, moto) seldom resolves BUCKET.host names
        s3={"addressing_style": "path"} if endpoint else {},
        connect_timeout=10,
        read_timeout=30,
        user_agent_extra=f"bulkops/{__version__}",
    )


def _region_header(answer: Any) -> str | None:
    headers = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    region = headers.get("x-amz-bucket-region")
    return str(region) if region else None


async def find_region(client: Any, url: S3Url) -> str:
    """The bucket's region: HeadBucket's header (also sent with a 301 or 403), else
    GetBucketLocation. A missing bucket is UsageError (exit 2), a refusal AccessDenied (77)."""
    where = f"s3://{url.bucket}"
    try:
        region = _region_header(await client.head_bucket(Bucket=url.bucket))
    except ClientError as exc:
        if status_of(exc) == 404 or code_of(exc) in ("NoSuchBucket", "404", "NotFound"):
            raise UsageError(
                f"{where}: the bucket does not exist (create it, or fix the URL)"
            ) from exc
        region = _region_header(exc.response)  # S3 sends it with a 301 or a 403 too
        if region is None and status_of(exc) != 403:  # 403: ListBucket limited to a prefix
            raise translate(exc, where) from exc
    except BotoCoreError as exc:
        raise translate(exc, where) from exc
    if region:
        return region
    try:
        answer = await client.get_bucket_location(Bucket=url.bucket)
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, where) from exc
    return str(answer.get("LocationConstraint") or "us-east-1")


@asynccontextmanager
async def open_s3_client(
    session: Any,
    url: S3Url,
    *,
    region: str | None,
    endpoint_url: str | None,
    sdk_attempts: int = 4,
) -> AsyncIterator[tuple[Any, str]]:
    """An S3 client in the bucket's region (found when not given), closed on exit."""
    endpoint = resolve_endpoint(endpoint_url)
    register_url_password(endpoint)
    config = s3_config(endpoint, sdk_attempts)
    checked = False
    if region is None:
        probe_region = session.region_name or "us-east-1"
        async with session.client(
            "s3", region_name=probe_region, endpoint_url=endpoint, config=config
        ) as probe:
            region = await find_region(probe, url)
            checked = True
        log.debug("s3_bucket_region", bucket=url.bucket, region=region)
    async with session.client(
        "s3", region_name=region, endpoint_url=endpoint, config=config
    ) as client:
        if not checked:
            with contextlib.suppress(AccessDenied):  # the first listing tells for sure
                await find_region(client, url)  # the bucket exists and can be reached
        yield client, region
