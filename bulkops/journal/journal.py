"""The durable checkpoint of a job: an append-only JSON-lines journal and its recovery.

Its records are described in `bulkops.journal.records`: a header, then one record per
finished chunk attempt and a few events.

Use:

    journal = await create_journal(open_store(path), JournalHeader.new(spec, ...))
    async with journal:                                   # close() on exit
        await journal.write([(outcome, complete), ...])    # durable on return
    async with open_journal(store) as (journal, state):    # resume: recover, trim torn tail
        state.pending_versions(chunk)
    await recover(store) -> JournalState; iter_records(store) -> AsyncIterator[dict]

After a crash only the last line can be torn; it is dropped on reading and cut away
(`store.drop_after`) when the journal is reopened. Damage anywhere else raises
`JournalCorrupt`. The journal holds the spec and the outcomes only, never credentials.
"""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import anyio

from bulkops.errors import JournalFull, UsageError
from bulkops.journal.local import LocalFileStore
from bulkops.journal.location import open_store
from bulkops.journal.records import (
    FORMAT_VERSION,
    JournalHeader,
    RecordReader,
    chunk_record,
    encode,
    iter_records,
    now,
    read_header,
)
from bulkops.journal.store import JournalStore
from bulkops.model import Chunk, ChunkOutcome

__all__ = [
    "FORMAT_VERSION",
    "Journal",
    "JournalHeader",
    "JournalState",
    "JournalStore",
    "LocalFileStore",
    "create_journal",
    "iter_records",
    "open_journal",
    "open_store",
    "read_header",
    "recover",
]

_SECRET_WORDS = ("secret", "token", "password", "credential", "accesskey")


@dataclass(slots=True)
class JournalState:
    """What a resume needs: complete chunks, final versions of unfinished ones, attempts."""

    header: JournalHeader
    complete: set[str] = field(default_factory=set)
    last_attempts: dict[str, int] = field(default_factory=dict)
    records: int = 1  # every intact record, the header included
    attempts: int = 0  # chunk records
    events: int = 0
    valid_size: int = 0  # bytes of intact records; a torn tail starts here
    valid_lines: int = 0  # intact records, the header included
    torn_line: int | None = None  # the line dropped as torn, if any
    _final: dict[str, set[str]] = field(default_factory=dict)  # only for unfinished chunks
    _dispatched: set[str] = field(default_factory=set)  # marked sent, not yet complete

    @property
    def chunks_complete(self) -> int:
        return len(self.complete)

    def is_complete(self, chunk_id: str) -> bool:
        return chunk_id in self.complete

    def last_attempt(self, chunk_id: str) -> int:
        """The last attempt number recorded for the chunk; 0 if it was never tried."""
        return self.last_attempts.get(chunk_id, 0)

    def was_dispatched(self, chunk_id: str) -> bool:
        """Whether a run marked the chunk sent: its calls may have acted, answered or not."""
        return chunk_id in self._dispatched or chunk_id in self.last_attempts

    def pending_versions(self, chunk: Chunk) -> tuple[str, ...]:
        """The chunk's versions not yet final, in chunk order; () once the chunk is complete.

        A delete-packages chunk has no versions: ask `is_complete` instead.
        """
        if chunk.id in self.complete:
            return ()
        final = self._final.get(chunk.id)
        if not final:
            return chunk.versions
        return tuple(v for v in chunk.versions if v not in final)

    def apply(self, record: dict[str, Any]) -> None:
        """Fold one chunk, dispatch or event record into the state."""
        self.records += 1
        if record["type"] == "event":
            self.events += 1
            return
        if record["type"] == "dispatch":
            self._dispatched.update(c for c in record["chunks"] if c not in self.complete)
            return
        self.attempts += 1
        cid: str = record["chunk"]
        self.last_attempts[cid] = max(self.last_attempts.get(cid, 0), record["attempt"])
        if cid in self.complete:
            return
        if record["complete"]:
            self.complete.add(cid)
            self._final.pop(cid, None)
            self._dispatched.discard(cid)
            return
        final = set(record["successfulVersions"])
        if failed := record["failedVersions"]:
            retry = set(record["retry"])
            final.update(v for v in failed if v not in retry)
        if final:
            self._final.setdefault(cid, set()).update(final)


