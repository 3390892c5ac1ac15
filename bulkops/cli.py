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
from bulkops.config import default_map, load_job_file
from bulkops.emulator.command import emulator as emulator_cmd
from bulkops.engine import EngineSettings, RunResult, Stats, StopSignal
from bulkops.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PERMANENT_FAILURES,
    EXIT_UNEXPECTED,
    EXIT_USAGE,
    BulkopsError,
    UsageError,
    first_error,
)
from bulkops.job import (
    CHECKPOINT_DIR,
    default_checkpoint,
    header_for,
    prepare,
    run_resume,
)
from bulkops.journal import JournalHeader, LocalFileStore, read_header
from bulkops.limits import RetryPolicy
from bulkops.manifest import ManifestSummary
from bulkops.model import STATUSES, TARGET_STATUSES, JobSpec, Operation
from bulkops.plan import estimate
from bulkops.plan_command import build_plan_cmd
from bulkops.progress import show_progress
from bulkops.render import REPORT_FORMATS, render
from bulkops.safe_delete import run_safe_delete, safe_delete_option
from bulkops.safety import rail_options, rails_from, run_new_guarded
from bulkops.undo import print_undo

log = structlog.get_logger("bulkops.cli")

EXIT_CODES_HELP = """\b
Exit codes:
  0   everything succeeded or was already in the wanted state
  1   anything unexpected
  2   bad usage, input or configuration (nothing was sent)
  3   finished with permanent per-version failures (see `bulkops report`)
  75  interrupted or unfinished, resumable with `bulkops resume CHECKPOINT`
  77  access denied"""

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"bulkops: error: {message}", err=True)
    sys.exit(code)


def _options(*options: Decorator) -> Decorator:
    """Apply click options in the order they are listed (their order in --help)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


def _env(name: str) -> str:
    return f"BULKOPS_{name.upper().replace('-', '_')}"


def _load_config(ctx: click.Context, _: click.Parameter, value: Path | None) -> Path | None:
    """Eager: a job file becomes the command's defaults, under env vars and flags."""
    if value is None:
        return None
    command = ctx.info_name or ""
    try:
        defaults = default_map(load_job_file(value), value.parent, command)
    except BulkopsError as exc:
        _fail(str(exc), exc.exit_code)
    known = {p.name for p in ctx.command.params}
    if unknown := sorted(set(defaults) - known):
        _fail(f"config {value}: {', '.join(unknown)} do not apply to `bulkops {command}`", 2)
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


_config = click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    is_eager=True,
    expose_value=False,
    callback=_load_config,
    envvar="BULKOPS_CONFIG",
    help="TOML job file (see configs/); flags and BULKOPS_* variables override it.",
)


def _job_options() -> list[Decorator]:
    """What a new job takes besides its operation's own options."""
    return [
        _config,
        click.option("--domain", required=True, help="CodeArtifact domain name."),
        click.option(
            "--domain-owner",
            envvar=_env("domain_owner"),
            help="12-digit account id that owns the domain (default: the caller's).",
        ),
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
            help="Journal file of this job (default: a new file in --checkpoint-dir).",
        ),
        click.option(
            "--checkpoint-dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=CHECKPOINT_DIR,
            show_default=True,
            envvar=_env("checkpoint_dir"),
            help="Where new checkpoints are created.",
        ),
        click.option(
            "--execute",
            is_flag=True,
            envvar=_env("execute"),
            help="Run the job. Without it: validate, plan and send nothing.",
        ),
        click.option(
            "--resume-existing",
            is_flag=True,
            envvar=_env("resume_existing"),
            help="If --checkpoint exists and holds this same job, resume it instead of "
            "refusing (for batch systems that restart the same command).",
        ),
        click.option(
            "--chunk-size",
            type=click.IntRange(1, 100),
            default=100,
            show_default=True,
            envvar=_env("chunk_size"),
            help="Versions per call (the API takes at most 100).",
        ),
    ]


