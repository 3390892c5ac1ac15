"""The command line: parses argv, sets up logs and signals, runs jobs, maps outcomes to exits."""

from __future__ import annotations

import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn

import anyio
import click
import structlog

from bulkops import __version__
from bulkops import log as logsetup
from bulkops.aws import AwsSettings
from bulkops.engine import EngineSettings, RunResult, Stats, StopSignal
from bulkops.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PERMANENT_FAILURES,
    EXIT_UNEXPECTED,
    EXIT_USAGE,
    BulkopsError,
)
from bulkops.job import default_checkpoint, prepare, run_new, run_resume
from bulkops.journal import LocalFileStore
from bulkops.limits import RetryPolicy
from bulkops.model import STATUSES, TARGET_STATUSES, JobSpec, Operation
from bulkops.plan import estimate
from bulkops.render import REPORT_FORMATS, render

log = structlog.get_logger("bulkops.cli")

EXIT_CODES_HELP = """\b
Exit codes:
  0   everything succeeded or was already in the wanted state
  1   anything unexpected
  2   bad usage, input or configuration (nothing was sent)
  3   finished with permanent per-version failures (see `bulkops report`)
  75  interrupted or unfinished, resumable with `bulkops resume CHECKPOINT`
  77  access denied"""


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"bulkops: error: {message}", err=True)
    sys.exit(code)


