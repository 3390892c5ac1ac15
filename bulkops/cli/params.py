"""Parameter types and options the CLI's commands share: where a job's checkpoint is."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bulkops.errors import UsageError
from bulkops.journal.location import Checkpoint, as_checkpoint

if TYPE_CHECKING:
    from bulkops.aws.s3lease import LeaseTimes

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]
SKEW = 5.0  # how far another host's clock may run ahead of this one's


class CheckpointParam(click.ParamType):  # type: ignore[type-arg]
    """A checkpoint: a local journal file (or directory, for --checkpoint-dir), or the
    s3://BUCKET/PREFIX of a job kept in S3, checked against S3's naming rules here."""

    name = "PATH|s3://BUCKET/PREFIX"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, Path):
            return value
        try:
            where: Checkpoint = as_checkpoint(str(value))
            if isinstance(where, str):
                from bulkops.aws.s3url import parse_s3_url  # only an S3 checkpoint needs it

                parse_s3_url(where)
        except UsageError as exc:
            self.fail(str(exc), param, ctx)
        return where


CHECKPOINT = CheckpointParam()


def checkpoint_options(default_dir: Path) -> list[Decorator]:
    """Where a new job's checkpoint goes, and how an S3 one is encrypted."""
    return [
        click.option(
            "--checkpoint",
            type=CHECKPOINT,
            help="Journal file of this job, or s3://BUCKET/PREFIX to keep it in S3 (default: "
            "a new one in --checkpoint-dir).",
        ),
        click.option(
            "--checkpoint-dir",
            type=CHECKPOINT,
            default=default_dir,
            show_default=True,
            envvar="BULKOPS_CHECKPOINT_DIR",
            help="Where new checkpoints are created: a directory or an s3:// prefix.",
        ),
        click.option(
            "--checkpoint-kms-key",
            envvar="BULKOPS_CHECKPOINT_KMS_KEY",
            help="KMS key for an S3 checkpoint's objects (SSE-KMS; default: the bucket's "
            "own encryption).",
        ),
    ]


def shard_options() -> list[Decorator]:
    """--shards and --shard-index: one job run by N workers sharing an S3 checkpoint."""
    return [
        click.option(
            "--shards",
            type=int,
            help="Split the job into N shards, one per worker, all run with the same "
            "command (default: AWS_BATCH_JOB_ARRAY_SIZE); needs --checkpoint s3://..., e.g. 4.",
        ),
        click.option(
            "--shard-index",
            type=int,
            help="This worker's shard, 0 to N-1 (default: JOB_COMPLETION_INDEX, else "
            "AWS_BATCH_JOB_ARRAY_INDEX), e.g. 0.",
        ),
    ]


lease_option = click.option(
    "--lease-ttl",
    type=click.FloatRange(min=10.0),
    default=120.0,
    show_default=True,
    envvar="BULKOPS_LEASE_TTL",
    help="Seconds an S3 checkpoint's lease lasts unrenewed: after a crash, another run "
    "takes the job over this long after the last renewal. Must exceed --call-timeout "
    "by 10 s or more.",
)


def lease_times(kw: dict[str, Any]) -> LeaseTimes:
    """The S3 lease's times: renewed four times per TTL, and given up before its end by
    the longest call in flight (--call-timeout) plus clock skew."""
    from bulkops.aws.s3lease import LeaseTimes

    ttl, margin = float(kw["lease_ttl"]), float(kw["call_timeout"])
    renew = min(15.0, ttl / 4)
    if renew + margin + SKEW >= ttl:
        raise UsageError(
            f"--lease-ttl {ttl:g} is too short for --call-timeout {margin:g}: a run gives its "
            f"lease up {margin:g} s + {SKEW:g} s of clock skew before it ends; use "
            f"--lease-ttl {margin + SKEW + renew + 1:.0f} or more"
        )
    return LeaseTimes(ttl=ttl, renew_every=renew, margin=margin, skew=SKEW)
