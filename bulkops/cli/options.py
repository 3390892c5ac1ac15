"""The options commands share (job, run, AWS, log, --config) and the settings they build."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bulkops import log as logsetup
from bulkops.aws.session import AwsSettings
from bulkops.cli.concurrency import concurrency_options
from bulkops.cli.config import default_map, load_job_file
from bulkops.cli.exits import fail
from bulkops.cli.params import checkpoint_options, lease_option, shard_options
from bulkops.engine.limits import RetryPolicy
from bulkops.engine.types import EngineSettings
from bulkops.errors import EXIT_USAGE, BulkopsError
from bulkops.jobs.prepare import CHECKPOINT_DIR
from bulkops.model import MAX_CHUNK_SIZE

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

_ENGINE = EngineSettings()  # the one place run defaults live; the options show them


def with_options(*options: Decorator) -> Decorator:
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
        fail(str(exc), exc.exit_code)
    known = {p.name for p in ctx.command.params}
    if unknown := sorted(set(defaults) - known):
        fail(f"config {value}: {', '.join(unknown)} do not apply to `bulkops {command}`", 2)
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


config_option = click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    is_eager=True,
    expose_value=False,
    callback=_load_config,
    envvar="BULKOPS_CONFIG",
    help="TOML job file (see configs/); flags and BULKOPS_* variables override it.",
)


VERSIONS_MANIFEST = (
    "JSONL or CSV file of versions (fields: format, namespace, package, version, "
    "revision); `-` reads stdin."
)
PACKAGES_MANIFEST = (
    "JSONL or CSV file of packages (fields: format, namespace, package; no versions); "
    "`-` reads stdin."
)

output_option = click.option(
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    envvar=_env("output"),
    help="json: the dry run's estimate or the run's closing summary as one JSON document "
    "on stdout, for scripts.",
)


def job_options(manifest_help: str = VERSIONS_MANIFEST) -> list[Decorator]:
    """What a new job takes besides its operation's own options."""
    return [
        config_option,
        click.option("--domain", required=True, help="CodeArtifact domain name."),
        click.option(
            "--domain-owner",
            envvar=_env("domain_owner"),
            help="12-digit account id that owns the domain (default: the caller's).",
        ),
        click.option("--manifest", required=True, help=manifest_help),
        click.option(
            "--manifest-format",
            type=click.Choice(["jsonl", "csv"]),
            help="Manifest format when the extension does not tell.",
        ),
        *checkpoint_options(CHECKPOINT_DIR),
        *shard_options(),
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
            default=MAX_CHUNK_SIZE,
            show_default=True,
            envvar=_env("chunk_size"),
            help="Versions per call (the API takes at most 100).",
        ),
        output_option,
    ]


def run_options() -> list[Decorator]:
    """How a run behaves; a resume may change every one of them."""
    return [
        *concurrency_options(_ENGINE.max_concurrency),
        lease_option,
        click.option(
            "--rate",
            type=click.FloatRange(min=0.1),
            default=_ENGINE.rate,
            show_default=True,
            envvar=_env("rate"),
            help="Ceiling for write calls per second (Delete, Dispose, UpdateStatus, "
            "DeletePackage); the account's quota is 100/s, shared with everything else.",
        ),
        click.option(
            "--copy-rate",
            type=click.FloatRange(min=0.1),
            default=_ENGINE.copy_rate,
            show_default=True,
            envvar=_env("copy_rate"),
            help="Ceiling for CopyPackageVersions calls per second (quota 5/s).",
        ),
        click.option(
            "--grace-period",
            type=click.FloatRange(min=0),
            default=_ENGINE.grace_period,
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
            default=_ENGINE.call_timeout,
            show_default=True,
            envvar=_env("call_timeout"),
            help="Seconds one call may take before it is retried.",
        ),
        click.option(
            "--max-attempts",
            type=click.IntRange(1, 100),
            default=_ENGINE.retry.max_attempts,
            show_default=True,
            envvar=_env("max_attempts"),
            help="Calls per chunk for server errors, timeouts and dropped connections.",
        ),
        *aws_options(),
        *log_options(),
    ]


def aws_options() -> list[Decorator]:
    """Where calls go: AWS Region, profile and endpoint."""
    return [
        click.option("--region", envvar=_env("region"), help="AWS Region (default: AWS config)."),
        click.option("--profile", envvar=_env("profile"), help="AWS profile name."),
        click.option(
            "--endpoint-url",
            envvar=_env("endpoint_url"),
            help="CodeArtifact endpoint (default: AWS_ENDPOINT_URL_CODEARTIFACT, else AWS's).",
        ),
    ]


def log_options() -> list[Decorator]:
    """How a command reports: log format and level, progress bar or events."""
    return [
        click.option(
            "--quiet",
            "-q",
            is_flag=True,
            help="Only warnings and errors, and no progress (--log-level warning --progress off).",
        ),
        click.option(
            "--verbose",
            "-v",
            is_flag=True,
            help="Debug log events too, botocore's included (--log-level debug).",
        ),
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


def setup_logs(kw: dict[str, Any]) -> None:
    """Set up this command's logs from its log options; -q and -v win over --log-level."""
    if kw.get("quiet") and kw.get("verbose"):
        fail("--quiet and --verbose exclude each other", EXIT_USAGE)
    if kw.get("verbose"):
        kw["log_level"] = "debug"
    if kw.get("quiet"):
        kw["log_level"], kw["progress"] = "warning", "off"
    logsetup.configure(level=kw["log_level"], fmt=kw["log_format"])


def engine_settings(kw: dict[str, Any]) -> EngineSettings:
    """The engine's settings from a command's run options."""
    return EngineSettings(
        concurrency=None if kw["concurrency"] == "auto" else kw["concurrency"],
        max_concurrency=kw["max_concurrency"],
        rate=kw["rate"],
        copy_rate=kw["copy_rate"],
        call_timeout=kw["call_timeout"],
        grace_period=kw["grace_period"],
        retry=RetryPolicy(max_attempts=kw["max_attempts"]),
    )


def aws_settings(kw: dict[str, Any]) -> AwsSettings:
    """The AWS client's settings from a command's run options."""
    return AwsSettings(
        region=kw["region"],
        profile=kw["profile"],
        endpoint_url=kw["endpoint_url"],
        max_pool_connections=engine_settings(kw).most_in_flight + 8,
        read_timeout=kw["call_timeout"],
    )
