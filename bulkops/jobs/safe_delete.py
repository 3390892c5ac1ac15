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

import io
import json
import shlex
import sys
import tempfile
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

import anyio
import click
import structlog

from bulkops.aws.session import AwsSettings
from bulkops.engine.types import EngineSettings, RunResult
from bulkops.errors import (
    EXIT_OK,
    EXIT_PERMANENT_FAILURES,
    BulkopsError,
    ManifestChanged,
    NothingToDo,
    Refused,
    UsageError,
)
from bulkops.jobs.guarded import check_job_caps, rails_from, run_new_guarded
from bulkops.jobs.start import (
    CHECKPOINT_DIR,
    Prepared,
    check_target,
    default_checkpoint,
    header_for,
    prepare,
    run_resume,
)
from bulkops.jobs.supervisor import supervise
from bulkops.journal.location import open_store
from bulkops.journal.records import read_header
from bulkops.model import JobSpec, Operation
from bulkops.report.merge import ALREADY_APPLIED, SUCCEEDED, Totals
from bulkops.report.render import render
from bulkops.report.stream import packages_of

log = structlog.get_logger("bulkops.jobs.safe_delete")


def phase_paths(checkpoint: Path) -> tuple[Path, Path]:
    """(phase 1 journal, phase 2 manifest) of the safe delete whose phase 2 journal is C."""
    return (
        checkpoint.with_name(checkpoint.name + ".archive.journal"),
        checkpoint.with_name(checkpoint.name + ".delete.jsonl"),
    )


def _specs(kw: dict[str, Any]) -> tuple[JobSpec, JobSpec]:
    common = {
        "domain": kw["domain"],
        "domain_owner": kw["domain_owner"],
        "repository": kw["repository"],
        "chunk_size": kw["chunk_size"],
    }
    archive = JobSpec(
        Operation.SET_STATUS,
        expected_status=kw.get("expected_status"),
        target_status="Archived",
        **common,
    )
    delete = JobSpec(Operation.DELETE, expected_status="Archived", **common)
    return archive, delete


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


def _notify(event: str, line: str, **fields: Any) -> None:
    from bulkops.cli.exits import notify  # bulkops.cli imports this module

    notify(event, line, **fields)


def _supervision(kw: dict[str, Any]) -> dict[str, Any]:
    return {
        "max_duration": kw.get("max_duration"),
        "progress": kw.get("progress", "off"),
        "progress_interval": kw.get("progress_interval", 10.0),
    }


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
    from bulkops.cli.exits import closing_summary, print_json, run_ending  # cli imports us

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


def run_safe_delete(kw: dict[str, Any], settings: EngineSettings, aws: AwsSettings) -> NoReturn:
    """The body of `bulkops delete --safe-delete`: validate, then archive and delete."""
    from bulkops.cli.exits import fail  # cli imports this module

    try:
        sys.exit(_run(kw, settings, aws))
    except NothingToDo as exc:
        click.echo(str(exc))
        sys.exit(exc.exit_code)
    except BulkopsError as exc:
        fail(str(exc), exc.exit_code)


def _run(kw: dict[str, Any], settings: EngineSettings, aws: AwsSettings) -> int:
    archive_spec, delete_spec = _specs(kw)
    checkpoint: Path = kw["checkpoint"] or default_checkpoint(
        delete_spec, kw.get("checkpoint_dir") or CHECKPOINT_DIR
    )
    phase1, manifest2 = phase_paths(checkpoint)
    started = phase1.exists() or checkpoint.exists()
    if kw["execute"] and started and not kw.get("resume_existing"):
        raise UsageError(
            f"safe delete {checkpoint} was started before; add --resume-existing to go on "
            "from where it stopped, or choose another --checkpoint"
        )
    if not kw["execute"]:
        with tempfile.TemporaryDirectory(prefix="bulkops-plan-") as spool:  # a stdin manifest
            _plan(kw, archive_spec, Path(spool))
        anyio.run(check_target, aws, archive_spec, backend="asyncio")
        if kw.get("output") != "json":
            click.echo(
                f"{kw['domain']}/{kw['repository']} exists (checked with DescribeRepository). "
                "Nothing was sent to change it: add --execute to run this job."
            )
        return EXIT_OK
    # a new phase 1 gets its chunk list beside its journal; a started one keeps its own
    prepared = _plan(kw, archive_spec, checkpoint.parent, None if phase1.exists() else phase1)
    s = prepared.summary
    again = again_command(kw, checkpoint)
    if phase1.exists():  # whichever phase goes on, it must be this manifest's safe delete
        header = anyio.run(read_header, open_store(phase1), backend="asyncio")
        if kw["manifest"] == "-":  # this run's copy of stdin: the journal names its own
            prepared.manifest.unlink(missing_ok=True)
        same = replace(header.spec, chunk_size=archive_spec.chunk_size) == archive_spec
        if header.manifest_sha256 != s.sha256 or not same:  # chunk size: the first run's
            raise ManifestChanged(
                f"{phase1} holds another safe delete (another manifest or options); "
                "choose another --checkpoint"
            )
    if checkpoint.exists():
        done = None
        if phase1.exists():
            store = open_store(phase1)
            done = anyio.run(render, store, "table", io.StringIO(), backend="asyncio")
        return _phase2(checkpoint, None, settings, aws, kw, again, done)
    if phase1.exists():
        result = supervise(
            lambda stop, stats: run_resume(phase1, settings, aws, stop, stats),
            **_supervision(kw),
        )
    else:
        header = header_for(prepared)
        rails = rails_from(kw)
        result = supervise(
            lambda stop, stats: run_new_guarded(
                prepared, header, phase1, settings, aws, stop, stats, rails
            ),
            **_supervision(kw),
        )
    first = _settle(result, phase1, again, kw)
    if isinstance(first, int):
        return first
    n = anyio.run(write_phase2_manifest, phase1, checkpoint, backend="asyncio")
    _notify(
        "phase1_done",
        f"phase 1 archived {n} versions; phase 2 deletes them: {manifest2}",
        archived=n,
        manifest=str(manifest2),
    )
    if n == 0:
        return EXIT_PERMANENT_FAILURES if first.has_permanent_failures else EXIT_OK
    return _phase2(checkpoint, manifest2, settings, aws, kw, again, first)