def _run_options() -> list[Decorator]:
    """How a run behaves; a resume may change every one of them."""
    return [
        click.option(
            "--concurrency",
            type=click.IntRange(1, 256),
            default=16,
            show_default=True,
            envvar=_env("concurrency"),
            help="Calls in flight at once.",
        ),
        click.option(
            "--rate",
            type=click.FloatRange(min=0.1),
            default=100.0,
            show_default=True,
            envvar=_env("rate"),
            help="Ceiling for write calls per second (Delete, Dispose, UpdateStatus, "
            "DeletePackage); the account's quota is 100/s, shared with everything else.",
        ),
        click.option(
            "--copy-rate",
            type=click.FloatRange(min=0.1),
            default=5.0,
            show_default=True,
            envvar=_env("copy_rate"),
            help="Ceiling for CopyPackageVersions calls per second (quota 5/s).",
        ),
        click.option(
            "--grace-period",
            type=click.FloatRange(min=0),
            default=20.0,
            show_default=True,
            envvar=_env("grace_period"),
            help="Seconds calls in flight may take to finish after SIGINT/SIGTERM.",
        ),
        click.option(
            "--max-duration",
            type=click.FloatRange(min=0.1),
            envvar=_env("max_duration"),
            help="Stop intake after this many seconds, drain, and exit 75.",
        ),
        click.option(
            "--call-timeout",
            type=click.FloatRange(min=0.1),
            default=60.0,
            show_default=True,
            envvar=_env("call_timeout"),
            help="Seconds one call may take before it is retried.",
        ),
        click.option(
            "--max-attempts",
            type=click.IntRange(1, 100),
            default=8,
            show_default=True,
            envvar=_env("max_attempts"),
            help="Calls per chunk for server errors, timeouts and dropped connections.",
        ),
        *_aws_options(),
        *_log_options(),
    ]


def _aws_options() -> list[Decorator]:
    return [
        click.option("--region", envvar=_env("region"), help="AWS Region (default: AWS config)."),
        click.option("--profile", envvar=_env("profile"), help="AWS profile name."),
        click.option(
            "--endpoint-url",
            envvar=_env("endpoint_url"),
            help="CodeArtifact endpoint (default: AWS_ENDPOINT_URL_CODEARTIFACT, else AWS's).",
        ),
    ]


def _log_options() -> list[Decorator]:
    return [
        click.option(
            "--log-format",
            type=click.Choice(["auto", "console", "json"]),
            default="auto",
            show_default=True,
            envvar=_env("log_format"),
            help="auto: readable lines on a terminal, JSON lines otherwise.",
        ),
        click.option(
            "--log-level",
            type=click.Choice(["debug", "info", "warning", "error"]),
            default="info",
            show_default=True,
            envvar=_env("log_level"),
            help="Least severe log events shown.",
        ),
        click.option(
            "--progress",
            type=click.Choice(["auto", "bar", "log", "off"]),
            default="auto",
            show_default=True,
            envvar=_env("progress"),
            help="auto: a live bar on a terminal, `progress` log events otherwise.",
        ),
        click.option(
            "--progress-interval",
            type=click.FloatRange(min=0.1),
            default=10.0,
            show_default=True,
            envvar=_env("progress_interval"),
            help="Seconds between `progress` log events (off a terminal).",
        ),
    ]


