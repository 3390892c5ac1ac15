"""The journal seam: where one job's journal and its sibling objects live.

A store holds one job: its journal (an append-only sequence of JSON lines, header first)
and a few named sibling objects (the chunk list, a safe delete's phase 2 manifest, undo
manifests). The local file store keeps today's files (`C`, `C.chunks`, `C.delete.jsonl`,
`C.undo.jsonl`...); an object store (S3) keeps objects under a prefix. Every method that
may block is async; a local store runs its blocking calls in a worker thread.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol


class ObjectWriter(Protocol):
    """A sibling object being written: bytes go in with `write`, `commit` publishes them
    whole under the object's name, `abort` (or leaving without commit) drops them."""

    def write(self, data: bytes) -> None: ...  # may buffer or spool; sync, cheap
    async def commit(self) -> None: ...  # atomic publish, durable on return
    async def abort(self) -> None: ...  # idempotent; a no-op after commit


class JournalStore(Protocol):
    def describe(self) -> str:
        """Where the job is, for messages: a path or an s3:// URL (never credentials)."""
        ...

    # journal lifecycle and ownership
    async def exists(self) -> bool:
        """Whether a journal is stored here."""
        ...

    async def create(self, header: bytes) -> None:
        """Create the journal holding `header` (one line) and own it; durable on return.
        Refused (exit 2) if a journal is already there."""
        ...

    async def acquire(self) -> None:
        """Own an existing journal for appending: JournalBusy (exit 75, naming the holder)
        while another run owns it; NotAJournal if nothing is stored here."""
        ...

    async def keep_alive(self) -> None:
        """Keep ownership for as long as it runs (renewing a lease); runs until cancelled.
        Raises when ownership is lost or cannot be renewed in time, so the run's task
        group stops its calls. A local store (flock) only waits."""
        ...

    def owned_until(self) -> float:
        """`time.monotonic()` deadline up to which ownership is certain (inf for a local
        store). A run sends no new call that could end after it."""
        ...

    async def release(self) -> None:
        """Give ownership up and close; idempotent."""
        ...

    # records
    async def append(self, data: bytes) -> None:
        """Append whole lines (a batch of records); durable on return. Raises if
        ownership was lost: a fenced writer can never hide or reorder the new owner's
        records."""
        ...

    def read(self) -> AsyncIterator[bytes]:
        """Every stored line in order, each ending in b"\\n" except perhaps a torn last
        one (a crash mid-append on a local file)."""
        ...

    async def drop_after(self, lines: int) -> None:
        """Keep only the first `lines` lines: drops the torn tail the reader reported;
        durable on return. Needs ownership."""
        ...

    @property
    def commit_interval(self) -> float:
        """The shortest pause between appends that the store wants (group commit): 0 for
        a local file, about 0.5 s for S3 (each PUT is billed)."""
        ...

    # sibling objects, by short name ("chunks", "delete.jsonl", "undo-Unlisted.jsonl")
    def writer(self, name: str, *, create_only: bool = False) -> ObjectWriter:
        """Write a sibling object whole (owner-only, atomic, durable). With `create_only`
        commit refuses (Refused) when the object exists: the first of several writers wins."""
        ...

    async def get(self, name: str) -> bytes | None:
        """A sibling object's bytes, or None when there is none."""
        ...

    def lines(self, name: str) -> AsyncIterator[bytes]:
        """A large sibling object's lines, streamed (the chunk list)."""
        ...

    async def delete(self, name: str) -> None:
        """Remove a sibling object; no error when there is none."""
        ...

    def locate(self, name: str) -> str:
        """Where a sibling object is, for messages and printed commands (path or URL)."""
        ...
