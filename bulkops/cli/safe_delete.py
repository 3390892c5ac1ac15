"""`bulkops delete --safe-delete`: the command around the two phases of `jobs.safe_delete`.

It validates the manifest (every row must pin its revision), prints what the safe delete
does, runs or resumes phase 1, writes phase 2's manifest, runs or resumes phase 2, and
ends with one exit code, saying after each phase what it did.
"""

from __future__ import annotations

import io
import shlex
import sys
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

import anyio
import click
import structlog

from bulkops.cli.exits import closing_summary, fail, notify, plural, print_json, run_ending
from bulkops.cli.job import job_from, prepare_now
from bulkops.engine.types import RunResult
from bulkops.errors import (
    EXIT_OK,
    EXIT_PERMANENT_FAILURES,
    BulkopsError,
    NothingToDo,
    Refused,
    UsageError,
)
from bulkops.jobs.checks import check_target
from bulkops.jobs.guarded import check_job_caps
from bulkops.jobs.job import Job
from bulkops.jobs.prepare import CHECKPOINT_DIR, Prepared, default_checkpoint
from bulkops.jobs.safe_delete import (
    check_same_safe_delete,
    local_checkpoint,
    phase_jobs,
    phase_paths,
    run_phase,
    write_phase2_manifest,
)
from bulkops.journal.location import open_store
from bulkops.model import JobSpec
from bulkops.report.merge import Totals
from bulkops.report.render import render

log = structlog.get_logger("bulkops.cli.safe_delete")


def again_command(kw: dict[str, Any], checkpoint: Path) -> str:
    """The command that goes on with this safe delete from wherever it stopped."""
    argv = ["bulkops", "delete", "--domain", kw["domain"]]
    if kw.get("domain_owner"):
        argv += ["--domain-owner", kw["domain_owner"]]
    argv += ["--repository", kw["repository"], "--manifest", kw["manifest"]]
    if kw.get("manifest_format"):
        argv += ["--manifest-format", kw["manifest_format"]]
    if kw.get("expected_status"):
        argv += ["--expected-status", kw["expected_status"]]
    argv += ["--safe-delete", "--checkpoint", str(checkpoint), "--resume-existing", "--execute"]
    return shlex.join(argv)


def _settle(result: RunResult, checkpoint: Path, again: str, kw: dict[str, Any]) -> Totals | int:
    """The phase's totals if it finished, else the exit code the command ends with."""
    json_out = kw.get("output") == "json"
    out = io.StringIO() if json_out else sys.stdout
    totals = anyio.run(render, open_store(checkpoint), "table", out, backend="asyncio")
    ending = run_ending(result, totals, checkpoint, again)
    if json_out:
        print_json(closing_summary(checkpoint, result, totals, ending))
    # a phase that finished, with or without permanent failures, goes on to what follows
    if ending.code == EXIT_OK or ending.event == "run_finished_with_failures":
        return totals
    ending.tell(checkpoint)  # 3 for a tripped rail, not 75: a batch retry would drop the rail
    return ending.code


def run_safe_delete(kw: dict[str, Any], spec: JobSpec) -> NoReturn:
    """The body of `bulkops delete --safe-delete`: validate, then archive and delete."""
    try:
        sys.exit(_run(kw, spec))
    except NothingToDo as exc:
        click.echo(str(exc))
        sys.exit(exc.exit_code)
    except BulkopsError as exc:
        fail(str(exc), exc.exit_code)