async def recover(store: JournalStore) -> JournalState:
    """Stream the journal into a `JournalState`; memory grows with chunks, not versions."""
    reader = RecordReader(store)
    async with aclosing(reader.__aiter__()) as records:
        state = JournalState(JournalHeader.from_dict(await anext(records)))
        async for record in records:
            state.apply(record)
    state.valid_size, state.torn_line = reader.valid_size, reader.torn_line
    state.valid_lines = reader.valid_lines
    return state


class Journal:
    """An open journal: appends chunk outcomes and events, each call durable on return."""

    def __init__(self, store: JournalStore, header: JournalHeader) -> None:
        self.store = store
        self.header = header
        self._lock = anyio.Lock()  # one append at a time keeps every batch contiguous
        self._closed = False
        self._failed: BaseException | None = None
        self._last_append = -float("inf")

    async def write(
        self, outcomes: Sequence[tuple[ChunkOutcome, bool]], dispatched: Sequence[str] = ()
    ) -> None:
        """Append one record per (outcome, complete), and a dispatch record for the chunks
        about to be sent, then fsync once; returns when durable."""
        if outcomes or dispatched:
            at = now()
            lines = [encode(chunk_record(o, c, at)) for o, c in outcomes]
            if dispatched:
                lines.append(encode({"type": "dispatch", "at": at, "chunks": list(dispatched)}))
            await self._append(b"".join(lines))

    async def event(self, kind: str, **data: Any) -> None:
        """Append an event (run started, stopped, resumed...) with a timestamp; durable."""
        for key in data:
            if any(word in key.lower().replace("_", "") for word in _SECRET_WORDS):
                raise ValueError(f"refusing to journal {key!r}: the journal never holds secrets")
        await self._append(encode({"type": "event", "at": now(), "kind": kind, "data": data}))

    async def _append(self, data: bytes) -> None:
        async with self._lock:
            if self._closed or self._failed is not None:
                why = "closed" if self._failed is None else "broken by a failed write"
                raise RuntimeError(f"journal {self.store.describe()} is {why}") from self._failed
            # group commit: a store billed per write wants a pause between appends
            pause = self._last_append + self.store.commit_interval - anyio.current_time()
            if pause > 0:
                await anyio.sleep(pause)
            try:
                await self.store.append(data)
            except Exception as exc:
                # A half-written record may now end the file and a failed fsync cannot be
                # retried safely: refuse further appends; a reopen drops the torn tail.
                self._failed = exc
                if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise JournalFull(self.store.describe()) from exc
                raise
            self._last_append = anyio.current_time()

    @property
    def broken(self) -> bool:
        """A write failed: nothing more is appended (a failed fsync is never retried)."""
        return self._failed is not None

    async def close(self) -> None:
        """Release the journal once pending appends have finished; idempotent."""
        with anyio.CancelScope(shield=True):
            async with self._lock:
                self._closed = True
                await self.store.release()

    async def __aenter__(self) -> Journal:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def create_journal(store: JournalStore, header: JournalHeader) -> Journal:
    """Create a new journal holding `header` (Refused if one exists) and open it for writing."""
    data = encode({"type": "header", **header.to_dict()})
    try:
        await store.create(data)
    except BaseException as exc:
        with anyio.CancelScope(shield=True):
            await store.release()
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise UsageError(
                f"no space left to create the journal {store.describe()}: free space or "
                "choose a --checkpoint on another disk. Nothing was sent"
            ) from exc
        raise
    return Journal(store, header)


@asynccontextmanager
async def open_journal(store: JournalStore) -> AsyncIterator[tuple[Journal, JournalState]]:
    """Reopen a journal to resume it: lock, recover, cut a torn tail; closed on exit."""
    await store.acquire()
    try:
        state = await recover(store)
        if state.torn_line is not None:
            await store.drop_after(state.valid_lines)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await store.release()
        raise
    async with Journal(store, state.header) as journal:
        if state.torn_line is not None:
            await journal.event("torn_tail_dropped", line=state.torn_line)
        yield journal, state
