"""The engine's values: its settings, live counters, stop signal, work items and result."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import anyio

from bulkops.engine.concurrency import ConcurrencyTuning, Controller
from bulkops.engine.limits import READ_RATE, RateTuning, RetryPolicy
from bulkops.errors import FatalCall
from bulkops.model import Chunk, ChunkOutcome

__all__ = ["EngineSettings", "OutcomeWriter", "RunResult", "Stats", "StopSignal", "WorkItem"]


class OutcomeWriter(Protocol):
    """Where finished attempts go: the journal. `write` returns once they are durable.

    `dispatched` names chunks about to be sent for the first time (see the module doc).
    """

    async def write(
        self, outcomes: Sequence[tuple[ChunkOutcome, bool]], dispatched: Sequence[str] = ()
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Knobs of one run; defaults live here and nowhere else."""

    concurrency: int | None = None  # calls in flight; None: found by the engine (auto)
    max_concurrency: int = 256  # the most calls in flight auto may reach (README: why 256)
    rate: float = 100.0  # write calls per second (Delete, Dispose, UpdateStatus, DeletePackage)
    copy_rate: float = 5.0  # CopyPackageVersions calls per second
    read_rate: float = READ_RATE  # DescribePackageVersion calls/s (copy, status checks)
    call_timeout: float = 60.0
    grace_period: float = 20.0
    # group commit: an outcome waits at most this long for others to share its fsync
    # (a dispatch mark, which holds up a send, is written at once)
    commit_window: float = 0.01
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    tuning: RateTuning = field(default_factory=RateTuning)
    flight: ConcurrencyTuning = field(default_factory=ConcurrencyTuning)
    seed: int | None = None  # jitter; fixed in tests for repeatable runs

    @property
    def most_in_flight(self) -> int:
        """Workers, and the connections and stream room they need: the pinned or the max."""
        return max(1, self.concurrency or self.max_concurrency)


@dataclass(slots=True)
class Stats:
    """Live counters of a run; the progress display and the final summary read them."""

    versions_total: int = 0
    chunks_total: int = 0
    versions_ok: int = 0  # succeeded or settled as already done
    versions_failed: int = 0  # permanent per-version failures
    versions_skipped_done: int = 0  # found complete in the journal on resume
    chunks_done: int = 0
    chunks_given_up: int = 0
    calls: int = 0
    throttled: int = 0
    retries: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    started: float = 0.0
    flight: Controller | None = None  # the concurrency limit and the latency it follows

    @property
    def versions_done(self) -> int:
        return self.versions_ok + self.versions_failed + self.versions_skipped_done


class StopSignal:
    """A request to stop intake and drain, with the reason it was made."""

    def __init__(self) -> None:
        self._event = anyio.Event()
        self.reason: str | None = None
        self.tripped = False  # a safety rail (breaker, canary) asked: not a plain interruption
        self.fatal: FatalCall | None = None  # the error that asked, when one did

    def request(
        self, reason: str, *, tripped: bool = False, fatal: FatalCall | None = None
    ) -> None:
        if self.reason is None:
            self.reason, self.tripped, self.fatal = reason, tripped, fatal
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> None:
        await self._event.wait()


@dataclass(frozen=True, slots=True)
class WorkItem:
    """A chunk to send, with what earlier runs already did to it."""

    chunk: Chunk
    attempts_before: int = 0  # calls recorded for this chunk by earlier runs
    dispatched: bool = False  # an earlier run marked it sent: its calls may have acted


@dataclass(slots=True)
class RunResult:
    stats: Stats
    stopped: str | None = None  # the stop reason when intake was cut short
    fatal: FatalCall | None = None
    tripped: bool = False  # the stop came from a safety rail