def _run(kw: dict[str, Any], spec: JobSpec) -> int:
    where = kw["checkpoint"] or default_checkpoint(spec, kw.get("checkpoint_dir") or CHECKPOINT_DIR)
    first_job, second_job = phase_jobs(job_from(kw, spec, where))  # a local checkpoint only
    checkpoint = local_checkpoint(second_job)
    phase1, manifest2 = phase_paths(checkpoint)
    started = phase1.exists() or checkpoint.exists()
    if kw["execute"] and started and not kw.get("resume_existing"):
        raise UsageError(
            f"safe delete {checkpoint} was started before; add --resume-existing to go on "
            "from where it stopped, or choose another --checkpoint"
        )
    if not kw["execute"]:
        with tempfile.TemporaryDirectory(prefix="bulkops-plan-") as spool:  # a stdin manifest
            _plan(kw, first_job, Path(spool))
        anyio.run(check_target, first_job.aws, first_job.spec, backend="asyncio")
        if kw.get("output") != "json":
            click.echo(
                f"{spec.domain}/{spec.repository} exists (checked with DescribeRepository). "
                "Nothing was sent to change it: add --execute to run this job."
            )
        return EXIT_OK
    # a new phase 1 gets its chunk list beside its journal; a started one keeps its own
    prepared = _plan(kw, first_job, checkpoint.parent, None if phase1.exists() else phase1)
    again = again_command(kw, checkpoint)
    if phase1.exists():  # whichever phase goes on, it must be this manifest's safe delete
        if kw["manifest"] == "-":  # this run's copy of stdin: the journal names its own
            prepared.manifest.unlink(missing_ok=True)
        check_same_safe_delete(phase1, first_job.spec, prepared.summary.sha256)
    if checkpoint.exists():
        done = None
        if phase1.exists():
            store = open_store(phase1)
            done = anyio.run(render, store, "table", io.StringIO(), backend="asyncio")
        return _phase2(second_job, None, kw, again, done)
    result = run_phase(first_job, None if phase1.exists() else prepared)
    first = _settle(result, phase1, again, kw)
    if isinstance(first, int):
        return first
    n = anyio.run(write_phase2_manifest, phase1, checkpoint, backend="asyncio")
    notify(
        "phase1_done",
        f"phase 1 archived {n} versions; phase 2 deletes them: {manifest2}",
        archived=n,
        manifest=str(manifest2),
    )
    if n == 0:
        return EXIT_PERMANENT_FAILURES if first.has_permanent_failures else EXIT_OK
    return _phase2(second_job, manifest2, kw, again, first)


def _plan(
    kw: dict[str, Any], first: Job, spool_dir: Path, checkpoint: Path | None = None
) -> Prepared:
    """Validate the manifest, print what the safe delete does, refuse what the rails refuse.

    With `checkpoint`, phase 1's chunk list is written beside it (see `job.prepare`).
    """
    archive_spec = first.spec
    prepared = prepare_now(
        archive_spec,
        kw["manifest"],
        kw["manifest_format"],
        spool_dir,
        checkpoint,
    )
    s = prepared.summary
    try:
        if s.revisions_pinned != s.targets:
            raise Refused(
                f"--safe-delete deletes only versions whose revision the manifest pins, and "
                f"{s.targets - s.revisions_pinned} of its {s.targets} rows pin none; "
                "make the manifest with `bulkops plan`, which pins every revision"
            )
        if kw.get("output") != "json":
            click.echo(
                f"safe delete: {plural(s.targets, 'version')} of {plural(s.packages, 'package')}"
                f" in {archive_spec.repository!r} ({archive_spec.domain}): archive them with"
                " their revisions pinned, then delete those archived (expectedStatus=Archived)"
            )
        elif not kw["execute"]:
            print_json(
                {
                    "operation": "delete",
                    "safe_delete": True,
                    "domain": archive_spec.domain,
                    "repository": archive_spec.repository,
                    "unit": "version",
                    "targets": s.targets,
                    "packages": s.packages,
                    "calls": 2 * s.chunks,  # an archive and a delete per chunk, at most
                    "sent": False,
                }
            )
        check_job_caps(first.rails, archive_spec, s)
    except Refused:
        spooled = kw["manifest"] == "-"  # no journal: nothing will resume it
        anyio.run(partial(prepared.discard, spooled=spooled), backend="asyncio")
        raise
    return prepared


def _phase2(
    job: Job, manifest2: Path | None, kw: dict[str, Any], again: str, first: Totals | None = None
) -> int:
    checkpoint = local_checkpoint(job)
    if manifest2 is None:  # resuming phase 2: its journal names its manifest
        result = run_phase(job, None)
    else:
        prepared = prepare_now(
            job.spec,
            str(manifest2),
            "jsonl",
            checkpoint.parent,
            checkpoint,
        )
        result = run_phase(job, prepared)
    second = _settle(result, checkpoint, again, kw)
    if isinstance(second, int):
        return second
    if second.has_permanent_failures or (first is not None and first.has_permanent_failures):
        phase1, _ = phase_paths(checkpoint)
        reports = [f"bulkops report {p} --failed-only" for p in (phase1, checkpoint)]
        notify(
            "run_finished_with_failures",
            f"Finished with permanent failures; list them with: {reports[0]} (archive) "
            f"and {reports[1]} (delete)",
            level="warning",
            checkpoint=str(checkpoint),
            report_commands=reports,
            exit_code=EXIT_PERMANENT_FAILURES,
        )
        return EXIT_PERMANENT_FAILURES
    return EXIT_OK


def safe_delete_option() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The delete command's --safe-delete flag."""
    return click.option(
        "--safe-delete",
        is_flag=True,
        help="Archive with every revision pinned, then delete only what was archived "
        "(expectedStatus=Archived): a version changed since planning is never deleted. "
        "Needs a manifest that pins revisions (`bulkops plan` writes one), e.g. "
        "--manifest plan.jsonl --safe-delete.",
    )
