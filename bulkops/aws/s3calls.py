"""The S3 calls of the checkpoint store: conditional writes re-checked by reading, retries, errors.

botocore retries SlowDown, 500, 503 and dropped connections itself (standard mode) and
this layer retries again with backoff. A conditional write whose answer was lost or came
back 409 (ConditionalRequestConflict) or 5xx may have been applied all the same: it is
never assumed failed, the object is read back and compared with the bytes sent.
Every botocore error is translated here, once, into a bulkops error.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio
import structlog
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    CredentialRetrievalError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
    ResponseStreamingError,
    TokenRetrievalError,
)

from bulkops.errors import AccessDenied, StoreUnavailable, UsageError

log = structlog.get_logger("bulkops.aws.s3calls")

_DENIED = {
    "AccessDenied",
    "AllAccessDisabled",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "AccountProblem",
}
_TRANSIENT = {
    "SlowDown",
    "InternalError",
    "ServiceUnavailable",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "OperationAborted",
    "ConditionalRequestConflict",
}
_NETWORK = (
    EndpointConnectionError,
    ConnectionClosedError,
    ReadTimeoutError,
    HTTPClientError,
    ResponseStreamingError,
)
_CREDENTIALS = (
    NoCredentialsError,
    PartialCredentialsError,
    CredentialRetrievalError,
    TokenRetrievalError,
)


def status_of(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def code_of(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or status_of(exc))


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ClientError):
        return code_of(exc) in _TRANSIENT or status_of(exc) in (409, 500, 502, 503, 504)
    return isinstance(exc, _NETWORK)


def translate(exc: BaseException, where: str) -> Exception:
    """The bulkops error for a failed S3 call on `where` (an s3:// URL)."""
    if isinstance(exc, _CREDENTIALS):
        return AccessDenied(f"cannot get AWS credentials for {where}: {exc}")
    if isinstance(exc, ClientError):
        code, status = code_of(exc), status_of(exc)
        if code in ("NoSuchBucket", "PermanentRedirect"):
            return UsageError(f"{where}: the bucket does not exist or is in another partition")
        if code in _DENIED or status == 403:
            return AccessDenied(f"access denied on {where} ({code}): check the job's IAM policy")
        if code.startswith("KMS.") or code == "KMS.NotFoundException":
            return UsageError(f"{where}: the KMS key cannot be used ({code}: {exc})")
        if is_transient(exc):
            return StoreUnavailable(f"{where}: S3 kept failing ({code}) after retries")
        return UsageError(f"{where}: S3 refused the request ({code}: {exc})")
    if isinstance(exc, _NETWORK):
        return StoreUnavailable(f"{where}: S3 did not answer after retries ({type(exc).__name__})")
    if isinstance(exc, BotoCoreError):
        return UsageError(f"{where}: cannot reach S3: {type(exc).__name__}: {exc}")
    return exc if isinstance(exc, Exception) else RuntimeError(str(exc))


@dataclass(frozen=True, slots=True)
class Retry:
    """Our own retries on top of botocore's: attempts, and the backoff between them."""

    attempts: int = 8
    base: float = 0.1
    cap: float = 5.0
    sdk_attempts: int = 4  # botocore's own, inside each of ours

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap, self.base * 2**attempt))  # full jitter


@dataclass(frozen=True, slots=True)
class Found:
    body: bytes
    etag: str


