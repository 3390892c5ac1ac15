"""`bulkops status`: each shard of a job (or a job's one journal) at a glance, and its exit code."""

from __future__ import annotations

import sys
from typing import Any

import anyio
import click
from rich.console import Console
from rich.table import Table

from bulkops.cli.exits import fail, logs_are_json, print_json
from bulkops.cli.params import CHECKPOINT
from bulkops.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PERMANENT_FAILURES,
    BulkopsError,
    UsageError,
)
from bulkops.jobs.shard_status import ShardStatus, shard_status, shard_statuses, sharded_view
from bulkops.journal.location import Checkpoint, open_store

_CODES = {"done": EXIT_OK, "failed": EXIT_PERMANENT_FAILURES}


@click.command(
    "status",
    epilog="""\b
Examples:
  bulkops status s3://ckpt/jobs/d
  bulkops status s3://ckpt/jobs/d --format json | jq '.shards[] | select(.state != "done")'""",
)
@click.argument("checkpoint", type=CHECKPOINT)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table for people, json for scripts.",
)
def status_cmd(checkpoint: Checkpoint, fmt: str) -> None:
    """Show each shard of a job: done, pending, failed, lease holder, last record's age.

    Exits with the worst shard's code: 0 all done, 3 permanent failures, 75 unfinished.
    """
    logs_are_json()
    try:
        rows = anyio.run(_statuses, checkpoint, backend="asyncio")
    except BulkopsError as exc:
        fail(str(exc), exc.exit_code)
    codes = [_CODES.get(row.state, EXIT_INTERRUPTED) for row in rows]
    code = EXIT_INTERRUPTED if EXIT_INTERRUPTED in codes else max(codes)
    if fmt == "json":
        print_json({"checkpoint": str(checkpoint), "exitCode": code, "shards": _dicts(rows)})
    else:
        _table(checkpoint, rows)
    sys.exit(code)


async def _statuses(checkpoint: Checkpoint) -> list[ShardStatus]:
    view = await sharded_view(checkpoint)
    if view is not None:
        return await shard_statuses(view)
    store = open_store(checkpoint)
    if not await store.exists():
        raise UsageError(f"checkpoint {checkpoint} does not exist")
    return [await shard_status(0, store)]


def _dicts(rows: list[ShardStatus]) -> list[dict[str, Any]]:
    return [row.to_dict() for row in rows]


def _table(checkpoint: Checkpoint, rows: list[ShardStatus]) -> None:
    table = Table("shard", "state", "done", "pending", "failed", "lease holder", "last record")
    for row in rows:
        age = "" if row.last_record_age is None else f"{row.last_record_age:.0f}s ago"
        pending = "?" if row.pending is None else str(row.pending)
        table.add_row(
            str(row.index),
            row.state,
            str(row.done),
            pending,
            str(row.failed),
            row.holder or "",
            age,
        )
    console = Console()
    console.print(f"[bold]bulkops status[/] {checkpoint}")
    console.print(table)
