"""A new job run behind its safety rails: caps and keep-min before the first call, then canary
and breaker while it runs.

    check_caps ──► keep-min pre-flight (ListPackageVersions of the job's packages)
        ──► create the journal ──► canary: the first chunk alone, concurrency 1
        ──► the rest, every outcome shown to the breaker on its way to the journal

The breaker needs no engine hook: it wraps the journal (the engine's `OutcomeWriter`),
sees each outcome once it is durable and asks the run's `StopSignal` to stop, which
drains like any stop. The canary is a first engine run over one work item; the fan-out
is a second engine run over the rest of the same work-item stream, on the same journal.
A tripped rail journals a `rails_tripped` event and marks the stop as tripped, and the
run exits 3, not 75: a batch system that retries 75 would resume the job without the
rail. `bulkops resume` sends the rest once the report has been read and the operator
has decided.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

import structlog

from bulkops.engine.engine import Engine
from bulkops.engine.types import RunResult, Stats, StopSignal, WorkItem
from bulkops.jobs.job import Job
from bulkops.jobs.prepare import Prepared
from bulkops.jobs.rails import (
    Breaker,
    Rails,
    Shortfall,
    canary_verdict,
    check_caps,
    check_keep_min,
    kept_statuses,
)
from bulkops.jobs.start import journaled_run, new_journal, run_new, work_items
from bulkops.journal.journal import Journal, JournalHeader
from bulkops.journal.location import Checkpoint, open_store
from bulkops.manifest.scan import ManifestSummary
from bulkops.model import Chunk, ChunkOutcome, JobSpec, PackageRef
from bulkops.registry import Catalog, Location
from bulkops.selection.discover import Discovery, DiscoverySettings, Listing, PackageVersions

log = structlog.get_logger("bulkops.jobs.guarded")


def check_job_caps(rails: Rails, spec: JobSpec, summary: ManifestSummary) -> None:
    """--max-versions / --max-packages against a validated manifest (no call needed)."""
    per_version = spec.operation.per_version
    check_caps(
        rails,
        versions=summary.versions if per_version else summary.packages,
        packages=summary.packages,
        unit="versions" if per_version else "packages",
    )


async def check_job_keep_min(
    catalog: Catalog,
    header: JournalHeader,
    checkpoint: Checkpoint,
    keep_min: int,
    settings: DiscoverySettings | None = None,
) -> None:
    """Refuse the job if it would leave a package with fewer than `keep_min` versions.

    Lists the versions of every package in the job's chunk list (beside `checkpoint`); a
    package's planned versions are first all counted as removed, and only the packages
    that fall short that way have their planned versions read again to count the live
    ones exactly.
    """
    if keep_min <= 0:
        return
    spec = header.spec

    store = open_store(checkpoint)

    async def chunks() -> AsyncIterator[Chunk]:
        async for item in work_items(header, store, None, Stats()):
            yield item.chunk

    planned: dict[PackageRef, int] = {}
    async for chunk in chunks():
        planned[chunk.ref] = planned.get(chunk.ref, 0) + len(chunk.versions)
    counted = kept_statuses(spec)
    suspects: dict[PackageRef, set[str]] = {}  # live versions of packages that may fall short
    has: dict[PackageRef, int] = {}

    def on_package(pkg: PackageVersions) -> None:
        live = {v.version for v in pkg.versions if v.status in counted}
        has[pkg.ref] = len(live)
        removed = planned[pkg.ref] if spec.operation.per_version else len(live)
        if len(live) - removed < keep_min:
            suspects[pkg.ref] = live

    where = Location(spec.domain, spec.repository, spec.domain_owner)
    await Discovery(catalog, where, Listing(), settings).run(on_package, list(planned))
    removes = {ref: len(live) for ref, live in suspects.items()}
    if spec.operation.per_version and suspects:
        removes = dict.fromkeys(suspects, 0)
        async for chunk in chunks():
            if (live := suspects.get(chunk.ref)) is not None:
                removes[chunk.ref] += sum(v in live for v in chunk.versions)
    shortfalls = [Shortfall(r, has[r], n) for r, n in removes.items() if has[r] - n < keep_min]
    check_keep_min(keep_min, shortfalls)


class _Watched:
    """The journal as the engine's OutcomeWriter, showing each durable outcome to the rails."""

    def __init__(
        self, journal: Journal, stop: StopSignal, breaker: Breaker | None, chunks: int
    ) -> None:
        self.journal, self.stop, self.breaker, self.chunks = journal, stop, breaker, chunks
        self.outcomes: list[ChunkOutcome] = []  # kept only while recording the canary
        self.recording = False
        self.tripped: str | None = None  # the breaker's reason, once it tripped

    async def write(
        self, outcomes: Sequence[tuple[ChunkOutcome, bool]], dispatched: Sequence[str] = ()
    ) -> None:
        await self.journal.write(outcomes, dispatched)
        for outcome, _ in outcomes:
            if self.recording:
                self.outcomes.append(outcome)
            if self.breaker is None or self.tripped is not None:
                continue
            if why := self.breaker.observe(outcome, self.chunks):
                self.tripped = why
                log.error("breaker_tripped", reason=why)
                self.stop.request(why, tripped=True)
                await self.journal.event("rails_tripped", rail="breaker", reason=why)


