"""Chunk shards and job estimates; no I/O.

Chunks are planned by `manifest.scan_manifest`: a package's k-th chunk is always its
unique versions k*size..(k+1)*size-1 in manifest order, so a chunk's id depends only on
that package's own rows, and the same manifest gives the same chunk ids on every run
and machine. That is what lets a sharded run split a job by chunk id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bulkops.engine.concurrency import carried_rate, limited_words

if TYPE_CHECKING:
    from bulkops.manifest.scan import ManifestSummary


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
    carried: float | None = None  # calls per second the concurrency carries, when under `rate`
    limited: str | None = None  # "limited by concurrency 16 at 610 ms per call: 26 calls/s of 100"


def estimate(
    summary: ManifestSummary,
    *,
    rate: float,
    concurrency: int | None = None,
    latency: float | None = None,
) -> Estimate:
    """Calls (one per chunk) and seconds for dry runs: at `rate` calls per second, or at
    what `concurrency` calls in flight carry at `latency` seconds per call when that is less."""
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    if concurrency is None or latency is None:
        return Estimate(calls=summary.chunks, rate=rate, seconds=summary.chunks / rate)
    carried = carried_rate(rate, concurrency, latency)
    if carried >= rate:
        return Estimate(calls=summary.chunks, rate=rate, seconds=summary.chunks / rate)
    words = limited_words(concurrency, latency, carried, rate)
    return Estimate(summary.chunks, rate, summary.chunks / carried, carried, words)
