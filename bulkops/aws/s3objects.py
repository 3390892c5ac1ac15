"""Whole objects on S3: a spooled writer (multipart past 8 MiB, create-only), line streams."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import IO, Any

import structlog
from botocore.exceptions import BotoCoreError, ClientError

from bulkops.aws.s3calls import S3Calls, status_of, translate
from bulkops.errors import Refused

log = structlog.get_logger("bulkops.aws.s3objects")

PART = 8 << 20  # past this an object goes up in parts of this size (S3's minimum is 5 MiB)


async def split_lines(pieces: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The lines of a byte stream, each with its b"\\n" (the last one perhaps without)."""
    rest = b""
    async for piece in pieces:
        rest += piece
        if b"\n" not in piece:
            continue
        *whole, rest = rest.split(b"\n")
        for line in whole:
            yield line + b"\n"
    if rest:
        yield rest


def spool() -> IO[bytes]:
    """A buffer that stays in memory up to one part, then moves to a private temporary file."""
    return tempfile.SpooledTemporaryFile(max_size=PART)


async def upload(
    calls: S3Calls, key: str, data: IO[bytes], size: int, *, create_only: bool
) -> bool:
    """Store `size` bytes from `data` under `key`; False when `create_only` and it exists."""
    data.seek(0)
    if size <= PART:
        etag = await calls.put(key, data.read(), if_none_match=create_only)
        return etag is not None
    if create_only and await calls.get_size(key) is not None:
        return False
    where = calls.where(key)
    client, bucket = calls.client, calls.bucket
    start = partial(client.create_multipart_upload, Bucket=bucket, Key=key, **calls.sse)
    started = await calls.call(key, start)
    upload_id = started["UploadId"]
    try:
        parts = []
        number = 1
        while piece := data.read(PART):
            send = partial(
                client.upload_part,
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=piece,
            )
            answer = await calls.call(key, send)
            parts.append({"PartNumber": number, "ETag": answer["ETag"]})
            number += 1
        params: dict[str, Any] = {
            "Bucket": bucket,
            "Key": key,
            "UploadId": upload_id,
            "MultipartUpload": {"Parts": parts},
        }
        if create_only:
            params["IfNoneMatch"] = "*"
        try:
            await client.complete_multipart_upload(**params)
        except ClientError as exc:
            if status_of(exc) == 412:
                await _abort(calls, key, upload_id)
                return False
            raise translate(exc, where) from exc
        except BotoCoreError as exc:
            raise translate(exc, where) from exc
    except BaseException:
        await _abort(calls, key, upload_id)
        raise
    log.info("s3_multipart_upload", key=key, parts=len(parts), bytes=size)
    return True


async def _abort(calls: S3Calls, key: str, upload_id: str) -> None:
    try:
        await calls.client.abort_multipart_upload(Bucket=calls.bucket, Key=key, UploadId=upload_id)
    except (ClientError, BotoCoreError) as exc:  # a lifecycle rule can clean it; say so
        log.warning("s3_multipart_abort_failed", key=key, error=type(exc).__name__)


class S3Writer:
    """A sibling object being written: spooled here, uploaded whole on `commit`."""

    def __init__(
        self, calls: S3Calls, key: str, *, create_only: bool, guard: Callable[[], None]
    ) -> None:
        self.calls, self.key, self.create_only, self.guard = calls, key, create_only, guard
        self._data: IO[bytes] | None = spool()
        self._size = 0

    def write(self, data: bytes) -> None:
        if self._data is None:
            raise RuntimeError(f"{self.calls.where(self.key)} is already committed or aborted")
        self._data.write(data)
        self._size += len(data)

    async def commit(self) -> None:
        if self._data is None:
            raise RuntimeError(f"{self.calls.where(self.key)} is already committed or aborted")
        try:
            self.guard()
            stored = await upload(
                self.calls, self.key, self._data, self._size, create_only=self.create_only
            )
        finally:
            self._data.close()
            self._data = None
        if not stored:
            raise Refused(f"{self.calls.where(self.key)} exists already; it was not replaced")

    async def abort(self) -> None:
        if self._data is not None:
            self._data.close()
            self._data = None

    def __del__(self) -> None:  # left without commit or abort: dropped, like abort
        if self._data is not None:
            self._data.close()
