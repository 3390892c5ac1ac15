"""A sharded job's objects under its prefix P: the descriptor, the shared chunk list, the shards.

    P/shards.json            N, the spec, the chunk list's sha256 (first writer wins)
    P/chunks                 the job's chunk list, chunked once (first writer wins)
    P/shard-K-of-N/          shard K's own job: its journal and lease, and its chunks
                             (chunk i of P/chunks for every i ≡ K mod N, see `jobs.shards`)

Each shard is an ordinary job under its own prefix, so resume, report and the lease work
on it unchanged; what makes them one job is the descriptor every worker checks first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import anyio
import orjson
import structlog

from bulkops.errors import Refused, UsageError
from bulkops.jobs.shards import Shard
from bulkops.journal.chunklist import CHUNKS, ChunkListWriter, read_chunks
from bulkops.journal.journal import JournalHeader
from bulkops.journal.location import Checkpoint, job_in
from bulkops.journal.store import JournalStore
from bulkops.model import JobSpec

log = structlog.get_logger("bulkops.jobs.sharded")

DESCRIPTOR = "shards.json"


@dataclass(frozen=True, slots=True)
class Descriptor:
    """What every worker of one sharded job must agree on."""

    shards: int
    spec: JobSpec
    chunk_list_sha256: str
    chunks: int
    versions: int  # what the job plans: versions (packages for delete-packages)
    packages: int

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "bulkops": "sharded-job",
                "shards": self.shards,
                "spec": self.spec.to_dict(),
                "chunkListSha256": self.chunk_list_sha256,
                "chunks": self.chunks,
                "versions": self.versions,
                "packages": self.packages,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> Descriptor:
        try:
            d = orjson.loads(data)
            return cls(
                int(d["shards"]),
                JobSpec.from_dict(d["spec"]),
                str(d["chunkListSha256"]),
                int(d["chunks"]),
                int(d["versions"]),
                int(d["packages"]),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"{where} is not a bulkops sharded job ({exc})") from exc


def shard_location(prefix: Checkpoint, shard: Shard) -> Checkpoint:
    """Where shard K of N keeps its own job: `PREFIX/shard-K-of-N`."""
    return job_in(prefix, shard.name)


async def read_descriptor(store: JournalStore) -> Descriptor | None:
    """The job's descriptor, or None when the prefix holds no sharded job."""
    data = await store.get(DESCRIPTOR)
    return None if data is None else Descriptor.from_bytes(data, store.locate(DESCRIPTOR))


async def claim_job(store: JournalStore, mine: Descriptor) -> None:
    """Store the job's descriptor, or check the one the first worker stored: a worker that
    disagrees (another manifest, spec or shard count) is refused before any call."""
    out = store.writer(DESCRIPTOR, create_only=True)
    out.write(mine.to_bytes())
    try:
        await out.commit()
        log.info("sharded_job_claimed", shards=mine.shards, chunks=mine.chunks)
        return
    except Refused:
        pass
    finally:
        await out.abort()
    theirs = await read_descriptor(store)
    where = store.describe()
    if theirs is None:
        raise UsageError(f"{store.locate(DESCRIPTOR)} vanished while it was checked")
    if theirs.spec != mine.spec:
        raise UsageError(
            f"{where} holds another job ({theirs.spec.operation.value} on "
            f"{theirs.spec.domain}/{theirs.spec.repository}); choose another prefix"
        )
    if theirs.chunk_list_sha256 != mine.chunk_list_sha256:
        raise UsageError(
            f"{where} was started with another manifest (chunk list sha256 "
            f"{theirs.chunk_list_sha256[:12]}…, this manifest's is "
            f"{mine.chunk_list_sha256[:12]}…): every worker needs the same manifest"
        )
    if theirs.shards != mine.shards:
        raise UsageError(
            f"{where} was started with --shards {theirs.shards}, not {mine.shards}: "
            "every worker needs the same --shards"
        )


async def shard_header(
    job_store: JournalStore, shard_store: JournalStore, shard: Shard, header: JournalHeader
) -> JournalHeader:
    """Write shard's chunks (its share of the job's list, proven by the job header's digest)
    beside its journal, and the header of the shard's own job."""
    assert header.chunk_list_sha256 is not None
    writer = ChunkListWriter(shard_store)
    packages: set[Any] = set()
    versions = position = 0
    try:
        async for chunk in read_chunks(job_store, CHUNKS, header.chunk_list_sha256):
            if shard.owns(position):
                writer.add(chunk.ref, chunk.versions, chunk.revisions)
                packages.add(chunk.ref)
                versions += len(chunk.versions)
            position += 1
        listing = await writer.commit()
    finally:
        await writer.abort()
    return replace(
        header,
        packages=len(packages),
        versions=versions or len(packages),
        chunks=listing.chunks,
        chunk_list=listing.file,
        chunk_list_sha256=listing.sha256,
    )


async def wait_for_holder(holder: Any, poll: float) -> bool:
    """Wait while another live run holds a shard's lease (`holder()` reads it); True when
    the holder released it, False when it expired unrenewed (the holder died) or none."""
    while True:
        doc = await holder()
        if doc is None:
            return False
        if doc.get("released"):
            return True
        if float(doc["expires"]) <= time.time():
            return False
        log.info("shard_busy_waiting", holder_pid=doc.get("pid"), holder_host=doc.get("host"))
        await anyio.sleep(poll)