def _options(*options: Callable[..., Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Apply click options in the order they are listed (their order in --help)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


def _job_options() -> list[Callable[..., Any]]:
    """What a new job takes besides its operation's own options."""
    return [
        click.option("--domain", required=True, help="CodeArtifact domain name."),
        click.option("--domain-owner", help="12-digit account id that owns the domain."),
        click.option(
            "--manifest",
            required=True,
            help="JSONL or CSV file of versions (fields: format, namespace, package, "
            "version, revision); `-` reads stdin.",
        ),
        click.option(
            "--manifest-format",
            type=click.Choice(["jsonl", "csv"]),
            help="Manifest format when the extension does not tell.",
        ),
        click.option(
            "--checkpoint",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Journal file to create (default: a new file under ./bulkops-checkpoints/).",
        ),
        click.option(
            "--execute", is_flag=True, help="Run the job. Without it: validate and plan only."
        ),
        click.option(
            "--chunk-size",
            type=click.IntRange(1, 100),
            default=100,
            show_default=True,
            help="Versions per call (the API takes at most 100).",
        ),
    ]


def _run_options() -> list[Callable[..., Any]]:
    """How a run behaves; a resume may change every one of them."""
    return [
        click.option(
            "--concurrency",
            type=click.IntRange(1, 256),
            default=16,
            show_default=True,
            help="Calls in flight at once.",
        ),
        click.option(
            "--rate",
            type=click.FloatRange(min=0.1),
            default=100.0,
            show_default=True,
            help="Ceiling for write calls per second (Delete, Dispose, UpdateStatus, "
            "DeletePackage); the account's quota is 100/s shared with everything else.",
        ),
        click.option(
            "--copy-rate",
            type=click.FloatRange(min=0.1),
            default=5.0,
            show_default=True,
            help="Ceiling for CopyPackageVersions calls per second (quota 5/s).",
        ),
        click.option(
            "--grace-period",
            type=click.FloatRange(min=0),
            default=20.0,
            show_default=True,
            help="Seconds calls in flight may take to finish after SIGINT/SIGTERM.",
        ),
        click.option(
            "--max-duration",
            type=click.FloatRange(min=0.1),
            help="Stop intake after this many seconds (then drain and exit 75).",
        ),
        click.option(
            "--call-timeout",
            type=click.FloatRange(min=0.1),
            default=60.0,
            show_default=True,
            help="Seconds one call may take before it is retried.",
        ),
        click.option(
            "--max-attempts",
            type=click.IntRange(1, 100),
            default=8,
            show_default=True,
            help="Calls per chunk for server errors, timeouts and dropped connections.",
        ),
        *_aws_options(),
        *_log_options(),
    ]


def _aws_options() -> list[Callable[..., Any]]:
    return [
        click.option("--region", help="AWS Region (default: from the AWS config)."),
        click.option("--profile", help="AWS profile name."),
        click.option(
            "--endpoint-url",
            help="CodeArtifact endpoint (default: AWS_ENDPOINT_URL_CODEARTIFACT or AWS's).",
        ),
    ]


def _log_options() -> list[Callable[..., Any]]:
    return [
        click.option(
            "--log-format",
            type=click.Choice(["auto", "console", "json"]),
            default="auto",
            show_default=True,
            help="console on a terminal, JSON lines otherwise (auto).",
        ),
        click.option(
            "--log-level",
            type=click.Choice(["debug", "info", "warning", "error"]),
            default="info",
            show_default=True,
            help="Least severe log events shown.",
        ),
    ]


_shared_options = _options(*_job_options(), *_run_options())


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXIT_CODES_HELP,
)
@click.version_option(__version__, prog_name="bulkops")
def cli() -> None:
    """Bulk lifecycle operations on AWS CodeArtifact package versions.

    Every operation reads a manifest, validates it whole, and without --execute only
    prints the plan. With --execute it runs chunks of up to 100 versions concurrently
    under a rate limit, journals every answer to a checkpoint, and can be stopped and
    resumed at any point.
    """


def _engine_settings(kw: dict[str, Any]) -> EngineSettings:
    return EngineSettings(
        concurrency=kw["concurrency"],
        rate=kw["rate"],
        copy_rate=kw["copy_rate"],
        call_timeout=kw["call_timeout"],
        grace_period=kw["grace_period"],
        retry=RetryPolicy(max_attempts=kw["max_attempts"]),
    )


def _aws_settings(kw: dict[str, Any], concurrency: int) -> AwsSettings:
    return AwsSettings(
        region=kw.get("region"),
        profile=kw.get("profile"),
        endpoint_url=kw.get("endpoint_url"),
        max_pool_connections=concurrency + 8,
        read_timeout=kw.get("call_timeout") or 60.0,
    )


def _operation(spec_for: Callable[[dict[str, Any]], JobSpec]) -> Callable[..., None]:
    """The body shared by the five operation commands."""

    def command(**kw: Any) -> None:
        logsetup.configure(level=kw["log_level"], fmt=kw["log_format"])
        try:
            spec = spec_for(kw)
            checkpoint: Path = kw["checkpoint"] or default_checkpoint(spec)
            if kw["execute"] and checkpoint.exists():
                raise _usage(
                    f"checkpoint {checkpoint} exists; continue it with "
                    f"`bulkops resume {checkpoint}` or choose another --checkpoint"
                )
            prepared = prepare(
                spec,
                kw["manifest"],
                manifest_format=kw["manifest_format"],
                spool_dir=checkpoint.parent,
            )
        except BulkopsError as exc:
            _fail(str(exc), exc.exit_code)
        _print_plan(prepared.summary, spec, kw)
        if not kw["execute"]:
            click.echo("Nothing was sent. Add --execute to run this job.")
            sys.exit(EXIT_OK)
        settings = _engine_settings(kw)
        aws = _aws_settings(kw, settings.concurrency)
        click.echo(f"checkpoint: {checkpoint}", err=True)
        _run_job(
            checkpoint,
            lambda stop, stats: run_new(prepared, checkpoint, settings, aws, stop, stats),
            kw.get("max_duration"),
            settings.grace_period,
        )

    return command


def _usage(message: str) -> BulkopsError:
    from bulkops.errors import UsageError

    return UsageError(message)


def _print_plan(summary: Any, spec: JobSpec, kw: dict[str, Any]) -> None:
    rate = kw["copy_rate"] if spec.operation is Operation.COPY else kw["rate"]
    est = estimate(summary, rate=rate)
    unit = "packages" if not spec.operation.per_version else "versions"
    click.echo(
        f"{spec.operation.value}: {summary.targets} {unit} of {summary.packages} packages "
        f"in {spec.repository!r} ({spec.domain}), {est.calls} calls, "
        f"about {est.seconds:.0f}s at {rate:g} calls/s"
    )
    if summary.duplicates:
        lines = ", ".join(str(n) for n in summary.duplicate_lines)
        click.echo(
            f"warning: {summary.duplicates} duplicate rows collapsed (lines {lines})", err=True
        )


def _run_job(
    checkpoint: Path,
    start: Callable[[StopSignal, Stats], Awaitable[RunResult]],
    max_duration: float | None,
    grace: float,
) -> NoReturn:
    stop, stats = StopSignal(), Stats()

    async def main() -> RunResult:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_watch_signals, stop, tg.cancel_scope)
            if max_duration:
                tg.start_soon(_stop_after, stop, max_duration)
            result = await start(stop, stats)
            tg.cancel_scope.cancel()
        return result

    try:
        result = anyio.run(main, backend="asyncio")
    except BulkopsError as exc:
        _fail(str(exc), exc.exit_code)
    sys.exit(_finish(checkpoint, result))


