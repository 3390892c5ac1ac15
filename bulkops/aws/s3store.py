"""The journal store on S3: immutable record objects fenced by epoch, one snapshot per owner.

Layout under `PREFIX/` (keys in `bulkops.aws.s3url`): `journal/lease` (see
`bulkops.aws.s3lease`), `journal/snapshot/E`, `journal/records/E/S`, and the sibling
objects `PREFIX/NAME`.

Fencing. Every owner takes the lease at a new epoch E, higher than every epoch before.
Before its first append it folds the journal as it then stands into `snapshot/E`, created
with `If-None-Match: *`, and deletes the objects folded. Then it appends batches as
`records/E/000000000001`, `…/000000000002`, each created with `If-None-Match: *` and
never overwritten. The journal is: the snapshot of the highest epoch that has one, then
that epoch's records in sequence order; records of lower epochs are ignored. So a fenced
writer of epoch E-1, still appending after the takeover, writes only keys that no reader
of epoch E's journal ever reads: it can neither hide nor reorder the new owner's records.
Whatever it stored before the new owner listed the prefix is folded in, in order.

Durability. `append` returns once S3 answered 200, and only if that answer came before
`owned_until()`; a later answer raises LeaseLost (the batch may or may not count, and the
engine's reconciliation makes re-sending it harmless). A write whose answer was lost is
read back, never assumed failed (`bulkops.aws.s3calls`).

No torn tails. An S3 object is stored whole or not at all, so `read` never yields a torn
line: `drop_after` is a no-op when it would drop nothing and an error otherwise.

Resume cost. Acquiring folds at most one run's records (about 2 per second of the run
before) into one snapshot, fetched in parallel; a resume then reads one object.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import IO, Any

import anyio
import structlog

from bulkops.aws.s3calls import Retry, S3Calls
from bulkops.aws.s3client import open_s3_client
from bulkops.aws.s3lease import Clock, Lease, LeaseTimes
from bulkops.aws.s3objects import S3Writer, split_lines, spool, upload
from bulkops.aws.s3url import JournalListing, S3Url, check_name, parse_s3_url
from bulkops.errors import JournalCorrupt, LeaseLost, NotAJournal, Refused

log = structlog.get_logger("bulkops.aws.s3store")

READ_WINDOW = 64  # record objects fetched at once while folding or reading


class S3Store:
    """One job's journal and sibling objects under `s3://BUCKET/PREFIX/` (`JournalStore`)."""

    def __init__(
        self,
        calls: S3Calls,
        url: S3Url,
        *,
        times: LeaseTimes | None = None,
        clock: Clock | None = None,
        commit_interval: float = 0.5,
    ) -> None:
        self.calls, self.url = calls, url
        self.clock = clock or Clock()
        self.lease = Lease(calls, url.lease_key, str(url), times or LeaseTimes(), self.clock)
        self._interval = commit_interval
        self._seq = 0
        self._lines = 0  # lines the last read yielded
        self._folded: IO[bytes] | None = None  # the snapshot just written, for the first read
        self._lock = anyio.Lock()

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        url: str | S3Url,
        session: Any,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        kms_key: str | None = None,
        times: LeaseTimes | None = None,
        clock: Clock | None = None,
        retry: Retry | None = None,
    ) -> AsyncIterator[S3Store]:
        """The store at `url` through `session` (an aioboto3 Session: the job's profile and
        credentials), in the bucket's region (found when not given); released on exit."""
        where = parse_s3_url(url) if isinstance(url, str) else url
        sse = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key} if kms_key else {}
        retry = retry or Retry()
        async with open_s3_client(
            session,
            where,
            region=region,
            endpoint_url=endpoint_url,
            sdk_attempts=retry.sdk_attempts,
        ) as (client, _):
            calls = S3Calls(client, where.bucket, sse, retry)
            store = cls(calls, where, times=times, clock=clock)
            try:
                yield store
            finally:
                with anyio.CancelScope(shield=True):
                    await store.release()

    def describe(self) -> str:
        return str(self.url)

    @property
    def commit_interval(self) -> float:
        return self._interval

    async def _list(self) -> JournalListing:
        listing = JournalListing(self.url, await self.calls.list_keys(self.url.journal))
        if listing.foreign:
            raise JournalCorrupt(
                self.url.url(listing.foreign[0]),
                1,
                "an object bulkops does not write is in "
                f"the journal's place ({len(listing.foreign)} such)",
            )
        return listing

    async def exists(self) -> bool:
        return bool((await self._list()).snapshots)

    async def create(self, header: bytes) -> None:
        everything = await self.calls.list_keys(self.url.base)
        listing = JournalListing(self.url, everything)
        if listing.snapshots:
            raise Refused(
                f"{self.url} already holds a bulkops job: resume it, or pick a new prefix"
            )
        others = [k for k, _ in everything if not k.startswith(self.url.journal)]
        if others or listing.foreign:
            names = ", ".join(self.url.url(k) for k in (listing.foreign + others)[:3])
            nested = any("/journal/snapshot/" in k for k in others)
            what = "another bulkops job" if nested else "objects bulkops did not write"
            raise Refused(f"{self.url} is not empty: it holds {what} ({names}); pick a new prefix")
        epoch = await self.lease.take(listing.epochs)
        if not await self.calls.put(self.url.snapshot_key(epoch), header, if_none_match=True):
            raise Refused(
                f"{self.url} already holds a bulkops job, started just now by another run"
            )
        self._seq, self._lines = 0, 1

    async def acquire(self) -> None:
        listing = await self._list()
        if listing.current() is None:
            raise NotAJournal(str(self.url), "no bulkops journal is stored under this prefix")
        epoch = await self.lease.take(listing.epochs)
        try:
            await self._fold(epoch)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.lease.release()
            raise

    async def _fold(self, epoch: int) -> None:
        """Write `snapshot/EPOCH`: the journal as it stands now; delete what it replaces."""
        started = anyio.current_time()
        listing = await self._list()  # after the take: a fenced writer adds only ignored keys
        data = spool()
        size = 0
        async for line in self._lines_of(listing):
            data.write(line)
            size += len(line)
        if not await upload(self.calls, self.url.snapshot_key(epoch), data, size, create_only=True):
            raise JournalCorrupt(
                self.url.url(self.url.snapshot_key(epoch)), 1, "a snapshot of this epoch exists"
            )
        self._seq, self._folded = 0, data
        old = [k for e, k in listing.snapshots.items() if e < epoch]
        old += [k for e, found in listing.records.items() if e < epoch for _, k in found]
        await self.calls.delete(old)
        log.info(
            "journal_compacted",
            journal=str(self.url),
            epoch=epoch,
            objects=len(old),
            bytes=size,
            seconds=round(anyio.current_time() - started, 3),
        )

    async def keep_alive(self) -> None:
        await self.lease.keep_alive()

    def owned_until(self) -> float:
        return self.lease.owned_until()

    async def release(self) -> None:
        if self._folded is not None:
            self._folded.close()
            self._folded = None
        await self.lease.release()

    async def append(self, data: bytes) -> None:
        if not data.endswith(b"\n"):
            raise ValueError("append takes whole lines")
        async with self._lock:
            self.lease.check()
            key = self.url.record_key(self.lease.epoch, self._seq + 1)
            if await self.calls.put(key, data, if_none_match=True) is None:
                raise LeaseLost(str(self.url), f"{self.url.url(key)} was written by another run")
            self._seq += 1
            self.lease.check()  # answered after the deadline: a new owner may not see it

    async def read(self) -> AsyncIterator[bytes]:
        count = 0
        if self._folded is not None:
            folded, self._folded = self._folded, None
            try:
                folded.seek(0)
                for line in folded:
                    count += 1
                    yield line
            finally:
                folded.close()
            listing = await self._list()
            records = listing.records.get(self.lease.epoch, [])
            async for line in self._records(records):
                count += 1
                yield line
        else:
            async for line in self._lines_of(await self._list()):
                count += 1
                yield line
        self._lines = count

    async def _lines_of(self, listing: JournalListing) -> AsyncIterator[bytes]:
        current = listing.current()
        if current is None:
            return
        epoch, key = current
        async for line in split_lines(self.calls.stream(key)):
            if not line.endswith(b"\n"):
                raise JournalCorrupt(self.url.url(key), 0, "the snapshot's last line is cut")
            yield line
        async for line in self._records(listing.records.get(epoch, [])):
            yield line

    async def _records(self, records: list[tuple[int, str]]) -> AsyncIterator[bytes]:
        """The lines of record objects, in order; fetched READ_WINDOW at a time."""
        for start in range(0, len(records), READ_WINDOW):
            window = records[start : start + READ_WINDOW]
            bodies: list[bytes | None] = [None] * len(window)

            async def fetch(i: int, key: str, bodies: list[bytes | None] = bodies) -> None:
                found = await self.calls.get(key)
                if found is None:
                    raise JournalCorrupt(self.url.url(key), 0, "a listed record vanished")
                bodies[i] = found.body

            async with anyio.create_task_group() as tg:
                for i, (_, key) in enumerate(window):
                    tg.start_soon(fetch, i, key)
            for (_, key), body in zip(window, bodies, strict=True):
                if not body or not body.endswith(b"\n"):
                    raise JournalCorrupt(self.url.url(key), 0, "a record object is empty or cut")
                for line in body.splitlines(keepends=True):
                    yield line

    async def drop_after(self, lines: int) -> None:
        if lines >= self._lines:
            return  # nothing is torn: no S3 object is ever stored in part
        raise JournalCorrupt(
            str(self.url), lines + 1, "asked to drop stored lines, but S3 objects are never torn"
        )

    def _guard(self) -> None:
        if self.lease.epoch and not self.lease.held:
            raise LeaseLost(str(self.url), "the lease was lost before this object was written")
        if self.lease.held:
            self.lease.check()

    def writer(self, name: str, *, create_only: bool = False) -> S3Writer:
        return S3Writer(self.calls, self.url.key(name), create_only=create_only, guard=self._guard)

    async def get(self, name: str) -> bytes | None:
        found = await self.calls.get(self.url.key(name))
        return None if found is None else found.body

    async def lines(self, name: str) -> AsyncIterator[bytes]:
        async for line in split_lines(self.calls.stream(self.url.key(name))):
            yield line

    async def delete(self, name: str) -> None:
        await self.calls.delete([self.url.key(check_name(name))])

    def locate(self, name: str) -> str:
        return self.url.url(self.url.key(name))
