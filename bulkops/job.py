"""A job from end to end: manifest → plan → journal → engine; what the CLI's commands compose."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import anyio
import structlog

from bulkops.apimodel import violation
from bulkops.aws import AwsSettings, open_codeartifact
from bulkops.engine import (
    Engine,
    EngineSettings,
    OutcomeWriter,
    RunResult,
    Stats,
    StopSignal,
    WorkItem,
)
from bulkops.errors import ManifestChanged, UsageError
from bulkops.journal import (
    Journal,
    JournalHeader,
    JournalState,
    LocalFileStore,
    create_journal,
    open_journal,
    read_header,
)
from bulkops.log import redact_text
from bulkops.manifest import ManifestSummary, file_sha256, read_targets, scan_manifest, spool_stdin
from bulkops.model import JobSpec, Operation
from bulkops.plan import make_chunks
from bulkops.registry import Registry

log = structlog.get_logger("bulkops.job")

CHECKPOINT_DIR = Path("bulkops-checkpoints")


def default_checkpoint(spec: JobSpec, directory: Path = CHECKPOINT_DIR) -> Path:
    """A new checkpoint path: operation, UTC time and a random suffix, never an existing file."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return directory / f"{spec.operation.value}-{stamp}-{secrets.token_hex(3)}.journal"


@dataclass(frozen=True, slots=True)
class Prepared:
    """A validated job, ready to plan or run."""

    spec: JobSpec
    summary: ManifestSummary
    manifest: Path


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


def prepare(
    spec: JobSpec,
    manifest: str,
    *,
    manifest_format: str | None,
    spool_dir: Path,
) -> Prepared:
    """Validate the job and its manifest; stdin (`-`) is first spooled into `spool_dir`."""
    check_spec(spec)
    if manifest == "-":
        spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = spool_stdin(spool_dir / f"stdin-{secrets.token_hex(4)}.manifest")
    else:
        path = Path(manifest)
        if not path.is_file():
            raise UsageError(f"manifest {manifest} does not exist or is not a file")
    summary = scan_manifest(
        path,
        operation=spec.operation,
        manifest_format=manifest_format,
        domain=spec.domain,
        repository=spec.repository,
        chunk_size=spec.chunk_size,
    )
    if summary.targets == 0:
        raise UsageError(f"manifest {path} names nothing to do")
    return Prepared(spec, summary, path.resolve())


def header_for(prepared: Prepared) -> JournalHeader:
    s = prepared.summary
    return JournalHeader.new(
        prepared.spec,
        manifest_path=str(prepared.manifest),
        manifest_format=s.manifest_format,
        manifest_sha256=s.sha256,
        packages=s.packages,
        versions=s.versions or s.packages,
        chunks=s.chunks,
    )


def check_manifest(header: JournalHeader) -> ManifestSummary:
    """The journal's manifest, proven unchanged and valid again before anything is sent."""
    path = Path(header.manifest_path or "")
    if not path.is_file():
        raise UsageError(f"the job's manifest {path} is gone; resume needs it where it was")
    digest = file_sha256(path)
    if digest != header.manifest_sha256:
        raise ManifestChanged(
            f"manifest {path} changed since the job started "
            f"(sha256 {digest[:12]}…, journal has {(header.manifest_sha256 or '')[:12]}…); "
            "start a new job for the new manifest"
        )
    spec = header.spec
    return scan_manifest(
        path,
        operation=spec.operation,
        manifest_format=header.manifest_format,
        domain=spec.domain,
        repository=spec.repository,
        chunk_size=spec.chunk_size,
    )


def work_items(
    header: JournalHeader, summary: ManifestSummary, state: JournalState | None, stats: Stats
) -> Iterator[WorkItem]:
    """The chunks still to send, rebuilt from the manifest; done ones are counted, not sent."""
    spec = header.spec
    targets = read_targets(
        Path(header.manifest_path or ""),
        operation=spec.operation,
        manifest_format=header.manifest_format,
        domain=spec.domain,
        repository=spec.repository,
        expected_sha256=header.manifest_sha256,
    )
    chunks = make_chunks(
        targets,
        operation=spec.operation,
        chunk_size=spec.chunk_size,
        package_sizes=summary.package_sizes.get,
    )
    for chunk in chunks:
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


async def run_new(
    prepared: Prepared,
    header: JournalHeader,
    checkpoint: Path,
    settings: EngineSettings,
    aws: AwsSettings,
    stop: StopSignal,
    stats: Stats,
) -> RunResult:
    """Create the journal holding `header` (see `header_for`) and run the job from the start.

    The client comes first: a bad region, profile or credentials leave no journal behind.
    """
    async with open_codeartifact(aws) as registry:
        journal = await create_journal(LocalFileStore(checkpoint), header)
        async with journal:
            items = work_items(header, prepared.summary, None, stats)
            return await run_engine(journal, registry, items, settings, stop, stats)


async def run_resume(
    checkpoint: Path,
    settings: EngineSettings,
    aws: AwsSettings,
    stop: StopSignal,
    stats: Stats,
) -> RunResult:
    """Continue a job from its journal alone, sending only what is not yet done."""
    store = LocalFileStore(checkpoint)
    if not store.exists():
        raise UsageError(f"checkpoint {checkpoint} does not exist")
    header = read_header(store)
    summary = check_manifest(header)
    async with open_codeartifact(aws) as registry, open_journal(store) as (journal, state):
        log.info(
            "resuming",
            chunks_complete=state.chunks_complete,
            records=state.records,
            torn_line=state.torn_line,
        )
        items = work_items(header, summary, state, stats)
        return await run_engine(journal, registry, items, settings, stop, stats, resumed=True)


async def run_engine(
    journal: Journal,
    registry: Registry,
    items: Iterable[WorkItem],
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
        yield run
    finally:
        result = run.result or RunResult(
            stats, f"{stop.reason or 'error'}, then cancelled", stop.fatal, tripped=stop.tripped
        )
        with anyio.CancelScope(shield=True):
            await journal.event("run_ended", **run_ending(result))


def run_knobs(settings: EngineSettings) -> dict[str, object]:
    """The `run_started` event's data: the knobs this run used."""
    return {
        "concurrency": settings.concurrency,
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
    }
