"""A job run from its journal: new or resumed, the engine between two journal events.

result = await run_new(job, header, stop, stats)     # creates the journal, then runs
result = await run_resume(job, stop, stats)          # only what is not yet done
"""

from __future__ import annotations

import gc
import math
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

import anyio
import anyio.to_thread
import structlog

from bulkops.aws.adapter import AwsRegistry
from bulkops.aws.session import open_codeartifact
from bulkops.engine.engine import Engine
from bulkops.engine.types import (
    EngineSettings,
    OutcomeWriter,
    RunResult,
    Stats,
    StopSignal,
    WorkItem,
)
from bulkops.errors import (
    ChunkListCorrupt,
    Refused,
    UsageError,
)
from bulkops.jobs.checks import check_repositories
from bulkops.jobs.job import Job
from bulkops.jobs.prepare import check_manifest
from bulkops.journal.chunklist import CHUNKS, read_chunks
from bulkops.journal.journal import (
    Journal,
    JournalHeader,
    JournalState,
    create_journal,
    open_journal,
    read_header,
)
from bulkops.journal.location import open_store
from bulkops.journal.store import JournalStore
from bulkops.log import redact_text
from bulkops.registry import Registry

log = structlog.get_logger("bulkops.jobs.start")


async def work_items(
    header: JournalHeader, store: JournalStore, state: JournalState | None, stats: Stats
) -> AsyncIterator[WorkItem]:
    """The chunks still to send, read from the job's chunk list; done ones are counted, not sent."""
    spec = header.spec
    if header.chunk_list is None or header.chunk_list_sha256 is None:
        raise ChunkListCorrupt(f"the journal {store.describe()} names no chunk list to run")
    async for chunk in read_chunks(store, CHUNKS, header.chunk_list_sha256):
        if state is None:
            yield WorkItem(chunk)
            continue
        units = len(chunk.versions) or 1
        if state.is_complete(chunk.id):
            stats.versions_skipped_done += units
            continue
        pending = state.pending_versions(chunk) if spec.operation.per_version else ()
        stats.versions_skipped_done += len(chunk.versions) - len(pending)
        yield WorkItem(
            chunk.narrowed(pending),
            state.last_attempt(chunk.id),
            dispatched=state.was_dispatched(chunk.id),
        )


async def run_new(job: Job, header: JournalHeader, stop: StopSignal, stats: Stats) -> RunResult:
    """Create the journal holding `header` (see `header_for`) and run the job from the start."""
    async with new_journal(job, header) as (registry, journal):
        items = work_items(header, journal.store, None, stats)
        return await run_engine(journal, registry, items, job.settings, stop, stats)


@asynccontextmanager
async def new_journal(
    job: Job,
    header: JournalHeader,
    preflight: Callable[[AwsRegistry], Awaitable[None]] | None = None,
) -> AsyncIterator[tuple[AwsRegistry, Journal]]:
    """A new job's client, then its journal holding `header`; both closed on exit.

    The client comes first: a bad region, profile or credentials leave no journal behind;
    then the domain and repositories are checked, and `preflight(registry)` (checks that
    may refuse the job) runs, all before the journal is created. If anything fails before
    the journal exists, nothing will resume the job, so its chunk list is removed too.
    """
    checkpoint = job.checkpoint
    try:
        async with open_codeartifact(job.aws, inputs_checked=True) as registry:
            await check_repositories(registry, header.spec)
            if preflight is not None:
                await preflight(registry)
            async with await create_journal(open_store(checkpoint), header) as journal:
                # said once the journal exists: a job refused before it leaves no checkpoint
                log.info("checkpoint_created", checkpoint=str(checkpoint))
                yield registry, journal
    except BaseException:
        with anyio.CancelScope(shield=True):
            store = open_store(checkpoint)
            if header.chunk_list is not None and not await store.exists():
                await store.delete(CHUNKS)
        raise


async def run_resume(job: Job, stop: StopSignal, stats: Stats) -> RunResult:
    """Continue the job of `job.checkpoint` from its journal alone, sending only what is not
    yet done, under `job`'s settings (its spec must be the journal's)."""
    checkpoint = job.checkpoint
    store = open_store(checkpoint)
    if not await store.exists():
        raise UsageError(f"checkpoint {checkpoint} does not exist")
    header = await read_header(store)
    if header.spec != job.spec:
        raise Refused(f"checkpoint {checkpoint} now holds another job; resume it on its own")
    await check_manifest(header)
    settings = job.settings
    async with open_codeartifact(job.aws, inputs_checked=True) as registry:
        await check_repositories(registry, header.spec)
        async with open_journal(store) as (journal, state):
            log.info(
                "resuming",
                chunks_complete=state.chunks_complete,
                records=state.records,
                torn_line=state.torn_line,
            )
            items = work_items(header, store, state, stats)
            return await run_engine(journal, registry, items, settings, stop, stats, resumed=True)