class S3Calls:
    """One bucket's calls, each retried and translated; `sse` goes on every write."""

    def __init__(self, client: Any, bucket: str, sse: dict[str, str], retry: Retry) -> None:
        self.client, self.bucket, self.sse, self.retry = client, bucket, sse, retry
        self.sleep: Callable[[float], Awaitable[None]] = anyio.sleep

    def where(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    async def call(self, key: str, fn: Callable[[], Awaitable[Any]]) -> Any:
        for attempt in range(self.retry.attempts):
            try:
                return await fn()
            except (ClientError, BotoCoreError) as exc:
                if not is_transient(exc) or attempt == self.retry.attempts - 1:
                    raise translate(exc, self.where(key)) from exc
                log.info("s3_retry", key=key, attempt=attempt + 1, error=_name(exc))
                await self.sleep(self.retry.delay(attempt))
        raise AssertionError("unreachable")

    async def get(self, key: str) -> Found | None:
        """The object's bytes and ETag, or None when there is none."""

        async def once() -> Found | None:
            try:
                answer = await self.client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if code_of(exc) in ("NoSuchKey", "404"):
                    return None
                raise
            body = answer["Body"]
            async with body:
                return Found(await body.read(), answer["ETag"])

        found: Found | None = await self.call(key, once)
        return found

    async def get_size(self, key: str) -> int | None:
        """The object's size, or None when there is none."""

        async def once() -> int | None:
            try:
                answer = await self.client.head_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if code_of(exc) in ("NoSuchKey", "404", "NotFound"):
                    return None
                raise
            return int(answer["ContentLength"])

        size: int | None = await self.call(key, once)
        return size

    async def list_keys(self, prefix: str) -> list[tuple[str, int]]:
        """Every (key, size) under `prefix`, in key order."""
        found: list[tuple[str, int]] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if token:
                params["ContinuationToken"] = token
            page = await self.call(prefix, partial(self.client.list_objects_v2, **params))
            found.extend((o["Key"], int(o["Size"])) for o in page.get("Contents", ()))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return found

    async def put(
        self, key: str, body: bytes, *, if_none_match: bool = False, if_match: str | None = None
    ) -> str | None:
        """Write `body`; its ETag, or None when the condition failed for bytes not ours.

        After a 412, a 409 or a failure that may have been applied, the object is read back:
        holding exactly `body`, the write is ours (callers put a nonce in what they replace).
        """
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": body, **self.sse}
        if if_none_match:
            params["IfNoneMatch"] = "*"
        if if_match is not None:
            params["IfMatch"] = if_match
        for attempt in range(self.retry.attempts):
            try:
                answer = await self.client.put_object(**params)
                return str(answer["ETag"])
            except (ClientError, BotoCoreError) as exc:
                failed = exc
                precondition = isinstance(exc, ClientError) and status_of(exc) in (404, 412)
                if not precondition and not is_transient(exc):
                    raise translate(exc, self.where(key)) from exc
            current = await self.get(key)
            if current is not None and current.body == body:
                return current.etag
            if precondition:
                return None
            if if_match is not None and (current is None or current.etag != if_match):
                return None  # replaced or removed meanwhile: the condition can no longer hold
            if if_none_match and current is not None:
                return None
            log.info("s3_retry", key=key, attempt=attempt + 1, error=_name(failed))
            await self.sleep(self.retry.delay(attempt))
        raise translate(failed, self.where(key)) from failed

    async def delete(self, keys: list[str]) -> None:
        """Remove `keys` (missing ones are no error), 1000 per request."""
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start : start + 1000]]

            async def once(batch: list[dict[str, str]] = batch) -> Any:
                answer = await self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
                errors = answer.get("Errors") or []
                if errors:
                    first = errors[0]
                    raise ClientError({"Error": {"Code": first.get("Code", "")}}, "DeleteObjects")
                return answer

            await self.call(batch[0]["Key"], once)

    async def stream(self, key: str, chunk: int = 1 << 20) -> AsyncIterator[bytes]:
        """The object's bytes in pieces; a dropped stream resumes at its offset, same ETag."""
        offset, etag = 0, None
        for attempt in range(self.retry.attempts):
            params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
            if etag is not None:
                params |= {"Range": f"bytes={offset}-", "IfMatch": etag}
            try:
                answer = await self.client.get_object(**params)
                etag = etag or answer["ETag"]
                body = answer["Body"]
                async with body:
                    while piece := await body.read(chunk):
                        offset += len(piece)
                        yield piece
                return
            except ClientError as exc:
                if code_of(exc) in ("NoSuchKey", "404") and etag is None:
                    return
                if code_of(exc) == "InvalidRange":
                    return  # resumed exactly at the end
                if not is_transient(exc) or attempt == self.retry.attempts - 1:
                    raise translate(exc, self.where(key)) from exc
            except BotoCoreError as exc:
                if not is_transient(exc) or attempt == self.retry.attempts - 1:
                    raise translate(exc, self.where(key)) from exc
            await self.sleep(self.retry.delay(attempt))


def _name(exc: BaseException) -> str:
    return code_of(exc) if isinstance(exc, ClientError) else type(exc).__name__
