"""A job's chunks, validated once: the sibling object ("chunks") that a run and its resumes read.

`manifest.scan_manifest` validates a manifest and, for a run, writes every chunk it plans
into a chunk list through the job's store. The journal's header holds the list's file
name and sha256, so the run and every resume read the chunks back without parsing or
validating the manifest again, and a list that changed is refused before anything is sent.

One JSON array per line, one line per chunk:

    ["npm","acme","web",["1.0.0","1.0.1"],{"1.0.1":"REV"}]      format, namespace (or
                                                                null), package, versions,
                                                                pinned revisions
The store publishes the list whole on `commit` (owner-only, atomic, durable), so a crash
never leaves a half-written list under its name.
"""

from __future__ import annotations

import errno
import hashlib
import shutil
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import anyio.to_thread
import orjson

from bulkops.errors import ChunkListCorrupt, Refused, UsageError
from bulkops.journal.records import closing_iter
from bulkops.journal.store import JournalStore, ObjectWriter
from bulkops.model import Chunk, PackageRef

__all__ = ["CHUNKS", "ChunkList", "ChunkListWriter", "read_chunks"]

# The chunk list's sibling name. The header keeps the file name the list had when the job
# started (for people); the store finds it by this name, and its digest proves it.
CHUNKS = "chunks"
_HASH_BATCH = 1 << 20  # bytes hashed per worker-thread call


@dataclass(frozen=True, slots=True)
class ChunkList:
    """A written chunk list: its file name (for the header), its sha256, how many chunks."""

    file: str
    sha256: str
    chunks: int


class ChunkListWriter:
    """Writes a chunk list through an `ObjectWriter`; `commit` publishes it whole."""

    def __init__(self, store: JournalStore, *, shared: bool = False) -> None:
        self.store, self.shared = store, shared  # shared: several workers write the same list
        self.where = store.locate(CHUNKS)
        self._out: ObjectWriter = store.writer(CHUNKS, create_only=shared)
        self._dropped: list[ObjectWriter] = []
        self._sha = hashlib.sha256()
        self.size = 0
        self.chunks = 0

    @property
    def local_dir(self) -> Path | None:
        """The local directory the list goes to (for spill files beside it), if local."""
        return None if "://" in self.where else Path(self.where).parent

    def restart(self) -> None:
        """Start the list again, empty (a second pass over the manifest)."""
        self._dropped.append(self._out)
        self._out = self.store.writer(CHUNKS, create_only=self.shared)
        self._sha, self.size, self.chunks = hashlib.sha256(), 0, 0

    def add(self, ref: PackageRef, versions: Sequence[str], revisions: Mapping[str, str]) -> None:
        line = orjson.dumps([ref.format, ref.namespace, ref.package, versions, revisions]) + b"\n"
        self._sha.update(line)
        self.size += len(line)
        self.chunks += 1
        try:
            self._out.write(line)
        except OSError as exc:
            self._full(exc)

    @property
    def sha256(self) -> str:
        """The digest of the lines added so far."""
        return self._sha.hexdigest()

    async def commit(self) -> ChunkList:
        """Publish the list under its name (replacing an orphan of an earlier try); a shared
        list another worker stored first stays: its digest is checked when it is read."""
        await self._abort_dropped()
        try:
            await self._out.commit()
        except Refused:
            if not self.shared:
                raise
            await self._out.abort()
        except OSError as exc:
            await self._out.abort()
            self._full(exc)
        return ChunkList(PurePosixPath(self.where).name, self._sha.hexdigest(), self.chunks)

    async def abort(self) -> None:
        """Drop what was written; idempotent, and a no-op after `commit`."""
        await self._abort_dropped()
        await self._out.abort()

    async def _abort_dropped(self) -> None:
        while self._dropped:
            await self._dropped.pop().abort()

    def _full(self, exc: OSError) -> None:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise exc
        free = ""
        if self.local_dir is not None:
            free = f" and {shutil.disk_usage(self.local_dir).free:,} are free"
        raise UsageError(
            f"no space left to write the chunk list {self.where}: it needs more than "
            f"{self.size:,} bytes{free} (the journal needs about as much again); free space "
            "or choose a --checkpoint on another disk. Nothing was sent"
        ) from exc


async def read_chunks(store: JournalStore, name: str, sha256: str) -> AsyncGenerator[Chunk, None]:
    """The chunks of the store's list `name`, in order, once its bytes are proven `sha256`'s.

    The digest is checked before the first chunk is yielded and again as the list is read,
    so neither a list changed before the run nor one changed during it is ever sent. The
    hashing runs in a worker thread, a megabyte at a time.
    """
    where = store.locate(name)
    first = hashlib.sha256()
    try:
        async with closing_iter(_hashed(store, name, first)) as lines:
            async for _ in lines:
                pass
    except OSError as exc:
        raise ChunkListCorrupt(
            f"the job's chunk list {where} cannot be read: {exc.strerror or exc}"
        ) from exc
    if first.hexdigest() != sha256:
        raise ChunkListCorrupt(f"the job's chunk list {where} changed since the job started")
    again = hashlib.sha256()
    async with closing_iter(_hashed(store, name, again)) as lines:
        number = 0
        async for line in lines:
            number += 1
            try:
                fmt, namespace, package, versions, revisions = orjson.loads(line)
            except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
                raise ChunkListCorrupt(f"{where}:{number}: not a chunk ({exc})") from exc
            yield Chunk.build(PackageRef(fmt, namespace, package), tuple(versions), revisions)
    if again.hexdigest() != sha256:
        raise ChunkListCorrupt(f"the job's chunk list {where} changed while it was read")


async def _hashed(store: JournalStore, name: str, sha: Any) -> AsyncGenerator[bytes, None]:
    """The lines of `name`, each fed to `sha` by the end (in a worker thread, in batches)."""
    batch, size = list[bytes](), 0
    async with closing_iter(store.lines(name)) as lines:
        async for line in lines:
            batch.append(line)
            size += len(line)
            if size >= _HASH_BATCH:
                await anyio.to_thread.run_sync(sha.update, b"".join(batch))
                batch, size = [], 0
            yield line
    await anyio.to_thread.run_sync(sha.update, b"".join(batch))
