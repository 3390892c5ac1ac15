"""A new job made ready: its spec checked, its manifest validated and chunked once, its header.

    prepared = await prepare(spec, "plan.jsonl", manifest_format=None, spool_dir=d, checkpoint=c)
    header = header_for(prepared)      # what the journal's first record says about the job

Nothing here sends a call. A resume reads the chunk list the run wrote, not the manifest:
`check_manifest` refuses only a manifest that is still there and changed since.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import anyio
import anyio.to_thread
import structlog

from bulkops.aws.shapes import violation
from bulkops.errors import (
    ManifestChanged,
    NothingToDo,
    UsageError,
)
from bulkops.journal.chunklist import CHUNKS, ChunkListWriter
from bulkops.journal.journal import (
    JournalHeader,
)
from bulkops.journal.location import Checkpoint, job_in, open_store
from bulkops.manifest.files import file_sha256, spool_stdin
from bulkops.manifest.scan import ManifestSummary, scan_manifest
from bulkops.model import JobSpec, Operation

log = structlog.get_logger("bulkops.jobs.prepare")


CHECKPOINT_DIR = Path("bulkops-checkpoints")


def default_checkpoint(spec: JobSpec, directory: Checkpoint = CHECKPOINT_DIR) -> Checkpoint:
    """A new checkpoint in `directory` (a path, or an s3:// prefix): operation, UTC time and
    a random suffix, never an existing one."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"{spec.operation.value}-{stamp}-{secrets.token_hex(3)}"
    return job_in(directory, name + ".journal" if isinstance(directory, Path) else name)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A validated job, ready to plan or run (with a chunk list when prepared for a run)."""

    spec: JobSpec
    summary: ManifestSummary
    manifest: Path

    checkpoint: Checkpoint | None = None

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
    checkpoint: Checkpoint | None = None,
    claim: Callable[[str, ManifestSummary], Awaitable[None]] | None = None,
) -> Prepared:
    """Validate the job and its manifest; stdin (`-`) is first spooled into `spool_dir`.

    With `checkpoint` (a run, not a dry run), the job's chunk list is written through its
    store. Reading, hashing and writing run in a worker thread. With `claim` (a sharded
    job), the list is shared: `claim(sha256, summary)` runs before it is stored and may
    refuse the job, and a list another worker stored first is kept.
    """
    check_spec(spec)
    path = await anyio.to_thread.run_sync(_manifest_file, manifest, spool_dir)
    writer = (
        None
        if checkpoint is None
        else ChunkListWriter(open_store(checkpoint), shared=claim is not None)
    )
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
            if claim is not None and summary.targets:
                await claim(writer.sha256, summary)
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
