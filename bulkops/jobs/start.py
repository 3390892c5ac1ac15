"""A job from end to end: manifest → plan → journal → engine; what the CLI's commands compose."""

from __future__ import annotations

import gc
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import anyio
import anyio.to_thread
import structlog

from bulkops.aws.adapter import AwsRegistry
from bulkops.aws.session import AwsSettings, open_codeartifact
from bulkops.aws.shapes import violation
from bulkops.engine.engine import Engine
from bulkops.engine.limits import AdaptiveRate, RetryPolicy
from bulkops.engine.retry import CallRunner, GaveUp
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
    ManifestChanged,
    NothingToDo,
    Refused,
    ResourceMissing,
    Unreachable,
    UsageError,
)
from bulkops.jobs.job import Job
from bulkops.journal.chunklist import CHUNKS, ChunkListWriter, read_chunks
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
from bulkops.manifest.files import file_sha256, spool_stdin
from bulkops.manifest.scan import ManifestSummary, scan_manifest
from bulkops.model import JobSpec, Operation
from bulkops.registry import Location, Registry

log = structlog.get_logger("bulkops.jobs.start")

CHECKPOINT_DIR = Path("bulkops-checkpoints")


def default_checkpoint(spec: JobSpec, directory: Path = CHECKPOINT_DIR) -> Path:
    """A new checkpoint path: operation, UTC time and a random suffix, never an existing file."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return directory / f"{spec.operation.value}-{stamp}-{secrets.token_hex(3)}.journal"


@dataclass(frozen=True, slots=True)
class Prepared:
    """A validated job, ready to plan or run (with a chunk list when prepared for a run)."""

    spec: JobSpec
    summary: ManifestSummary
    manifest: Path

    checkpoint: Path | None = None

    async def discard(self, *, spooled: bool) -> None:
        """Remove what preparing wrote, for a job refused before its journal exists:
        the chunk list, and the manifest too when it is a spooled stdin."""
        if self.summary.chunk_list is not None and self.checkpoint is not None:
            await open_store(self.checkpoint).delete(CHUNKS)
        if spooled:
            await anyio.to_thread.run_sync(partial(self.manifest.unlink, missing_ok=True))


def check_spec(spec: JobSpec) -> None:
    """Refuse identifiers the API would reject, naming the option, before anything is sent."""
    fields = [
        ("--domain", "DomainName", spec.domain),
        ("--repository", "RepositoryName", spec.repository),
        ("--destination-repository", "RepositoryName", spec.destination_repository),
        ("--domain-owner", "AccountId", spec.domain_owner),
    ]
    if spec.operation is Operation.COPY:
        fields[1] = ("--source-repository", "RepositoryName", spec.repository)
    for option, shape, value in fields:
        if value is not None and (why := violation(shape, value)) is not None:
            raise UsageError(f"{option} {why}")


async def prepare(
    spec: JobSpec,
    manifest: str,
    *,
    manifest_format: str | None,
    spool_dir: Path,
    checkpoint: Path | None = None,
) -> Prepared:
    """Validate the job and its manifest; stdin (`-`) is first spooled into `spool_dir`.

    With `checkpoint` (a run, not a dry run), the job's chunk list is written through its
    store. Reading, hashing and writing run in a worker thread.
    """
    check_spec(spec)
    path = await anyio.to_thread.run_sync(_manifest_file, manifest, spool_dir)
    writer = None if checkpoint is None else ChunkListWriter(open_store(checkpoint))
    try:
        summary = await anyio.to_thread.run_sync(
            partial(
                scan_manifest,
                path,
                operation=spec.operation,
                manifest_format=manifest_format,
                domain=spec.domain,
                repository=spec.repository,
                chunk_size=spec.chunk_size,
                chunks_to=writer,
            )
        )
        if writer is not None:
            summary = replace(summary, chunk_list=await writer.commit())
    finally:
        if writer is not None:
            await writer.abort()
    prepared = Prepared(spec, summary, path, checkpoint)
    if summary.targets == 0:
        await prepared.discard(spooled=manifest == "-")
        unit = "versions" if spec.operation.per_version else "packages"
        raise NothingToDo(
            f"Nothing to do: manifest {manifest} names no {unit}. Nothing was sent, "
            "no checkpoint was written."
        )
    return prepared


def _manifest_file(manifest: str, spool_dir: Path) -> Path:
    """The manifest's file: stdin (`-`) is first spooled into `spool_dir`."""
    if manifest == "-":
        spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return spool_stdin(spool_dir / f"stdin-{secrets.token_hex(4)}.manifest").resolve()
    path = Path(manifest)
    if not path.is_file():
        raise UsageError(f"manifest {manifest} does not exist or is not a file")
    return path.resolve()


