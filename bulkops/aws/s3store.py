"""The journal store on S3: immutable record objects fenced by epoch, one snapshot per owner.

Layout under `PREFIX/` (keys in `bulkops.aws.s3url`): `journal/lease` (see
`bulkops.aws.s3lease`), `journal/snapshot/E`, `journal/folds/E/S`, `journal/records/E/S`,
and the sibling objects `PREFIX/NAME`.

Fencing. Every owner takes the lease at a new epoch E, higher than every epoch before.
Before its first append it folds the journal as it then stands into `snapshot/E`, created
with `If-None-Match: *`, and deletes the objects folded. Then it appends batches as
`records/E/000000000001`, `…/000000000002`, each created with `If-None-Match: *` and
never overwritten. The journal is: the snapshot of the highest epoch that has one, then
that epoch's folds and records in sequence order (`bulkops.aws.s3journal`); objects of
lower epochs are ignored. So a fenced
writer of epoch E-1, still appending after the takeover, writes only keys that no reader
of epoch E's journal ever reads: it can neither hide nor reorder the new owner's records.
Whatever it stored before the new owner listed the prefix is folded in, in order.

Durability. `append` returns once S3 answered 200, and only if that answer came before
`owned_until()`; a later answer raises LeaseLost (the batch may or may not count, and the
engine's reconciliation makes re-sending it harmless). A write whose answer was lost is
read back, never assumed failed (`bulkops.aws.s3calls`).

No torn tails. An S3 object is stored whole or not at all, so `read` never yields a torn
line: `drop_after` is a no-op when it would drop nothing and an error otherwise.

Resume cost. Every `fold_every` (1,000) record objects the owner writes one fold object
holding their lines (kept in a local temporary file as they are appended) and deletes
them, so a journal is never more than one snapshot, one fold per 1,000 batches and fewer
than 1,000 records; acquiring folds all of it into the new owner's snapshot. A reader
that finds a listed object gone (compacted meanwhile) lists again and goes on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import IO, TYPE_CHECKING, Any

import anyio
import structlog

from bulkops.aws.s3calls import Retry, S3Calls
from bulkops.aws.s3client import open_s3_client
from bulkops.aws.s3journal import JournalListing, Vanished, journal_lines, refuse_unless_empty
from bulkops.aws.s3lease import Clock, Lease, LeaseTimes
from bulkops.aws.s3objects import S3Writer, split_lines, spool, upload
from bulkops.aws.s3url import S3Url, check_name, parse_s3_url
from bulkops.errors import JournalCorrupt, LeaseLost, NotAJournal, Refused, StoreUnavailable

if TYPE_CHECKING:
    from bulkops.journal.store import JournalStore

log = structlog.get_logger("bulkops.aws.s3store")


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
        fold_every: int = 1000,
    ) -> None:
        self.calls, self.url = calls, url
        self.clock = clock or Clock()
        self.lease = Lease(calls, url.lease_key, str(url), times or LeaseTimes(), self.clock)
        self._interval = commit_interval
        self._seq = self._folded_seq = 0
        self._fold_every = fold_every
        self._tail: IO[bytes] | None = None  # what was appended since the last fold
        self._lines = 0  # lines the last read yielded
        self._snapshot: IO[bytes] | None = None  # the snapshot just written, for the first read
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
        fold_every: int = 1000,
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
            store = cls(calls, where, times=times, clock=clock, fold_every=fold_every)
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
        listing = refuse_unless_empty(self.url, await self.calls.list_keys(self.url.base))
        epoch = await self.lease.take(listing.epochs)
        if not await self.calls.put(self.url.snapshot_key(epoch), header, if_none_match=True):
            raise Refused(
                f"{self.url} already holds a bulkops job, started just now by another run"
            )
        self._start(1)

    async def acquire(self) -> None:
        listing = await self._list()
        if listing.epoch is None:
            raise NotAJournal(str(self.url), "no bulkops journal is stored under this prefix")
        epoch = await self.lease.take(listing.epochs)
        try:
            await self._fold(epoch)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.lease.release()
            raise

    def _start(self, lines: int, snapshot: IO[bytes] | None = None) -> None:
        self._seq = self._folded_seq = 0
        self._lines, self._snapshot, self._tail = lines, snapshot, spool()

    async def _fold(self, epoch: int) -> None:
        """Write `snapshot/EPOCH`: the journal as it stands now; delete what it replaces."""
        started = anyio.current_time()
        data, size, listing = spool(), 0, await self._list()
        # listed after the take: a fenced writer adds only keys that are ignored
        async for line in journal_lines(self.calls, self.url, listing):
            data.write(line)
            size += len(line)
        if not await upload(self.calls, self.url.snapshot_key(epoch), data, size, create_only=True):
            raise JournalCorrupt(
                self.url.url(self.url.snapshot_key(epoch)), 1, "a snapshot of this epoch exists"
            )
        self._start(0, data)
        old = listing.before(epoch)
        await self.calls.delete(old)
        log.info(
            "journal_compacted",
            journal=str(self.url),
            epoch=epoch,
            objects=len(old),
            bytes=size,
            seconds=round(anyio.current_time() - started, 3),
        )

    async def _fold_tail(self) -> None:
        """Put the records since the last fold into one fold object, then delete them."""
        assert self._tail is not None
        epoch, seq, size = self.lease.epoch, self._seq, self._tail.tell()
        key = self.url.fold_key(epoch, seq)
        try:
            stored = await upload(self.calls, key, self._tail, size, create_only=True)
        except StoreUnavailable as exc:  # the records are all stored: fold next time
            stored = False
            log.warning("journal_fold_failed", journal=str(self.url), error=str(exc))
        if not stored:
            self._tail.seek(0, 2)  # appends go on at its end
            return
        folded = [self.url.record_key(epoch, n) for n in range(self._folded_seq + 1, seq + 1)]
        self._tail.close()
        self._tail, self._folded_seq = spool(), seq
        await self.calls.delete(folded)
        log.info("journal_folded", journal=str(self.url), epoch=epoch, records=len(folded))

    async def keep_alive(self) -> None:
        await self.lease.keep_alive()

    def owned_until(self) -> float:
        return self.lease.owned_until()

    async def release(self) -> None:
        for data in (self._snapshot, self._tail):
            if data is not None:
                data.close()
        self._snapshot = self._tail = None
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
            if self._tail is not None:
                self._tail.write(data)
                if self._seq - self._folded_seq >= self._fold_every:
                    await self._fold_tail()

    async def read(self) -> AsyncIterator[bytes]:
        count, held = 0, self._snapshot
        self._snapshot = None
        if held is not None:  # the snapshot this owner just wrote: no need to fetch it
            with held:
                held.seek(0)
                for line in held:
                    count += 1
                    yield line
        for attempt in range(4):
            full = held is None or attempt > 0  # after a restart: from the top, skipping
            skip = count if full else 0
            try:
                listing = await self._list()
                lines = journal_lines(self.calls, self.url, listing, streams=full)
                async for line in lines:
                    if skip:
                        skip -= 1
                        continue
                    count += 1
                    yield line
                break
            except Vanished:
                if attempt == 3:
                    raise
                log.info("journal_compacted_while_read", journal=str(self.url))
        self._lines = count

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
        key, empty = self.url.key(name), True
        async for line in split_lines(self.calls.stream(key)):
            empty = False
            yield line
        if empty and await self.calls.get_size(key) is None:  # as a local store: no such file
            raise FileNotFoundError(f"{self.url.url(key)} does not exist")

    async def delete(self, name: str) -> None:
        await self.calls.delete([self.url.key(check_name(name))])

    def locate(self, name: str) -> str:
        return self.url.url(self.url.key(name))


if TYPE_CHECKING:  # mypy proves the store keeps the seam's Protocol

    def _is_a_journal_store(store: S3Store) -> JournalStore:
        return store
