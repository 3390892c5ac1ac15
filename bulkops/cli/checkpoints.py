"""The commands on a checkpoint: resume the job it holds, report its outcome."""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import click

from bulkops.cli.exits import fail, logs_are_json, run_ending
from bulkops.cli.options import (
    aws_settings,
    config_option,
    output_option,
    run_options,
    setup_logs,
    with_options,
)
from bulkops.cli.params import CHECKPOINT, lease_times, shard_options
from bulkops.cli.runs import checkpoint_header, resume
from bulkops.cli.sharded import shard_resume
from bulkops.engine.types import RunResult, Stats
from bulkops.errors import EXIT_USAGE, BulkopsError
from bulkops.jobs.shard_status import sharded_view
from bulkops.journal.location import Checkpoint, open_store, use_aws
from bulkops.journal.store import JournalStore
from bulkops.model import Operation
from bulkops.report.merge import Totals
from bulkops.report.render import REPORT_FORMATS, render
from bulkops.report.undo import make_undo, undo_lines


@click.command(
    "resume",
    epilog="""\b
Example:
  bulkops resume bulkops-checkpoints/delete-20261121T130000Z-1a2b3c.journal --rate 50""",
)
@click.argument("checkpoint", type=CHECKPOINT)
@config_option
@with_options(*run_options(), *shard_options(), output_option)
def resume_cmd(checkpoint: Checkpoint, **kw: Any) -> None:
    """Continue a job from its checkpoint: only what is not yet done is sent.

    The job and its manifest come from the checkpoint (a changed manifest is refused);
    rate, concurrency and the other run options may differ from the first run.
    """
    setup_logs(kw)
    try:
        use_aws(aws_settings(kw), lease=lease_times(kw))
    except BulkopsError as exc:
        fail(str(exc), exc.exit_code)
    if kw.get("shard_index") is not None or kw.get("shards") is not None:
        shard_resume(kw, checkpoint)
    resume(checkpoint, checkpoint_header(checkpoint), kw)


@click.command(
    "report",
    epilog="""\b
Examples:
  bulkops report CHECKPOINT --failed-only --format csv > retry.csv
  bulkops report CHECKPOINT --format json --exit-code > report.json   # gate CI on it""",
)
@click.argument("checkpoint", type=CHECKPOINT)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(REPORT_FORMATS),
    default="table",
    show_default=True,
    help="table for people; json, jsonl (one line per package) or csv (one row per version).",
)
@click.option(
    "--failed-only",
    is_flag=True,
    help="Only versions that failed or are pending; with csv, a manifest for a new run.",
)
@click.option(
    "--undo",
    is_flag=True,
    help="For a set-status job: write manifests that restore the previous statuses "
    "beside the checkpoint and print the set-status commands that run them.",
)
@click.option(
    "--exit-code",
    is_flag=True,
    help="Exit 3 when versions failed permanently, 75 when the job is unfinished "
    "(pending or not started), as the run itself would; without it a report exits 0.",
)
def report_cmd(
    checkpoint: Checkpoint, fmt: str, failed_only: bool, undo: bool, exit_code: bool
) -> None:
    """Print a job's outcome, merged over every chunk, retry and resume, in the API's shapes."""
    logs_are_json()  # sets the logs up on stderr: nothing but the report goes to stdout
    store = open_store(checkpoint)
    stores: list[JournalStore] | JournalStore = store
    expected = None
    if not anyio.run(store.exists, backend="asyncio"):
        stores, expected = _shards_of(checkpoint)
    try:
        if undo:
            if not isinstance(checkpoint, Path):
                fail(
                    "--undo writes manifests that set-status reads with --manifest, so it "
                    f"needs a local checkpoint, and {checkpoint} is in S3",
                    EXIT_USAGE,
                )
            plan = anyio.run(make_undo, checkpoint, backend="asyncio")
            for line in undo_lines(checkpoint, plan):
                click.echo(line)
            return
        job = partial(render, stores, fmt, sys.stdout, failed_only=failed_only, expected=expected)  # type: ignore[arg-type]
        totals = anyio.run(job, backend="asyncio")
    except BulkopsError as exc:
        fail(str(exc), exc.exit_code)
    if exit_code:
        sys.exit(_report_exit(checkpoint, totals))


def _shards_of(checkpoint: Checkpoint) -> tuple[list[JournalStore], int]:
    """The started shards of the sharded job at `checkpoint`, and what the whole job plans;
    ends the command when there is no job there."""
    try:
        view = anyio.run(sharded_view, checkpoint, backend="asyncio")
        if view is None:
            fail(f"checkpoint {checkpoint} does not exist", EXIT_USAGE)
        started = anyio.run(view.started, backend="asyncio")
    except BulkopsError as exc:
        fail(str(exc), exc.exit_code)
    if not started:
        fail(f"no shard of the job at {checkpoint} has started yet", EXIT_USAGE)
    d = view.descriptor
    return started, d.packages if d.spec.operation is Operation.DELETE_PACKAGES else d.versions


def _report_exit(checkpoint: Checkpoint, totals: Totals) -> int:
    """The exit code the job's outcome stands for (0, 3 or 75), told as a run would tell it."""
    ending = run_ending(RunResult(Stats()), totals, checkpoint, f"bulkops resume {checkpoint}")
    ending.tell(checkpoint)
    return ending.code
