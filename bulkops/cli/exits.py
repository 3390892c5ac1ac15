"""How a command ends: its error line, or a job's closing summary and exit code."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click
import structlog

from bulkops.engine import RunResult
from bulkops.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_PERMANENT_FAILURES
from bulkops.journal import LocalFileStore
from bulkops.log import redact_text
from bulkops.render import render
from bulkops.safety import tripped_message

log = structlog.get_logger("bulkops.cli")


def fail(message: str, code: int) -> NoReturn:
    """Print `bulkops: error: MESSAGE` to stderr and exit with `code`."""
    click.echo(f"bulkops: error: {redact_text(message)}", err=True)
    sys.exit(code)


def finish(checkpoint: Path, result: RunResult) -> int:
    """Print the job's report summary and choose the exit code for the whole job."""
    totals = render(LocalFileStore(checkpoint), "table", sys.stdout)
    stats = result.stats
    resume = f"bulkops resume {checkpoint}"
    log.info(
        "run_done",
        stopped=result.stopped,
        tripped=result.tripped,
        calls=stats.calls,
        throttled=stats.throttled,
        retries=stats.retries,
        versions_ok=stats.versions_ok,
        versions_failed=stats.versions_failed,
        chunks_given_up=stats.chunks_given_up,
    )
    if result.fatal is not None:
        click.echo(f"bulkops: error: {redact_text(str(result.fatal))}", err=True)
        click.echo(f"After fixing the cause, continue with: {resume}", err=True)
        return result.fatal.exit_code
    if result.tripped:
        click.echo(tripped_message(str(checkpoint), result.stopped, resume), err=True)
        return EXIT_PERMANENT_FAILURES
    if result.stopped is not None:
        click.echo(f"Interrupted ({result.stopped}). Continue with: {resume}", err=True)
        return EXIT_INTERRUPTED
    if stats.chunks_given_up or sum(totals.pending.values()) or totals.not_started:
        click.echo(
            f"{stats.chunks_given_up} chunks did not finish within their retries. "
            f"Continue with: {resume}",
            err=True,
        )
        return EXIT_INTERRUPTED
    if totals.has_permanent_failures:
        click.echo(
            f"Finished with {totals.permanent_failures} permanent failures; list them with: "
            f"bulkops report {checkpoint} --failed-only",
            err=True,
        )
        return EXIT_PERMANENT_FAILURES
    return EXIT_OK