async def run_engine(
    journal: Journal,
    registry: Registry,
    items: AsyncIterable[WorkItem],
    settings: EngineSettings,
    stop: StopSignal,
    stats: Stats,
    *,
    resumed: bool = False,
    writer: OutcomeWriter | None = None,
    **started: object,
) -> RunResult:
    """One run of a job whose journal is open: the engine between two journal events.

    `writer` (default: the journal) is where the engine's outcomes go, e.g. a journal
    watched by the safety rails; `started` adds to the `run_started` event.
    """
    header = journal.header
    async with journaled_run(journal, settings, stop, stats, resumed=resumed, **started) as run:
        engine = Engine(header.spec, registry, writer or journal, settings, stats=stats, stop=stop)
        run.result = await engine.run(items)
    assert run.result is not None  # set, or the block raised
    return run.result


@dataclass(slots=True)
class JournaledRun:
    """A run between its `run_started` and `run_ended` events; set `result` when it ends."""

    result: RunResult | None = None


@asynccontextmanager
async def journaled_run(
    journal: Journal,
    settings: EngineSettings,
    stop: StopSignal,
    stats: Stats,
    *,
    resumed: bool = False,
    **started: object,
) -> AsyncIterator[JournaledRun]:
    """Journal a run's start, then its end however it ends (cancelled by a second signal
    included: the end is written in a shielded scope)."""
    header = journal.header
    stats.versions_total = header.versions
    stats.chunks_total = header.chunks
    await journal.event("run_started", resumed=resumed, **run_knobs(settings), **started)
    run = JournaledRun()
    try:
        with collector_for_runs():
            if math.isinf(journal.store.owned_until()):  # a local journal: owned while open
                yield run
            else:
                async with _owning(journal):
                    yield run
    finally:
        result = run.result or RunResult(
            stats, f"{stop.reason or 'error'}, then cancelled", stop.fatal, tripped=stop.tripped
        )
        if not journal.broken:  # a failed write is never retried on the same file
            with anyio.CancelScope(shield=True):
                await journal.event("run_ended", **run_ending(result))


@asynccontextmanager
async def _owning(journal: Journal) -> AsyncIterator[None]:
    """Keep a leased journal (S3) owned for as long as the run goes on. A renewal that fails
    in time raises LeaseLost before the lease can expire, and the run's calls are cancelled
    (resent on resume): no call outlives the ownership its outcome is recorded under."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(journal.store.keep_alive)
        try:
            yield
        finally:
            tg.cancel_scope.cancel()


@contextmanager
def collector_for_runs() -> Iterator[None]:
    """Python's cyclic garbage collector tuned for a run, and restored after it.

    A call makes hundreds of short-lived objects (botocore's request and parsed answer),
    nearly all freed by reference counting. The objects alive when the run starts
    (modules, botocore's service model, the client) are frozen out of collection, and
    young collections run every 10,000 allocations rather than 700: on 2,000 calls
    against the emulator that took 5-8% off each call's CPU.
    """
    threshold, frozen_before = gc.get_threshold(), gc.get_freeze_count()
    gc.freeze()
    gc.set_threshold(10_000, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        if not frozen_before:  # a host that froze its own objects keeps them frozen
            gc.unfreeze()


def run_knobs(settings: EngineSettings) -> dict[str, object]:
    """The `run_started` event's data: the knobs this run used."""
    return {
        "concurrency": settings.concurrency or "auto",
        "maxConcurrency": settings.most_in_flight,
        "rate": settings.rate,
        "copyRate": settings.copy_rate,
    }


def run_ending(result: RunResult) -> dict[str, object]:
    """The `run_ended` event's data: how the run ended and what it did."""
    s = result.stats
    return {
        "stopped": result.stopped,
        "fatal": redact_text(str(result.fatal)) if result.fatal else None,
        "tripped": result.tripped,
        "versionsOk": s.versions_ok,
        "versionsFailed": s.versions_failed,
        "chunksGivenUp": s.chunks_given_up,
        "calls": s.calls,
        "throttled": s.throttled,
        "concurrency": s.flight.limit if s.flight else None,
        "latencyMs": round(1000 * s.flight.latency, 1) if s.flight else None,
    }