def _plan(
    kw: dict[str, Any], archive_spec: JobSpec, spool_dir: Path, checkpoint: Path | None = None
) -> Prepared:
    """Validate the manifest, print what the safe delete does, refuse what the rails refuse.

    With `checkpoint`, phase 1's chunk list is written beside it (see `job.prepare`).
    """
    prepared = anyio.run(
        partial(
            prepare,
            archive_spec,
            kw["manifest"],
            manifest_format=kw["manifest_format"],
            spool_dir=spool_dir,
            checkpoint=checkpoint,
        ),
        backend="asyncio",
    )
    s = prepared.summary
    try:
        if s.revisions_pinned != s.targets:
            raise Refused(
                f"--safe-delete deletes only versions whose revision the manifest pins, and "
                f"{s.targets - s.revisions_pinned} of its {s.targets} rows pin none; "
                "make the manifest with `bulkops plan`, which pins every revision"
            )
        from bulkops.cli.exits import plural, print_json  # bulkops.cli imports this module

        if kw.get("output") != "json":
            click.echo(
                f"safe delete: {plural(s.targets, 'version')} of {plural(s.packages, 'package')}"
                f" in {kw['repository']!r} ({kw['domain']}): archive them with their revisions "
                "pinned, then delete those archived (expectedStatus=Archived)"
            )
        elif not kw["execute"]:
            print_json(
                {
                    "operation": "delete",
                    "safe_delete": True,
                    "domain": kw["domain"],
                    "repository": kw["repository"],
                    "unit": "version",
                    "targets": s.targets,
                    "packages": s.packages,
                    "calls": 2 * s.chunks,  # an archive and a delete per chunk, at most
                    "sent": False,
                }
            )
        check_job_caps(rails_from(kw), archive_spec, s)
    except Refused:
        spooled = kw["manifest"] == "-"  # no journal: nothing will resume it
        anyio.run(partial(prepared.discard, spooled=spooled), backend="asyncio")
        raise
    return prepared


def _phase2(
    checkpoint: Path,
    manifest2: Path | None,
    settings: EngineSettings,
    aws: AwsSettings,
    kw: dict[str, Any],
    again: str,
    first: Totals | None = None,
) -> int:
    _, delete_spec = _specs(kw)
    if manifest2 is None:  # resuming phase 2: its journal names its manifest
        result = supervise(
            lambda stop, stats: run_resume(checkpoint, settings, aws, stop, stats),
            **_supervision(kw),
        )
    else:
        prepared = anyio.run(
            partial(
                prepare,
                delete_spec,
                str(manifest2),
                manifest_format="jsonl",
                spool_dir=checkpoint.parent,
                checkpoint=checkpoint,
            ),
            backend="asyncio",
        )
        header = header_for(prepared)
        no_rails = rails_from({})
        result = supervise(
            lambda stop, stats: run_new_guarded(
                prepared, header, checkpoint, settings, aws, stop, stats, no_rails
            ),
            **_supervision(kw),
        )
    second = _settle(result, checkpoint, again, kw)
    if isinstance(second, int):
        return second
    if second.has_permanent_failures or (first is not None and first.has_permanent_failures):
        phase1, _ = phase_paths(checkpoint)
        reports = [f"bulkops report {p} --failed-only" for p in (phase1, checkpoint)]
        _notify(
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