_shared_options = _options(*_job_options(), *rail_options(), *_run_options())


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXIT_CODES_HELP,
)
@click.version_option(__version__, prog_name="bulkops")
def cli() -> None:
    """Bulk lifecycle operations on AWS CodeArtifact package versions.

    Every operation reads a manifest and validates it whole; without --execute it only
    prints the plan. With --execute it runs chunks of up to 100 versions concurrently
    under an adaptive rate limit, journals every answer to a checkpoint, and can be
    stopped and resumed at any point. Options also come from BULKOPS_* environment
    variables and --config job files (see configs/).
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


def _aws_settings(kw: dict[str, Any]) -> AwsSettings:
    return AwsSettings(
        region=kw["region"],
        profile=kw["profile"],
        endpoint_url=kw["endpoint_url"],
        max_pool_connections=kw["concurrency"] + 8,
        read_timeout=kw["call_timeout"],
    )


def _start_job(kw: dict[str, Any], spec: JobSpec) -> NoReturn:
    """The body shared by the five operation commands."""
    logsetup.configure(level=kw["log_level"], fmt=kw["log_format"])
    checkpoint: Path = kw["checkpoint"] or default_checkpoint(spec, kw["checkpoint_dir"])
    if kw["execute"] and checkpoint.exists():
        if kw["resume_existing"]:
            _resume_same_job(checkpoint, spec, kw)
        _fail(
            f"checkpoint {checkpoint} exists; continue it with `bulkops resume {checkpoint}` "
            "(or add --resume-existing), or choose another --checkpoint",
            EXIT_USAGE,
        )
    try:
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
    settings, aws = _engine_settings(kw), _aws_settings(kw)
    header = header_for(prepared)
    click.echo(f"checkpoint: {checkpoint}", err=True)
    _run_job(
        checkpoint,
        header,
        kw,
        lambda stop, stats: run_new_guarded(
            prepared, header, checkpoint, settings, aws, stop, stats, rails_from(kw)
        ),
    )


def _resume_same_job(checkpoint: Path, spec: JobSpec, kw: dict[str, Any]) -> NoReturn:
    header = _read_header(checkpoint)
    if header.spec != spec:
        _fail(
            f"checkpoint {checkpoint} holds another job ({header.spec.operation.value} on "
            f"{header.spec.domain}/{header.spec.repository}); choose another --checkpoint",
            EXIT_USAGE,
        )
    click.echo(f"checkpoint {checkpoint} exists: resuming it", err=True)
    _resume(checkpoint, header, kw)


def _read_header(checkpoint: Path) -> JournalHeader:
    store = LocalFileStore(checkpoint)
    if not store.exists():
        _fail(f"checkpoint {checkpoint} does not exist", EXIT_USAGE)
    try:
        return read_header(store)
    except BulkopsError as exc:
        _fail(str(exc), exc.exit_code)


def _resume(checkpoint: Path, header: JournalHeader, kw: dict[str, Any]) -> NoReturn:
    settings, aws = _engine_settings(kw), _aws_settings(kw)
    _run_job(
        checkpoint,
        header,
        kw,
        lambda stop, stats: run_resume(checkpoint, settings, aws, stop, stats),
    )


def _print_plan(summary: ManifestSummary, spec: JobSpec, kw: dict[str, Any]) -> None:
    rate = kw["copy_rate"] if spec.operation is Operation.COPY else kw["rate"]
    est = estimate(summary, rate=rate)
    unit = "packages" if not spec.operation.per_version else "versions"
    where = (
        f"{spec.repository!r} → {spec.destination_repository!r}"
        if spec.operation is Operation.COPY
        else repr(spec.repository)
    )
    took = f"{est.seconds:.0f}s" if est.seconds >= 1 else "under a second"
    click.echo(
        f"{spec.operation.value}: {summary.targets} {unit} of {summary.packages} packages "
        f"in {where} ({spec.domain}), {est.calls} calls, about {took} at {rate:g} calls/s"
    )
    if summary.duplicates:
        lines = ", ".join(str(n) for n in summary.duplicate_lines)
        click.echo(
            f"warning: {summary.duplicates} duplicate rows collapsed (lines {lines})", err=True
        )


def _run_job(
    checkpoint: Path,
    header: JournalHeader,
    kw: dict[str, Any],
    start: Callable[[StopSignal, Stats], Awaitable[RunResult]],
) -> NoReturn:
    stop, stats = StopSignal(), Stats()
    structlog.contextvars.bind_contextvars(
        job_id=header.job_id, operation=header.spec.operation.value
    )

    async def main() -> RunResult:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_watch_signals, stop, tg.cancel_scope)
            tg.start_soon(show_progress, stats, kw["progress"], kw["progress_interval"])
            if kw.get("max_duration"):
                tg.start_soon(_stop_after, stop, kw["max_duration"])
            result = await start(stop, stats)
            tg.cancel_scope.cancel()
        return result

    try:
        try:
            result = anyio.run(main, backend="asyncio")
        except BaseExceptionGroup as group:  # a task group wraps what its tasks raised
            raise first_error(group) from None
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
    log.info(
        "run_done",
        stopped=result.stopped,
        calls=stats.calls,
        throttled=stats.throttled,
        retries=stats.retries,
        versions_ok=stats.versions_ok,
        versions_failed=stats.versions_failed,
        chunks_given_up=stats.chunks_given_up,
    )
    if result.fatal is not None:
        click.echo(f"bulkops: error: {result.fatal}", err=True)
        click.echo(f"After fixing the cause, continue with: {resume}", err=True)
        return result.fatal.exit_code
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


def _common(kw: dict[str, Any]) -> dict[str, Any]:
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
    epilog="Example: bulkops delete --domain acme --repository main "
    "--manifest old.csv --expected-status Archived --execute",
)
@_shared_options
@_repository
@_expected
@safe_delete_option()
def delete_cmd(**kw: Any) -> None:
    """Delete package versions (DeletePackageVersions): assets and metadata go for good."""
    if kw["safe_delete"]:
        run_safe_delete(kw, _engine_settings(kw), _aws_settings(kw))
    _start_job(
        kw,
        JobSpec(
            Operation.DELETE,
            repository=kw["repository"],
            expected_status=kw["expected_status"],
            **_common(kw),
        ),
    )


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
    _start_job(
        kw,
        JobSpec(
            Operation.DISPOSE,
            repository=kw["repository"],
            expected_status=kw["expected_status"],
            **_common(kw),
        ),
    )


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
    help="The status to set (Archived and Unlisted can return to Published).",
)
def set_status_cmd(**kw: Any) -> None:
    """Set the status of package versions (UpdatePackageVersionsStatus)."""
    _start_job(
        kw,
        JobSpec(
            Operation.SET_STATUS,
            repository=kw["repository"],
            expected_status=kw["expected_status"],
            target_status=kw["target_status"],
            **_common(kw),
        ),
    )


@cli.command(
    "copy",
    epilog="Example: bulkops copy --domain acme --source-repository main "
    "--destination-repository release --manifest release-2x.csv --execute",
)
@_shared_options
@click.option("--source-repository", required=True, help="Repository to copy from.")
@click.option("--destination-repository", required=True, help="Repository to copy into.")
@click.option("--allow-overwrite", is_flag=True, help="Replace versions that already exist.")
@click.option(
    "--include-from-upstream",
    is_flag=True,
    help="Also copy versions the source holds from its upstream repositories.",
)
def copy_cmd(**kw: Any) -> None:
    """Copy package versions between repositories of a domain (CopyPackageVersions).

    A version already in the destination with the source's revision counts as done.
    """
    if kw["source_repository"] == kw["destination_repository"]:
        _fail("--source-repository and --destination-repository must differ", EXIT_USAGE)
    _start_job(
        kw,
        JobSpec(
            Operation.COPY,
            repository=kw["source_repository"],
            destination_repository=kw["destination_repository"],
            allow_overwrite=kw["allow_overwrite"],
            include_from_upstream=kw["include_from_upstream"],
            **_common(kw),
        ),
    )


@cli.command(
    "delete-packages",
    epilog="Example: bulkops delete-packages --domain acme "
    "--repository main --manifest packages.csv --execute",
)
@_shared_options
@_repository
def delete_packages_cmd(**kw: Any) -> None:
    """Delete whole packages with all their versions (DeletePackage).

    The manifest names packages (format, namespace, package) and no versions. A package
    that is already gone counts as done.
    """
    _start_job(kw, JobSpec(Operation.DELETE_PACKAGES, repository=kw["repository"], **_common(kw)))


@cli.command(
    "resume",
    epilog="Example: bulkops resume "
    "bulkops-checkpoints/delete-20261121T130000Z-1a2b3c.journal --rate 50",
)
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@_config
@_options(*_run_options())
def resume_cmd(checkpoint: Path, **kw: Any) -> None:
    """Continue a job from its checkpoint: only what is not yet done is sent.

    The job and its manifest come from the checkpoint (a changed manifest is refused);
    rate, concurrency and the other run options may differ from the first run.
    """
    logsetup.configure(level=kw["log_level"], fmt=kw["log_format"])
    _resume(checkpoint, _read_header(checkpoint), kw)


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
def report_cmd(checkpoint: Path, fmt: str, failed_only: bool, undo: bool) -> None:
    """Print a job's outcome, merged over every chunk, retry and resume, in the API's shapes."""
    store = LocalFileStore(checkpoint)
    if not store.exists():
        _fail(f"checkpoint {checkpoint} does not exist", EXIT_USAGE)
    try:
        if undo:
            print_undo(checkpoint)
            return
        render(store, fmt, sys.stdout, failed_only=failed_only)  # type: ignore[arg-type]
    except BulkopsError as exc:
        _fail(str(exc), exc.exit_code)


@cli.command("demo", epilog="Example: bulkops demo --packages 200 --versions 30 --no-faults")
@click.option(
    "--packages",
    type=click.IntRange(10, 20_000),
    default=400,
    show_default=True,
    help="Packages to generate, across all eight formats.",
)
@click.option(
    "--versions",
    type=click.IntRange(5, 1000),
    default=30,
    show_default=True,
    help="Versions per package.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of data and faults.")
@click.option(
    "--faults/--no-faults",
    default=True,
    show_default=True,
    help="Inject latency, a few 500s and SKIPPED versions, as a real service has.",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where journals and manifests go (default: bulkops-checkpoints/demo-TIME).",
)
@_options(*_log_options())
def demo_cmd(**kw: Any) -> None:
    """Run a realistic cleanup on an embedded emulator: no AWS account, no network.

    Generates a repository, then archives old versions, disposes archived pre-releases
    and copies a release line to another repository, each as a real bulkops job with
    progress, its report, and a check of the report against the emulator's ground truth.
    """
    from bulkops.demo import default_workdir, run_demo

    logsetup.configure(level=kw["log_level"], fmt=kw["log_format"])
    code = anyio.run(
        lambda: run_demo(
            packages=kw["packages"],
            versions=kw["versions"],
            seed=kw["seed"],
            faults=kw["faults"],
            workdir=kw["workdir"] or default_workdir(),
            progress=kw["progress"],
            progress_interval=kw["progress_interval"],
        ),
        backend="asyncio",
    )
    sys.exit(code)


def main() -> None:
    """Console-script entry point."""
    try:
        cli.main(prog_name="bulkops")
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except UsageError as exc:
        _fail(str(exc), exc.exit_code)
    except Exception as exc:  # the last line of defence: a bug, reported with exit 1
        structlog.get_logger("bulkops").exception("unexpected_error", error=str(exc))
        sys.exit(EXIT_UNEXPECTED)


cli.add_command(build_plan_cmd(_aws_options(), _log_options()))


cli.add_command(emulator_cmd)
