"""Job estimates: the API calls a job makes, and how long they take at a call rate; no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bulkops.engine.concurrency import carried_rate, limited_words

if TYPE_CHECKING:
    from bulkops.manifest.scan import ManifestSummary


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
