"""The S3 journal store as `open_store` makes it: opened when first used, on the job's AWS.

`S3Store` lives in an open S3 client; the CLI makes stores from locations in many places
and runs each piece in its own event loop. So this store opens a client per operation,
and keeps one only while it owns the journal (from `create` or `acquire` until `release`),
the span of a run, so the lease is renewed and the records appended on one client.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import IO, TYPE_CHECKING, Any

import aioboto3
import anyio

from bulkops.aws.errors import translated_setup
from bulkops.aws.s3lease import LeaseTimes
from bulkops.aws.s3objects import spool
from bulkops.aws.s3store import S3Store
from bulkops.aws.s3url import S3Url, parse_s3_url
from bulkops.aws.session import AwsSettings, register_known_secrets, resolve_region

if TYPE_CHECKING:
    from bulkops.journal.store import JournalStore

COPY_PIECE = 1 << 20


def s3_session(settings: AwsSettings) -> aioboto3.Session:
    """The job's own AWS session (profile, credentials), as the CodeArtifact client has it."""
    register_known_secrets(settings)
    keys = settings.static_credentials
    with translated_setup():
        return aioboto3.Session(
            profile_name=settings.profile,
            region_name=resolve_region(settings),
            aws_access_key_id=keys[0] if keys else None,
            aws_secret_access_key=keys[1] if keys else None,
        )


class LazyS3Store:
    """A `JournalStore` at `s3://BUCKET/PREFIX`, reached with `aws` (see the module doc)."""

    def __init__(
        self,
        url: str,
        aws: AwsSettings | None,
        kms_key: str | None = None,
        lease: LeaseTimes | None = None,
    ) -> None:
        self.where: S3Url = parse_s3_url(url)
        self.aws = aws or AwsSettings()
        self.kms_key = kms_key
        self.lease = lease
        self._stack: AsyncExitStack | None = None
        self._owned: S3Store | None = None

    @asynccontextmanager
    async def _store(self) -> AsyncIterator[S3Store]:
        if self._owned is not None:
            yield self._owned
            return
        async with self._open() as store:
            yield store

    def _open(self) -> AbstractAsyncContextManager[S3Store]:
        return S3Store.open(
            self.where, s3_session(self.aws), kms_key=self.kms_key, times=self.lease
        )

    async def _own(self) -> S3Store:
        stack = AsyncExitStack()
        store = await stack.enter_async_context(self._open())
        self._stack, self._owned = stack, store
        return store

    def _owner(self) -> S3Store:
        if self._owned is None:
            raise RuntimeError(f"journal {self.where} is not owned by this run")
        return self._owned

    def describe(self) -> str:
        return str(self.where)

    async def exists(self) -> bool:
        async with self._store() as store:
            return await store.exists()

    async def create(self, header: bytes) -> None:
        try:
            await (await self._own()).create(header)
        except BaseException:
            await self.release()
            raise

    async def acquire(self) -> None:
        if self._owned is not None:
            return
        try:
            await (await self._own()).acquire()
        except BaseException:
            await self.release()
            raise

    async def keep_alive(self) -> None:
        if self._owned is None:
            await anyio.sleep_forever()
        await self._owner().keep_alive()

    def owned_until(self) -> float:
        return math.inf if self._owned is None else self._owned.owned_until()

    async def release(self) -> None:
        stack, self._stack, self._owned = self._stack, None, None
        if stack is not None:
            with anyio.CancelScope(shield=True):
                await stack.aclose()  # gives the lease up, then closes the client

    async def append(self, data: bytes) -> None:
        await self._owner().append(data)

    async def read(self) -> AsyncIterator[bytes]:
        async with self._store() as store:
            async for line in store.read():
                yield line

    async def drop_after(self, lines: int) -> None:
        await self._owner().drop_after(lines)

    @property
    def commit_interval(self) -> float:
        return 0.5  # each PUT is billed: a run stores about two record objects a second

    def writer(self, name: str, *, create_only: bool = False) -> LazyWriter:
        return LazyWriter(self, name, create_only)

    async def get(self, name: str) -> bytes | None:
        async with self._store() as store:
            return await store.get(name)

    async def holder(self) -> dict[str, Any] | None:
        """The journal's lease as last stored (holder, `expires`, `released`), or None."""
        async with self._store() as store:
            found = await store.calls.get(store.url.lease_key)
        if found is None:
            return None
        try:
            doc = json.loads(found.body)
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None

    async def lines(self, name: str) -> AsyncIterator[bytes]:
        async with self._store() as store:
            async for line in store.lines(name):
                yield line

    async def delete(self, name: str) -> None:
        async with self._store() as store:
            await store.delete(name)

    def locate(self, name: str) -> str:
        return self.where.url(self.where.key(name))


class LazyWriter:
    """A sibling object spooled locally (owner-only), then stored whole on `commit`."""

    def __init__(self, store: LazyS3Store, name: str, create_only: bool) -> None:
        self.store, self.name, self.create_only = store, name, create_only
        self._data: IO[bytes] | None = spool()

    def write(self, data: bytes) -> None:
        if self._data is None:
            raise RuntimeError(f"{self.store.locate(self.name)} is already committed or aborted")
        self._data.write(data)

    async def commit(self) -> None:
        data = self._data
        if data is None:
            raise RuntimeError(f"{self.store.locate(self.name)} is already committed or aborted")
        async with self.store._store() as store:
            out = store.writer(self.name, create_only=self.create_only)
            try:
                data.seek(0)
                while piece := await anyio.to_thread.run_sync(data.read, COPY_PIECE):
                    out.write(piece)
                await out.commit()
            finally:
                await out.abort()
        await self.abort()

    async def abort(self) -> None:
        data, self._data = self._data, None
        if data is not None:
            data.close()


if TYPE_CHECKING:  # mypy proves the store keeps the seam's Protocol

    def _is_a_journal_store(store: LazyS3Store) -> JournalStore:
        return store
