"""The `Job` a command's options describe: its rails (as click options too), its supervision."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import click

from bulkops.cli.options import aws_settings, engine_settings
from bulkops.jobs.job import Job, Supervision
from bulkops.jobs.prepare import Prepared, prepare
from bulkops.jobs.rails import Rails
from bulkops.journal.location import Checkpoint
from bulkops.model import JobSpec

_DEFAULT = Rails()
_WATCH = Supervision()


def cap_options(what: str) -> list[Callable[[Callable[..., Any]], Callable[..., Any]]]:
    """--max-versions, --max-packages and --keep-min, for a job or a plan (`what`)."""
    o = click.option
    return [
        o(
            "--max-versions",
            type=click.IntRange(min=0),
            help=f"Refuse a {what} of more versions than this (exit 2, nothing sent), e.g. 10000.",
        ),
        o(
            "--max-packages",
            type=click.IntRange(min=0),
            help=f"Refuse a {what} touching more packages than this, e.g. 200.",
        ),
        o(
            "--keep-min",
            type=click.IntRange(min=0),
            default=_DEFAULT.keep_min,
            help=f"Refuse a {what} that would leave a package fewer versions (not Disposed) "
            "than this (lists the job's packages first), e.g. 3.",
        ),
    ]


def rail_options() -> list[Callable[[Callable[..., Any]], Callable[..., Any]]]:
    """The rails as click options, for every command that starts a job."""
    o = click.option
    return [
        *cap_options("job"),
        o(
            "--breaker",
            type=click.FloatRange(0.0, 1.0),
            help="Stop (exit 3) when more than this share of the first chunks' versions "
            "fail permanently, e.g. 0.2.",
        ),
        o(
            "--breaker-window",
            type=click.IntRange(min=1),
            default=_DEFAULT.breaker_window,
            show_default=True,
            help="Chunks the breaker watches from the start, e.g. 20.",
        ),
        o(
            "--canary",
            is_flag=True,
            help="Send the first chunk alone and go on only if all of it succeeded "
            "(else stop, exit 3), e.g. --canary.",
        ),
    ]


def rails_from(kw: dict[str, Any]) -> Rails:
    """The rails the command line asked for; an option a command lacks leaves its rail off."""
    return Rails(
        max_versions=kw.get("max_versions"),
        max_packages=kw.get("max_packages"),
        keep_min=kw.get("keep_min", _DEFAULT.keep_min),
        breaker=kw.get("breaker"),
        breaker_window=kw.get("breaker_window", _DEFAULT.breaker_window),
        canary=bool(kw.get("canary")),
    )


def supervision_from(kw: dict[str, Any]) -> Supervision:
    """How the command's run is watched: --max-duration and the progress options."""
    return Supervision(
        max_duration=kw.get("max_duration"),
        progress=kw.get("progress", _WATCH.progress),
        progress_interval=kw.get("progress_interval", _WATCH.progress_interval),
    )


def job_from(
    kw: dict[str, Any], spec: JobSpec, checkpoint: Checkpoint, *, rails: bool = True
) -> Job:
    """The job a command's options describe; `rails=False` for a resume (it runs none)."""
    return Job(
        spec,
        checkpoint,
        engine_settings(kw),
        aws_settings(kw),
        rails_from(kw) if rails else Rails(),
        supervision_from(kw),
    )


def prepare_now(
    spec: JobSpec,
    manifest: str,
    manifest_format: str | None,
    spool_dir: Path,
    checkpoint: Checkpoint | None = None,
) -> Prepared:
    """`prepare` from the CLI's synchronous code: validate and chunk the manifest (and with
    `checkpoint`, store its chunk list) in an event loop of its own."""
    return anyio.run(
        partial(
            prepare,
            spec,
            manifest,
            manifest_format=manifest_format,
            spool_dir=spool_dir,
            checkpoint=checkpoint,
        ),
        backend="asyncio",
    )
