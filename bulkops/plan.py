"""Targets to deterministic chunks (≤100 versions of one package), shards and estimates; no I/O.

A package's k-th chunk is always its versions k*size..(k+1)*size-1 in manifest order, so
chunk ids depend only on that package's own rows: the same manifest gives the same
chunks on every run and machine, whatever other packages it interleaves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bulkops.model import MAX_CHUNK_SIZE, Chunk, Operation, PackageRef, Target

if TYPE_CHECKING:
    from bulkops.manifest import ManifestSummary


@dataclass(slots=True)
class _Buffer:
    remaining: int  # targets of the package still to come; negative when unknown
    versions: dict[str, str | None] = field(default_factory=dict)  # version -> revision


def make_chunks(
    targets: Iterable[Target],
    *,
    operation: Operation,
    chunk_size: int = MAX_CHUNK_SIZE,
    package_sizes: Callable[[PackageRef], int] | None = None,
) -> Iterator[Chunk]:
    """Group unique targets into chunks of at most `chunk_size` versions of one package.

    A chunk goes out as soon as its package's buffer is full; partial buffers go out at
    the end in first-seen package order. With `package_sizes` (e.g.
    `summary.package_sizes.get`, 0 meaning unknown) a package's last chunk goes out as
    soon as its last row is read, so a manifest grouped by package keeps one buffer
    open: the same chunks, in an order that is just as deterministic.
    delete-packages gives one chunk per package, with no versions.
    """
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk_size must be 1..{MAX_CHUNK_SIZE}, got {chunk_size}")
    if not operation.per_version:
        for t in targets:
            if t.version is not None:
                raise ValueError(f"{operation.value} takes packages, got version {t.version!r}")
            yield Chunk.build(t.ref, ())
        return
    open_buffers: dict[PackageRef, _Buffer] = {}  # insertion order is first-seen order
    for t in targets:
        if t.version is None:
            raise ValueError(f"{operation.value} needs a version for {t.ref}")
        buf = open_buffers.get(t.ref)
        if buf is None:
            size = package_sizes(t.ref) if package_sizes is not None else 0
            buf = open_buffers[t.ref] = _Buffer(size if size > 0 else -1)
        if t.version in buf.versions:
            raise ValueError(f"version {t.version!r} of {t.ref} given twice")
        buf.versions[t.version] = t.revision
        buf.remaining -= 1
        if buf.remaining == 0:
            del open_buffers[t.ref]
            yield _chunk(t.ref, buf.versions)
        elif len(buf.versions) == chunk_size:
            yield _chunk(t.ref, buf.versions)
            buf.versions = {}
    for ref, buf in open_buffers.items():
        if buf.versions:
            yield _chunk(ref, buf.versions)


def _chunk(ref: PackageRef, versions: dict[str, str | None]) -> Chunk:
    revisions = {v: r for v, r in versions.items() if r is not None}
    return Chunk.build(ref, tuple(versions), revisions)


def shard_of(chunk_id: str, shard_count: int) -> int:
    """The shard (0..shard_count-1) that owns a chunk in a sharded run."""
    if shard_count < 1:
        raise ValueError(f"shard_count must be at least 1, got {shard_count}")
    return int(chunk_id, 16) % shard_count


@dataclass(frozen=True, slots=True)
class Estimate:
    """What a job costs in API calls, and how long they take at a given call rate."""

    calls: int
    rate: float  # calls per second
    seconds: float


def estimate(summary: ManifestSummary, *, rate: float) -> Estimate:
    """Calls (one per chunk) and seconds at `rate` calls per second, for dry runs."""
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    return Estimate(calls=summary.chunks, rate=rate, seconds=summary.chunks / rate)
