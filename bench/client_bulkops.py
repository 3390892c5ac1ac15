"""The bulkops bench client: a real job from a manifest on disk, journal and all.

`bulkops` composes the job as `bulkops.jobs.start.run_new` does (prepare → journal → registry →
engine fed by `work_items`) and times two seams: each registry call (one HTTP attempt:
the SDK makes exactly one) and each journal write. `bulkops-run-new` calls `run_new`
itself, uninstrumented, as the CLI does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from bulkops import log as logsetup
from bulkops.aws.session import AwsSettings, open_codeartifact
from bulkops.engine.engine import Engine
from bulkops.engine.types import EngineSettings, Stats, StopSignal
from bulkops.errors import CallFailed, Throttled
from bulkops.jobs.job import Job
from bulkops.jobs.prepare import header_for, prepare
from bulkops.jobs.start import new_journal, run_engine, run_new, run_resume, work_items
from bulkops.journal.journal import Journal, create_journal, recover
from bulkops.journal.location import as_checkpoint, is_remote, open_store, use_aws
from bulkops.journal.store import JournalStore
from bulkops.model import (
    CallResult,
    Chunk,
    ChunkOutcome,
    JobSpec,
    Operation,
    PackageRef,
    VersionState,
)
from bulkops.registry import Registry

if TYPE_CHECKING:
    from bench.clients import ClientSpec, Recorder


class TimedRegistry:
    """A Registry that records each call's latency and outcome, then passes it on."""

    def __init__(self, inner: Registry, rec: Recorder) -> None:
        self.inner = inner
        self.rec = rec

    async def run_chunk(self, spec: JobSpec, chunk: Chunk) -> CallResult:
        started = time.perf_counter()
        code = "ok"
        try:
            return await self.inner.run_chunk(spec, chunk)
        except Throttled:
            code = "throttled"
            raise
        except CallFailed:
            code = "error"
            raise
        finally:
            self.rec.latencies.append(time.perf_counter() - started)
            self.rec.attempt(code)

    async def describe_version(
        self, spec: JobSpec, repository: str, ref: PackageRef, version: str
    ) -> VersionState | None:
        return await self.inner.describe_version(spec, repository, ref, version)


