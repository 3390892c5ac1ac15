"""A job run from start to exit: the plan printout, signals, progress and the run itself."""

from __future__ import annotations

import sys
import tempfile
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

import anyio
import click
import structlog

from bulkops.cli.exits import fail, finish, notify, plural, print_json
from bulkops.cli.job import job_from, prepare_now, rails_from
from bulkops.cli.options import aws_settings, setup_logs
from bulkops.cli.params import lease_times
from bulkops.cli.sharded import shard_from, start_shard
from bulkops.errors import EXIT_OK, EXIT_USAGE, BulkopsError, ManifestChanged, NothingToDo
from bulkops.jobs.checks import check_target
from bulkops.jobs.guarded import check_job_caps, run_new_guarded
from bulkops.jobs.job import Job
from bulkops.jobs.prepare import default_checkpoint, header_for
from bulkops.jobs.start import run_resume
from bulkops.jobs.supervisor import Start, supervise
from bulkops.journal.journal import JournalHeader, read_header
from bulkops.journal.location import Checkpoint, open_store, spool_dir, use_aws
from bulkops.manifest.estimate import Estimate, estimate
from bulkops.manifest.files import file_sha256
from bulkops.manifest.scan import ManifestSummary
from bulkops.model import JobSpec, Operation

log = structlog.get_logger("bulkops.cli")


def start_job(kw: dict[str, Any], spec: JobSpec) -> NoReturn:
    """The body shared by the five operation commands."""
    setup_logs(kw)
    checkpoint: Checkpoint = kw["checkpoint"] or default_checkpoint(spec, kw["checkpoint_dir"])
    try:
        use_aws(aws_settings(kw), kms_key=kw.get("checkpoint_kms_key"), lease=lease_times(kw))
    except BulkopsError as exc:
        fail(str(exc), exc.exit_code)
    if (shard := shard_from(kw, kw["checkpoint"])) is not None:
        start_shard(kw, spec, checkpoint, shard)
    if kw["execute"] and stored(checkpoint):
        if kw["resume_existing"]:
            _resume_same_job(checkpoint, spec, kw)
        fail(
            f"checkpoint {checkpoint} exists; continue it with `bulkops resume {checkpoint}` "
            "(or add --resume-existing), or choose another --checkpoint",
            EXIT_USAGE,
        )
    if not kw["execute"]:
        _dry_run(kw, spec)
    try:
        prepared = prepare_now(
            spec,
            kw["manifest"],
            kw["manifest_format"],
            spool_dir(checkpoint),
            checkpoint,
        )
    except NothingToDo as exc:
        nothing_to_do(exc, kw)
    except BulkopsError as exc:
        fail(str(exc), exc.exit_code)
    if kw.get("output") != "json":  # a script gets the closing summary alone
        print_plan(prepared.summary, spec, kw)
    try:
        check_job_caps(rails_from(kw), spec, prepared.summary)
    except BulkopsError as exc:
        spooled = kw["manifest"] == "-"  # no journal: nothing will resume it
        anyio.run(partial(prepared.discard, spooled=spooled), backend="asyncio")
        fail(str(exc), exc.exit_code)
    job = job_from(kw, spec, checkpoint)
    header = header_for(prepared)
    run_job(
        job, header, kw, lambda stop, stats: run_new_guarded(job, prepared, header, stop, stats)
    )


def _dry_run(kw: dict[str, Any], spec: JobSpec) -> NoReturn:
    """Validate and plan without --execute: the caps refuse as they would, nothing is kept."""
    with tempfile.TemporaryDirectory(prefix="bulkops-plan-") as spool:  # a stdin manifest
        try:
            prepared = prepare_now(
                spec,
                kw["manifest"],
                kw["manifest_format"],
                Path(spool),
            )
            if kw.get("output") == "json":
                _warn_duplicates(prepared.summary)
            else:
                print_plan(prepared.summary, spec, kw)
            check_job_caps(rails_from(kw), spec, prepared.summary)
            latency = anyio.run(check_target, aws_settings(kw), spec, backend="asyncio")
        except NothingToDo as exc:
            nothing_to_do(exc, kw)
        except BulkopsError as exc:
            fail(str(exc), exc.exit_code)
    if kw.get("output") == "json":
        document = plan_document(prepared.summary, spec, kw, latency)
        print_json({**document, "sent": False})
    else:
        est = _estimate(prepared.summary, spec, kw, latency)
        if est.limited is not None:  # the plan line's time assumed the full rate
            click.echo(
                f"The repository answered in {1000 * latency:.0f} ms: {est.limited}, "
                f"{_took(est.seconds)} (--concurrency {kw['concurrency']}, "
                f"--max-concurrency {kw['max_concurrency']})."
            )
        where = spec.repository
        if spec.destination_repository is not None:
            where += f" and {spec.domain}/{spec.destination_repository}"
        click.echo(
            f"{spec.domain}/{where} exists (checked with DescribeRepository). "
            "Nothing was sent to change it: add --execute to run this job."
        )
    sys.exit(EXIT_OK)


def nothing_to_do(exc: NothingToDo, kw: dict[str, Any]) -> NoReturn:
    """An empty manifest ends the command as a success (a nightly `plan && run` that found
    nothing to clean must not fail its batch job), saying so."""
    if kw.get("output") == "json":
        print_json({"nothing_to_do": True, "message": str(exc)})
    else:
        click.echo(str(exc))
    sys.exit(exc.exit_code)


