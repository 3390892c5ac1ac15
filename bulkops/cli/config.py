"""Job files: TOML validated with pydantic, handed to click as the defaults under flags and env.

Precedence is click's own: command-line flags > `BULKOPS_*` environment variables >
`--config FILE` > built-in defaults. A job file has top-level job keys and three tables:

    operation = "delete"          # the command this file is for
    domain = "acme"
    repository = "main"
    manifest = "old-versions.csv"  # relative paths are relative to this file
    [run]   concurrency ("auto" or N), max_concurrency, rate, copy_rate, grace_period, ...
    [log]   format, level, progress_interval
    [aws]   region, profile, endpoint_url
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bulkops.errors import UsageError
from bulkops.model import STATUSES, TARGET_STATUSES
from bulkops.tomlfile import load_model

StatusName = Literal["Published", "Unfinished", "Unlisted", "Archived", "Disposed", "Deleted"]
TargetName = Literal["Published", "Unlisted", "Archived"]
assert set(StatusName.__args__) == set(STATUSES)  # type: ignore[attr-defined]
assert set(TargetName.__args__) == set(TARGET_STATUSES)  # type: ignore[attr-defined]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunSection(_Table):
    """How a run behaves (rates, concurrency, retries, stopping)."""

    concurrency: Literal["auto"] | Annotated[int, Field(ge=1, le=1024)] | None = None
    max_concurrency: int | None = Field(None, ge=1, le=1024)
    rate: float | None = Field(None, gt=0)
    copy_rate: float | None = Field(None, gt=0)
    chunk_size: int | None = Field(None, ge=1, le=100)
    grace_period: float | None = Field(None, ge=0)
    max_duration: float | None = Field(None, gt=0)
    call_timeout: float | None = Field(None, gt=0)
    max_attempts: int | None = Field(None, ge=1, le=100)
    checkpoint_dir: str | None = None


class LogSection(_Table):
    format: Literal["auto", "console", "json"] | None = None
    level: Literal["debug", "info", "warning", "error"] | None = None
    progress_interval: float | None = Field(None, gt=0)
    progress: Literal["auto", "bar", "log", "off"] | None = None


class AwsSection(_Table):
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None


class JobFile(_Table):
    """A whole job file; every key optional so a file may hold only the shared knobs."""

    operation: (
        Literal["delete", "dispose", "set-status", "copy", "delete-packages", "resume"] | None
    ) = None
    domain: str | None = None
    domain_owner: str | None = Field(None, pattern=r"^[0-9]{12}$")
    repository: str | None = None
    source_repository: str | None = None
    destination_repository: str | None = None
    manifest: str | None = None
    manifest_format: Literal["jsonl", "csv"] | None = None
    checkpoint: str | None = None
    execute: bool | None = None
    resume_existing: bool | None = None
    expected_status: StatusName | None = None
    target_status: TargetName | None = None
    allow_overwrite: bool | None = None
    include_from_upstream: bool | None = None
    run: RunSection = Field(default_factory=RunSection)
    log: LogSection = Field(default_factory=LogSection)
    aws: AwsSection = Field(default_factory=AwsSection)


_PATH_KEYS = ("manifest", "checkpoint")


def load_job_file(path: Path) -> JobFile:
    """Read and validate a job file; errors name the file, the key and the reason."""
    return load_model(path, JobFile, "config")


def default_map(job: JobFile, base: Path, command: str) -> dict[str, Any]:
    """The job file as click's default_map for `command` (option names with underscores)."""
    if job.operation is not None and job.operation != command:
        raise UsageError(f"config is for `bulkops {job.operation}`, not `bulkops {command}`")
    flat: dict[str, Any] = {}
    top = job.model_dump(exclude={"operation", "run", "log", "aws"}, exclude_none=True)
    for key, value in top.items():
        if key in _PATH_KEYS and value != "-":
            value = str((base / value) if not Path(value).is_absolute() else Path(value))
        flat[key] = value
    flat.update(job.run.model_dump(exclude_none=True))
    flat.update(job.aws.model_dump(exclude_none=True))
    for key, value in job.log.model_dump(exclude_none=True).items():
        flat[key if key.startswith("progress") else f"log_{key}"] = value
    if "checkpoint_dir" in flat:
        flat["checkpoint_dir"] = str(base / flat["checkpoint_dir"])
    return flat