class TimedJournal:
    """The engine's OutcomeWriter seam around the real journal: time of every write."""

    def __init__(self, inner: Journal) -> None:
        self.inner = inner
        self.writes = 0
        self.chunks = 0
        self.seconds = 0.0
        self.max_seconds = 0.0
        self.by_tenth: list[list[float]] = []  # [chunks, seconds] per write, for flatness

    async def write(
        self, outcomes: Sequence[tuple[ChunkOutcome, bool]], dispatched: Sequence[str] = ()
    ) -> None:
        started = time.perf_counter()
        await self.inner.write(outcomes, dispatched)
        took = time.perf_counter() - started
        self.writes += 1
        self.chunks += len(outcomes)
        self.seconds += took
        self.max_seconds = max(self.max_seconds, took)
        self.by_tenth.append([len(outcomes), took])

    def summary(self, total_chunks: int) -> dict[str, Any]:
        """Totals, and ms per chunk in each tenth of the job (by chunks written)."""
        tenths: list[list[float]] = [[0, 0.0] for _ in range(10)]
        written = 0
        for n, took in self.by_tenth:
            i = min(9, written * 10 // max(1, total_chunks))
            tenths[i][0] += n
            tenths[i][1] += took
            written += int(n)
        return {
            "writes": self.writes,
            "chunks": self.chunks,
            "seconds": self.seconds,
            "max_write_ms": self.max_seconds * 1000,
            "ms_per_chunk": 1000 * self.seconds / max(1, self.chunks),
            "ms_per_chunk_by_tenth": [1000 * s / n if n else None for n, s in tenths],
        }


class TimedAppends:
    """The journal's store with each append timed: the write itself (fsync, or S3 PUT),
    without the pause `Journal` keeps between appends for a store billed per write."""

    def __init__(self, inner: JournalStore) -> None:
        self.inner = inner
        self.appends = 0
        self.seconds = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def append(self, data: bytes) -> None:
        started = time.perf_counter()
        await self.inner.append(data)
        self.seconds += time.perf_counter() - started
        self.appends += 1


async def _stop_after(stop: StopSignal, seconds: float) -> None:
    await anyio.sleep(seconds)
    stop.request("max-duration")


def _settings(spec: ClientSpec) -> tuple[EngineSettings, AwsSettings]:
    defaults = EngineSettings()
    settings = EngineSettings(
        concurrency=spec.bulkops_concurrency,
        rate=spec.rate or defaults.rate,
        copy_rate=spec.copy_rate or defaults.copy_rate,
    )
    aws = AwsSettings(  # as the CLI builds them
        region="us-east-1",
        endpoint_url=spec.endpoint,
        max_pool_connections=settings.most_in_flight + 8,
    )
    return settings, aws


async def resume_bulkops(
    spec: ClientSpec, rec: Recorder, announce: Callable[[], None]
) -> tuple[int, int, int]:
    """Resume the journal at `spec.manifest`: time `recover` alone, then all of `run_resume`."""
    logsetup.configure(level="info", fmt="json")
    checkpoint = Path(spec.manifest)
    settings, aws = _settings(spec)
    started = time.perf_counter()
    state = await recover(open_store(checkpoint))
    rec.extra["recover_s"] = time.perf_counter() - started
    rec.ready(announce)
    stats = Stats()
    started = time.perf_counter()
    await run_resume(Job(state.header.spec, checkpoint, settings, aws), StopSignal(), stats)
    rec.extra["resume_s"] = time.perf_counter() - started
    rec.extra["calls"] = stats.calls
    total = state.header.chunks
    return stats.chunks_done + state.chunks_complete, stats.chunks_given_up, total


async def run_bulkops(
    spec: ClientSpec, rec: Recorder, announce: Callable[[], None]
) -> tuple[int, int, int]:
    if spec.client == "bulkops-resume":
        return await resume_bulkops(spec, rec, announce)
    logsetup.configure(level="info", fmt="json")  # the CLI's defaults off a terminal
    op = Operation(spec.operation)
    job = JobSpec(
        op,
        "acme",
        "main",
        destination_repository=spec.destination if op is Operation.COPY else None,
        target_status=spec.target_status if op is Operation.SET_STATUS else None,
        expected_status=spec.expected_status if op is Operation.SET_STATUS else None,
    )
    workdir = Path(spec.workdir)
    checkpoint = as_checkpoint(spec.checkpoint or str(workdir / f"{spec.client}.journal"))
    settings, aws = _settings(spec)
    if is_remote(checkpoint):
        use_aws(aws)  # S3 on the job's own settings, as the CLI does; its endpoint from the env
    prepared = await prepare(
        job, spec.manifest, manifest_format="jsonl", spool_dir=workdir, checkpoint=checkpoint
    )
    stop, stats = StopSignal(), Stats()
    async with anyio.create_task_group() as tg:
        if spec.checkpoint is not None:  # the CLI's run (events, lease), timed at both seams
            header = header_for(prepared)
            async with new_journal(Job(job, checkpoint, settings, aws), header) as (reg, journal):
                appends = TimedAppends(journal.store)
                journal.store = appends  # type: ignore[assignment]
                timed = TimedJournal(journal)
                items = work_items(header, journal.store, None, stats)
                rec.ready(announce)
                if spec.deadline:
                    tg.start_soon(_stop_after, stop, spec.deadline)
                await run_engine(
                    journal, TimedRegistry(reg, rec), items, settings, stop, stats, writer=timed
                )
            rec.extra["journal"] = timed.summary(header.chunks)
            rec.extra["journal"]["appends"] = appends.appends
            rec.extra["journal"]["append_seconds"] = appends.seconds
            rec.extra["concurrency_final"] = stats.flight.limit if stats.flight else None
        elif spec.client == "bulkops-run-new":
            rec.ready(announce)
            if spec.deadline:
                tg.start_soon(_stop_after, stop, spec.deadline)
            header = header_for(prepared)
            await run_new(Job(job, checkpoint, settings, aws), header, stop, stats)
        else:
            header = header_for(prepared)
            stats.versions_total, stats.chunks_total = header.versions, header.chunks
            journal = await create_journal(open_store(checkpoint), header)
            timed = TimedJournal(journal)
            async with journal, open_codeartifact(aws) as registry:
                engine = Engine(
                    header.spec,
                    TimedRegistry(registry, rec),
                    timed,
                    settings,
                    stats=stats,
                    stop=stop,
                )
                rec.ready(announce)
                if spec.deadline:
                    tg.start_soon(_stop_after, stop, spec.deadline)
                await engine.run(work_items(header, journal.store, None, stats))
            rec.extra["journal"] = timed.summary(header.chunks)
            rec.extra["rate_final"] = engine.scope.rate
            rec.extra["rate_cuts"] = engine.scope.cuts
            rec.extra["concurrency_final"] = engine.flight.limit
        tg.cancel_scope.cancel()
    rec.extra["journal_path"] = str(checkpoint)
    rec.extra["bulkops"] = {
        "calls": stats.calls,
        "throttled": stats.throttled,
        "retries": stats.retries,
        "chunks_done": stats.chunks_done,
        "chunks_given_up": stats.chunks_given_up,
        "versions_ok": stats.versions_ok,
        "versions_failed": stats.versions_failed,
        "errors": dict(stats.errors),
    }
    if not rec.latencies:  # run-new is not instrumented: its calls come from its stats
        rec.extra["calls"] = stats.calls
    done = stats.chunks_done
    lost = stats.chunks_given_up
    return done, lost, prepared.summary.chunks