async def _watch_signals(stop: StopSignal, scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            name = signal.Signals(signum).name
            if stop.requested:
                log.warning("second_signal", signal=name, note="cancelling without drain")
                scope.cancel()
                return
            stop.request(name)


async def _stop_after(stop: StopSignal, seconds: float) -> None:
    await anyio.sleep(seconds)
    stop.request("max-duration")


def _finish(checkpoint: Path, result: RunResult) -> int:
    """Print the job's report summary and choose the exit code for the whole job."""
    totals = render(LocalFileStore(checkpoint), "table", sys.stdout)
    stats = result.stats
    resume = f"bulkops resume {checkpoint}"
    if result.fatal is not None:
        click.echo(f"bulkops: error: {result.fatal}", err=True)
        click.echo(f"After fixing the cause, continue with: {resume}", err=True)
        return result.fatal.exit_code
    if result.stopped is not None:
        click.echo(f"Interrupted ({result.stopped}). Continue with: {resume}", err=True)
        return EXIT_INTERRUPTED
    if stats.chunks_given_up or sum(totals.pending.values()):
        click.echo(
            f"{stats.chunks_given_up} chunks did not finish after their retries. "
            f"Continue with: {resume}",
            err=True,
        )
        return EXIT_INTERRUPTED
    if totals.has_permanent_failures:
        click.echo(
            f"Finished with {totals.permanent_failures} permanent failures: "
            f"bulkops report {checkpoint} --failed-only",
            err=True,
        )
        return EXIT_PERMANENT_FAILURES
    return EXIT_OK


def _ns(kw: dict[str, Any]) -> dict[str, Any]:
    return {
        "domain": kw["domain"],
        "domain_owner": kw["domain_owner"],
        "chunk_size": kw["chunk_size"],
    }


_repository = click.option("--repository", required=True, help="Repository to act on.")
_expected = click.option(
    "--expected-status",
    type=click.Choice(STATUSES),
    help="Act only on versions in this status; others fail MISMATCHED_STATUS.",
)


@cli.command(
    "delete",
    epilog="Example: bulkops delete --domain acme --repository main --manifest old.csv --execute",
)
@_shared_options
@_repository
@_expected
def delete_cmd(**kw: Any) -> None:
    """Delete package versions (DeletePackageVersions): their assets and metadata go."""
    _operation(
        lambda k: JobSpec(
            Operation.DELETE,
            repository=k["repository"],
            expected_status=k["expected_status"],
            **_ns(k),
        )
    )(**kw)


@cli.command(
    "dispose",
    epilog="Example: bulkops dispose --domain acme --repository main "
    "--manifest plan.jsonl --expected-status Archived --execute",
)
@_shared_options
@_repository
@_expected
def dispose_cmd(**kw: Any) -> None:
    """Dispose package versions (DisposePackageVersions): assets go, metadata stays."""
    _operation(
        lambda k: JobSpec(
            Operation.DISPOSE,
            repository=k["repository"],
            expected_status=k["expected_status"],
            **_ns(k),
        )
    )(**kw)


@cli.command(
    "set-status",
    epilog="Example: bulkops set-status --domain acme --repository main "
    "--manifest old.csv --target-status Archived --execute",
)
@_shared_options
@_repository
@_expected
@click.option(
    "--target-status",
    type=click.Choice(TARGET_STATUSES),
    required=True,
    help="The status to set.",
)
def set_status_cmd(**kw: Any) -> None:
    """Set the status of package versions (UpdatePackageVersionsStatus)."""
    _operation(
        lambda k: JobSpec(
            Operation.SET_STATUS,
            repository=k["repository"],
            expected_status=k["expected_status"],
            target_status=k["target_status"],
            **_ns(k),
        )
    )(**kw)


@cli.command(
    "copy",
    epilog="Example: bulkops copy --domain acme --source-repository main "
    "--destination-repository release --manifest release-2x.csv --execute",
)
@_shared_options
@click.option("--source-repository", required=True, help="Repository to copy from.")
@click.option("--destination-repository", required=True, help="Repository to copy into.")
@click.option("--allow-overwrite", is_flag=True, help="Replace versions that already exist.")
@click.option("--include-from-upstream", is_flag=True, help="Also copy versions from upstreams.")
def copy_cmd(**kw: Any) -> None:
    """Copy package versions between repositories of a domain (CopyPackageVersions)."""
    if kw["source_repository"] == kw["destination_repository"]:
        _fail("--source-repository and --destination-repository must differ", EXIT_USAGE)
    _operation(
        lambda k: JobSpec(
            Operation.COPY,
            repository=k["source_repository"],
            destination_repository=k["destination_repository"],
            allow_overwrite=k["allow_overwrite"],
            include_from_upstream=k["include_from_upstream"],
            **_ns(k),
        )
    )(**kw)


@cli.command(
    "delete-packages",
    epilog="Example: bulkops delete-packages --domain acme "
    "--repository main --manifest packages.csv --execute",
)
@_shared_options
@_repository
def delete_packages_cmd(**kw: Any) -> None:
    """Delete whole packages with all their versions (DeletePackage).

    The manifest names packages (format, namespace, package) and no versions.
    """
    _operation(lambda k: JobSpec(Operation.DELETE_PACKAGES, repository=k["repository"], **_ns(k)))(
        **kw
    )


@cli.command(
    "resume", epilog="Example: bulkops resume bulkops-checkpoints/delete-….journal --rate 50"
)
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@_options(*_run_options())
def resume_cmd(checkpoint: Path, **kw: Any) -> None:
    """Continue a job from its checkpoint: only what is not yet done is sent.

    The job's spec and manifest come from the checkpoint; rate and concurrency may change.
    """
    logsetup.configure(level=kw["log_level"], fmt=kw["log_format"])
    settings = _engine_settings(kw)
    aws = _aws_settings(kw, settings.concurrency)
    _run_job(
        checkpoint,
        lambda stop, stats: run_resume(checkpoint, settings, aws, stop, stats),
        kw.get("max_duration"),
        settings.grace_period,
    )


@cli.command(
    "report", epilog="Example: bulkops report CHECKPOINT --failed-only --format csv > retry.csv"
)
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(REPORT_FORMATS),
    default="table",
    show_default=True,
    help="table for people; json, jsonl or csv for programs.",
)
@click.option(
    "--failed-only",
    is_flag=True,
    help="Only versions that failed or are pending; with csv, a manifest for a new run.",
)
def report_cmd(checkpoint: Path, fmt: str, failed_only: bool) -> None:
    """Print a job's outcome, merged over every chunk, retry and resume, in the API's shapes."""
    store = LocalFileStore(checkpoint)
    if not store.exists():
        _fail(f"checkpoint {checkpoint} does not exist", EXIT_USAGE)
    try:
        render(store, fmt, sys.stdout, failed_only=failed_only)  # type: ignore[arg-type]
    except BulkopsError as exc:
        _fail(str(exc), exc.exit_code)


def main() -> None:
    """Console-script entry point."""
    try:
        cli.main(prog_name="bulkops")
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # the last line of defence: a bug, reported with exit 1
        structlog.get_logger("bulkops").exception("unexpected_error", error=str(exc))
        sys.exit(EXIT_UNEXPECTED)