def _resume_same_job(checkpoint: Checkpoint, spec: JobSpec, kw: dict[str, Any]) -> NoReturn:
    header = checkpoint_header(checkpoint)
    if header.spec != spec:
        fail(
            f"checkpoint {checkpoint} holds another job ({header.spec.operation.value} on "
            f"{header.spec.domain}/{header.spec.repository}); choose another --checkpoint",
            EXIT_USAGE,
        )
    _check_same_manifest(checkpoint, header, kw["manifest"])
    notify(
        "resuming_existing",
        f"checkpoint {checkpoint} exists: resuming it",
        checkpoint=str(checkpoint),
    )
    resume(checkpoint, header, kw)


def _check_same_manifest(checkpoint: Checkpoint, header: JournalHeader, manifest: str) -> None:
    """End the command unless --manifest is the very file, unchanged, the checkpoint's job ran."""
    if manifest == "-":
        fail(
            "--resume-existing cannot tell whether stdin holds the manifest the checkpoint's "
            f"job ran; continue it with `bulkops resume {checkpoint}`, or pass the manifest "
            "as a file",
            EXIT_USAGE,
        )
    path = Path(manifest)
    if not path.is_file():
        fail(f"manifest {manifest} does not exist or is not a file", EXIT_USAGE)
    if str(path.resolve()) != header.manifest_path:
        fail(
            f"checkpoint {checkpoint} holds a job of manifest {header.manifest_path}, not "
            f"{path.resolve()}; choose another --checkpoint",
            ManifestChanged.exit_code,
        )
    if file_sha256(path) != header.manifest_sha256:
        fail(
            f"manifest {path} changed since the checkpoint's job started; start a new job "
            "for the new manifest (another --checkpoint)",
            ManifestChanged.exit_code,
        )


def stored(checkpoint: Checkpoint) -> bool:
    """Whether a journal is stored at `checkpoint`; a store that cannot be read ends the command."""
    try:
        return anyio.run(open_store(checkpoint).exists, backend="asyncio")
    except BulkopsError as exc:
        fail(str(exc), exc.exit_code)


def checkpoint_header(checkpoint: Checkpoint) -> JournalHeader:
    """The header of the job a checkpoint holds; a missing or unreadable one ends the command."""
    if not stored(checkpoint):
        fail(f"checkpoint {checkpoint} does not exist", EXIT_USAGE)
    try:
        return anyio.run(read_header, open_store(checkpoint), backend="asyncio")
    except BulkopsError as exc:
        fail(str(exc), exc.exit_code)


def resume(
    checkpoint: Checkpoint, header: JournalHeader, kw: dict[str, Any], job: Job | None = None
) -> NoReturn:
    """Run what the checkpoint's job has not yet done, under this run's options (or `job`'s)."""
    job = job or job_from(kw, header.spec, checkpoint, rails=False)
    run_job(job, header, kw, lambda stop, stats: run_resume(job, stop, stats))


def _rate(spec: JobSpec, kw: dict[str, Any]) -> float:
    return float(kw["copy_rate"] if spec.operation is Operation.COPY else kw["rate"])


def _estimate(
    summary: ManifestSummary, spec: JobSpec, kw: dict[str, Any], latency: float | None
) -> Estimate:
    """At the rate; with a latency, at what the concurrency (pinned, or auto's max) carries."""
    concurrency = kw.get("concurrency", "auto")
    most = kw["max_concurrency"] if concurrency == "auto" else concurrency
    return estimate(summary, rate=_rate(spec, kw), concurrency=most, latency=latency)


def plan_document(
    summary: ManifestSummary, spec: JobSpec, kw: dict[str, Any], latency: float | None
) -> dict[str, Any]:
    """A dry run's estimate, as `--output json` prints it."""
    est = _estimate(summary, spec, kw, latency)
    return {
        "operation": spec.operation.value,
        "domain": spec.domain,
        "repository": spec.repository,
        "destination_repository": spec.destination_repository,
        "unit": "version" if spec.operation.per_version else "package",
        "targets": summary.targets,
        "packages": summary.packages,
        "calls": est.calls,
        "rate": est.rate,
        "seconds": round(est.seconds, 3),
        "latency_ms": None if latency is None else round(1000 * latency, 1),
        "limited_by_concurrency": est.limited,
        "duplicates": summary.duplicates,
    }


def _took(seconds: float) -> str:
    return f"about {seconds:.0f}s" if seconds >= 1 else "under a second"


def print_plan(summary: ManifestSummary, spec: JobSpec, kw: dict[str, Any]) -> None:
    rate = _rate(spec, kw)
    est = estimate(summary, rate=rate)
    where = (
        f"{spec.repository!r} → {spec.destination_repository!r}"
        if spec.operation is Operation.COPY
        else repr(spec.repository)
    )
    what = (
        f"{plural(summary.targets, 'version')} of {plural(summary.packages, 'package')}"
        if spec.operation.per_version
        else plural(summary.targets, "package")
    )
    click.echo(
        f"{spec.operation.value}: {what} in {where} ({spec.domain}), "
        f"{plural(est.calls, 'call')}, {_took(est.seconds)} at {rate:g} calls/s"
    )
    _warn_duplicates(summary)


def _warn_duplicates(summary: ManifestSummary) -> None:
    if summary.duplicates:
        lines = ", ".join(str(n) for n in summary.duplicate_lines)
        notify(
            "duplicate_rows",
            f"warning: {summary.duplicates} duplicate rows collapsed (lines {lines})",
            level="warning",
            duplicates=summary.duplicates,
            lines=list(summary.duplicate_lines),
        )


def run_job(job: Job, header: JournalHeader, kw: dict[str, Any], start: Start) -> NoReturn:
    structlog.contextvars.bind_contextvars(
        job_id=header.job_id, operation=header.spec.operation.value
    )
    try:
        result = supervise(start, job.supervision)
    except BulkopsError as exc:
        fail(str(exc), exc.exit_code)
    sys.exit(finish(job.checkpoint, result, kw.get("output") or "text"))
