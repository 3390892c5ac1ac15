"""`delete --safe-delete`: delete only reviewed versions, in two resumable phases.

DeletePackageVersions cannot pin revisions, so a version republished after the plan was
reviewed would be deleted. Safe delete closes that gap with a status the plan controls:

    phase 1  set-status Archived, every row's revision pinned (versionRevisions): a
             version changed since planning fails MISMATCHED_REVISION and stays as it is
    phase 2  delete, expectedStatus=Archived, only the versions phase 1 archived: a version
             republished (or un-archived) since phase 1 fails MISMATCHED_STATUS

Two jobs, two journals, linked by name to the checkpoint C the user names (by default a
new one in --checkpoint-dir):

    C.archive.journal   phase 1 (a set-status job; `bulkops report` reads it)
    C.delete.jsonl      phase 2's manifest: what phase 1 archived, written atomically once
                        phase 1 is complete (derived from its journal, so rebuilt the same)
    C                   phase 2 (a delete job): the checkpoint the user asked for

Why two journals rather than a phase field in one: each phase stays an ordinary job that
`bulkops resume` and `bulkops report` already understand, each journal header states one
spec (set-status, then delete with expectedStatus=Archived), and what exists on disk
says where a run stopped. Running the same command again with --resume-existing goes on
from there: phase 1 is resumed unless complete, the phase 2 manifest is (re)built from
phase 1's journal, and phase 2 is started or resumed. (`bulkops resume` of either journal
continues that phase alone.) A Disposed version cannot be archived (NOT_ALLOWED), so
safe delete never deletes one; versions archived whose delete then failed stay Archived,
and `bulkops report C.archive.journal --undo` restores them.
"""

from __future__ import annotations

import json
from contextlib import aclosing
from dataclasses import replace
from pathlib import Path

import anyio

from bulkops.engine.types import RunResult
from bulkops.errors import ManifestChanged, UsageError
from bulkops.jobs.guarded import run_new_guarded
from bulkops.jobs.job import Job
from bulkops.jobs.prepare import Prepared, header_for
from bulkops.jobs.start import run_resume
from bulkops.jobs.supervisor import supervise
from bulkops.journal.location import open_store
from bulkops.journal.records import read_header
from bulkops.model import JobSpec, Operation
from bulkops.report.merge import ALREADY_APPLIED, SUCCEEDED
from bulkops.report.stream import packages_of


def phase_paths(checkpoint: Path) -> tuple[Path, Path]:
    """(phase 1 journal, phase 2 manifest) of the safe delete whose phase 2 journal is C."""
    return (
        checkpoint.with_name(checkpoint.name + ".archive.journal"),
        checkpoint.with_name(checkpoint.name + ".delete.jsonl"),
    )


def phase_jobs(job: Job) -> tuple[Job, Job]:
    """The two jobs of the safe delete `job` asks for (a delete whose checkpoint is C):
    phase 1 archives, pinned and behind the job's rails, into C.archive.journal; phase 2
    deletes what was archived (expectedStatus=Archived) into C, without rails."""
    spec = job.spec
    if not isinstance(job.checkpoint, Path):
        raise UsageError(
            "--safe-delete keeps its two phases' journals and manifests beside a local "
            f"checkpoint, and {job.checkpoint} is not one: give a local --checkpoint"
        )
    if spec.operation is not Operation.DELETE:
        raise ValueError(f"a safe delete is a delete, not {spec.operation.value}")
    archive = replace(spec, operation=Operation.SET_STATUS, target_status="Archived")
    delete = replace(spec, expected_status="Archived")
    phase1, _ = phase_paths(job.checkpoint)
    return job.phase(archive, phase1, job.rails), job.phase(delete, job.checkpoint)


def check_same_safe_delete(phase1: Path, archive: JobSpec, manifest_sha256: str) -> None:
    """Refuse to go on with a phase 1 journal of another manifest or other options."""
    header = anyio.run(read_header, open_store(phase1), backend="asyncio")
    same = replace(header.spec, chunk_size=archive.chunk_size) == archive
    if header.manifest_sha256 != manifest_sha256 or not same:  # chunk size: the first run's
        raise ManifestChanged(
            f"{phase1} holds another safe delete (another manifest or options); "
            "choose another --checkpoint"
        )


async def write_phase2_manifest(phase1: Path, checkpoint: Path) -> int:
    """The versions phase 1 archived, as a manifest (no revisions: delete takes none),
    written through phase 2's store as its "delete.jsonl" (see `phase_paths`)."""
    n = 0
    out = open_store(checkpoint).writer("delete.jsonl")
    try:
        async with aclosing(packages_of(open_store(phase1))) as packages:
            async for pkg in packages:
                ref = pkg.ref.to_dict()
                for version in sorted(
                    [*pkg.with_outcome(SUCCEEDED), *pkg.with_outcome(ALREADY_APPLIED)]
                ):
                    row = {k: v for k, v in ref.items() if v is not None}
                    row["version"] = version
                    n += 1
                    out.write(json.dumps(row, separators=(",", ":")).encode() + b"\n")
        await out.commit()
    finally:
        await out.abort()
    return n


def local_checkpoint(job: Job) -> Path:
    """A safe delete phase's checkpoint, local by `phase_jobs`."""
    if not isinstance(job.checkpoint, Path):
        raise UsageError(f"checkpoint {job.checkpoint} is not local")
    return job.checkpoint


def run_phase(job: Job, prepared: Prepared | None) -> RunResult:
    """One phase under supervision: resumed from its journal, or started from `prepared`."""
    if prepared is None:  # the journal says what the job is (its chunk size: the first run's)
        header = anyio.run(read_header, open_store(job.checkpoint), backend="asyncio")
        resumed = replace(job, spec=header.spec)
        return supervise(lambda stop, stats: run_resume(resumed, stop, stats), job.supervision)
    header = header_for(prepared)
    return supervise(
        lambda stop, stats: run_new_guarded(job, prepared, header, stop, stats), job.supervision
    )