# Four tries, paced like the engine's reads, within a minute: a check that cannot get an
# answer by then ends the command as retryable rather than holding a batch slot.
CHECK_RETRY = RetryPolicy(max_attempts=4, budget=60.0)


async def check_repositories(
    registry: AwsRegistry,
    spec: JobSpec,
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
) -> None:
    """Check with DescribeRepository (a read) that the job's domain and repositories exist.

    Run before a job writes its journal or sends anything, and by the dry run: a wrong
    name ends the job here (exit 2) with nothing to resume. The calls go through the
    engine's `CallRunner`; a check that gets no answer within its retries is
    `Unreachable` (75): nothing was sent, trying later may work.
    """
    copy = spec.operation is Operation.COPY
    repositories = [("--source-repository" if copy else "--repository", spec.repository)]
    if spec.destination_repository is not None:
        repositories.append(("--destination-repository", spec.destination_repository))
    defaults = EngineSettings()
    scope = AdaptiveRate("read", defaults.read_rate)
    runner = CallRunner(CHECK_RETRY, defaults.call_timeout, stopping=lambda: False, sleep=sleep)
    for option, name in repositories:
        where = Location(spec.domain, name, spec.domain_owner)
        try:
            await runner.call(scope, partial(registry.describe_repository, where))
        except ResourceMissing as exc:
            raise ResourceMissing(
                f"repository {spec.domain}/{name} ({option}) does not exist or is not "
                f"visible to these credentials: {exc}; nothing was sent"
            ) from exc
        except GaveUp as exc:
            raise Unreachable(
                f"cannot check that repository {spec.domain}/{name} exists "
                f"({exc.last}); nothing was sent, try again later"
            ) from exc.last


async def check_target(aws: AwsSettings, spec: JobSpec) -> float:
    """The dry run's check: a client as a run would make it, then `check_repositories`;
    the seconds per check call, connection set-up included (the estimate's latency)."""
    async with open_codeartifact(aws, inputs_checked=True) as registry:
        started = anyio.current_time()
        await check_repositories(registry, spec)
        calls = 1 + (spec.destination_repository is not None)
        return (anyio.current_time() - started) / calls


def header_for(prepared: Prepared) -> JournalHeader:
    s = prepared.summary
    if s.chunk_list is None:
        raise ValueError("header_for needs a job prepared for a run (prepare(checkpoint=...))")
    return JournalHeader.new(
        prepared.spec,
        manifest_path=str(prepared.manifest),
        manifest_format=s.manifest_format,
        manifest_sha256=s.sha256,
        packages=s.packages,
        versions=s.versions or s.packages,
        chunks=s.chunks,
        chunk_list=s.chunk_list.file,
        chunk_list_sha256=s.chunk_list.sha256,
    )


async def check_manifest(header: JournalHeader) -> None:
    """Refuse to go on with a job whose manifest changed since the job started.

    The chunks come from the job's chunk list, checked by its own digest: that list is
    the job's input, so a manifest moved or removed since (a checkpoint moved to another
    disk, a spooled stdin) does not stop a resume. One still there must be unchanged.
    """
    path = Path(header.manifest_path or "")
    if not header.manifest_path or not await anyio.to_thread.run_sync(path.is_file):
        log.info("manifest_not_read", manifest=str(path), note="the chunk list is the input")
        return
    digest = await anyio.to_thread.run_sync(file_sha256, path)  # off the loop: EFS is slow
    if digest != header.manifest_sha256:
        raise ManifestChanged(
            f"manifest {path} changed since the job started "
            f"(sha256 {digest[:12]}…, journal has {(header.manifest_sha256 or '')[:12]}…); "
            "start a new job for the new manifest"
        )


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
            yield run
    finally:
        result = run.result or RunResult(
            stats, f"{stop.reason or 'error'}, then cancelled", stop.fatal, tripped=stop.tripped
        )
        if not journal.broken:  # a failed write is never retried on the same file
            with anyio.CancelScope(shield=True):
                await journal.event("run_ended", **run_ending(result))


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