async def run_guarded(
    job: Job,
    header: JournalHeader,
    items: AsyncIterator[WorkItem],
    stop: StopSignal,
    stats: Stats,
    summary: ManifestSummary,
    discovery: DiscoverySettings | None = None,
) -> RunResult:
    """Create the journal and run a new job behind `job.rails` (see the module docstring).

    `items` is `work_items(header, job.checkpoint, None, stats)`; caps are checked before
    any call, keep-min before the journal exists, so a refusal leaves nothing behind.
    """
    spec, rails, settings, checkpoint = header.spec, job.rails, job.settings, job.checkpoint
    stats.versions_total, stats.chunks_total = header.versions, header.chunks
    check_job_caps(rails, spec, summary)  # needs no call: before even the repository check

    async def preflight(catalog: Catalog) -> None:
        await check_job_keep_min(catalog, header, checkpoint, rails.keep_min, discovery)

    async with (
        new_journal(job, header, preflight) as (registry, journal),
        journaled_run(
            journal, settings, stop, stats, canary=rails.canary, breaker=rails.breaker
        ) as run,
    ):
        breaker = (
            Breaker(rails.breaker, rails.breaker_window) if rails.breaker is not None else None
        )
        writer = _Watched(journal, stop, breaker, header.chunks)
        result: RunResult | None = None
        if rails.canary and (first := await anext(items, None)) is not None:
            writer.recording = True
            alone = replace(settings, concurrency=1)
            result = await Engine(spec, registry, writer, alone, stats=stats, stop=stop).run(
                [first]
            )
            writer.recording = False
            if result.fatal is None and not stop.requested:
                verdict = canary_verdict(writer.outcomes)
                if verdict is not None:
                    log.error("canary_failed", reason=verdict)
                    stop.request(verdict, tripped=True)
                    result.stopped, result.tripped = verdict, True
                    await journal.event("rails_tripped", rail="canary", reason=verdict)
        if result is None or (result.fatal is None and not stop.requested):
            engine = Engine(spec, registry, writer, settings, stats=stats, stop=stop)
            result = await engine.run(items)
        if writer.tripped is not None and not result.tripped:
            # tripped while draining another stop: the verdict still stands
            result.stopped, result.tripped = writer.tripped, True
        run.result = result
    return result


async def run_new_guarded(
    job: Job, prepared: Prepared, header: JournalHeader, stop: StopSignal, stats: Stats
) -> RunResult:
    """`run_new` behind `job.rails`; exactly `run_new` when every rail is off."""
    if job.rails == Rails():
        return await run_new(job, header, stop, stats)
    items = work_items(header, open_store(job.checkpoint), None, stats)
    return await run_guarded(job, header, items, stop, stats, prepared.summary)


def tripped_message(checkpoint: str, why: str | None, resume: str) -> str:
    """What to tell the operator when a safety rail (breaker, canary) stopped the job."""
    return (
        f"A safety rail stopped the job ({why}). Look at what failed: "
        f"bulkops report {checkpoint} --failed-only. "
        f"Once you have decided to go on, `{resume}` continues it without the rail."
    )
