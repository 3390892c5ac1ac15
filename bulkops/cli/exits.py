"""How a command ends: its error line, or a job's closing summary and exit code.

Everything bulkops tells the operator on stderr goes through `notify`: a line for people
when logs are readable console lines, a log event with the same facts as fields when logs
are JSON (`--log-format json`, or any run whose stderr is not a terminal), so that a JSON
log stream holds nothing but JSON. Reports and summaries go to stdout.
"""

from __future__ import annotations

import io
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn

import anyio
import click
import structlog

from bulkops import log as logsetup
from bulkops.engine.types import RunResult
from bulkops.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_PERMANENT_FAILURES
from bulkops.jobs.guarded import tripped_message
from bulkops.journal.location import Checkpoint, open_store
from bulkops.log import redact_text
from bulkops.report.merge import Totals
from bulkops.report.render import render

log = structlog.get_logger("bulkops.cli")

Output = Literal["text", "json"]
Level = Literal["info", "warning", "error"]


def logs_are_json() -> bool:
    """Whether stderr is a JSON log stream (set up with the defaults if not yet)."""
    if logsetup.rendering() is None:  # an error before the command set up its logs
        fmt = os.environ.get("BULKOPS_LOG_FORMAT")
        logsetup.configure(
            fmt="console" if fmt == "console" else "json" if fmt == "json" else "auto"
        )
    return logsetup.rendering() == "json"


def notify(event: str, line: str, *, level: Level = "info", **fields: Any) -> None:
    """Tell the operator on stderr: `line` on a console, else log `event` with `fields`."""
    if logs_are_json():
        getattr(log, level)(event, **fields)
    else:
        click.echo(redact_text(line), err=True)


def fail(message: str, code: int) -> NoReturn:
    """End the command with `bulkops: error: MESSAGE` (a `command_failed` event) and `code`."""
    notify(
        "command_failed", f"bulkops: error: {message}", level="error", error=message, exit_code=code
    )
    sys.exit(code)


def plural(n: int, word: str) -> str:
    """`1 version`, `2 versions`."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def print_json(document: dict[str, Any]) -> None:
    """One JSON document on stdout (`--output json`)."""
    click.echo(json.dumps(document, separators=(",", ":"), default=str))


@dataclass(frozen=True, slots=True)
class Ending:
    """How a run ends: its exit code and, unless it simply succeeded, what to tell the operator."""

    code: int
    event: str | None = None  # the log event's name; None: nothing to say
    line: str = ""
    level: Level = "warning"
    fields: dict[str, Any] = field(default_factory=dict)

    def tell(self, checkpoint: Checkpoint) -> None:
        if self.event is not None:
            notify(
                self.event,
                self.line,
                level=self.level,
                checkpoint=str(checkpoint),
                exit_code=self.code,
                **self.fields,
            )


def run_ending(result: RunResult, totals: Totals, checkpoint: Checkpoint, resume: str) -> Ending:
    """The exit code of a run and its hint; `resume` is the command that continues the job."""
    stats = result.stats
    if result.fatal is not None:
        error = str(result.fatal)
        return Ending(
            result.fatal.exit_code,
            "run_failed",
            f"bulkops: error: {error}\nAfter fixing the cause, continue with: {resume}",
            "error",
            {"error": error, "resume_command": resume},
        )
    if result.tripped:
        return Ending(
            EXIT_PERMANENT_FAILURES,
            "run_stopped_by_rail",
            tripped_message(str(checkpoint), result.stopped, resume),
            fields={
                "reason": result.stopped,
                "report_command": f"bulkops report {checkpoint} --failed-only",
                "resume_command": resume,
            },
        )
    if result.stopped is not None:
        return Ending(
            EXIT_INTERRUPTED,
            "run_interrupted",
            f"Interrupted ({result.stopped}). Continue with: {resume}",
            fields={"reason": result.stopped, "resume_command": resume},
        )
    undone = sum(totals.pending.values()) + (totals.not_started or 0)
    if stats.chunks_given_up or undone:
        why = (
            f"{plural(stats.chunks_given_up, 'chunk')} did not finish within their retries"
            if stats.chunks_given_up
            else f"{plural(undone, 'version')} pending or not started"
        )
        return Ending(
            EXIT_INTERRUPTED,
            "run_unfinished",
            f"Unfinished: {why}. Continue with: {resume}",
            fields={
                "chunks_given_up": stats.chunks_given_up,
                "undone": undone,
                "resume_command": resume,
            },
        )
    if totals.has_permanent_failures:
        report = f"bulkops report {checkpoint} --failed-only"
        return Ending(
            EXIT_PERMANENT_FAILURES,
            "run_finished_with_failures",
            f"Finished with {plural(totals.permanent_failures, 'permanent failure')}; "
            f"list them with: {report}",
            fields={"permanent_failures": totals.permanent_failures, "report_command": report},
        )
    return Ending(EXIT_OK)


def closing_summary(
    checkpoint: Checkpoint, result: RunResult, totals: Totals, ending: Ending
) -> dict[str, Any]:
    """The `--output json` document of a finished run."""
    stats = result.stats
    return {
        "checkpoint": str(checkpoint),
        "exit_code": ending.code,
        "resume_command": ending.fields.get("resume_command"),
        "stopped": result.stopped,
        "tripped": result.tripped,
        "error": str(result.fatal) if result.fatal is not None else None,
        "totals": totals.to_dict(),
        "calls": stats.calls,
        "throttled": stats.throttled,
        "retries": stats.retries,
    }


def finish(checkpoint: Checkpoint, result: RunResult, output: Output = "text") -> int:
    """Print the job's report summary and choose the exit code for the whole job."""
    out = sys.stdout if output == "text" else io.StringIO()
    totals = anyio.run(render, open_store(checkpoint), "table", out, backend="asyncio")
    stats = result.stats
    ending = run_ending(result, totals, checkpoint, f"bulkops resume {checkpoint}")
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
        exit_code=ending.code,
    )
    ending.tell(checkpoint)
    if output == "json":
        print_json(closing_summary(checkpoint, result, totals, ending))
    return ending.code
