"""A job split into shards: which worker is which, and which chunks each one owns.

Every worker of a sharded job runs the same command; its index comes from `--shard-index`,
else the batch engine's environment (Kubernetes Indexed Jobs set `JOB_COMPLETION_INDEX`,
AWS Batch array jobs `AWS_BATCH_JOB_ARRAY_INDEX` and `AWS_BATCH_JOB_ARRAY_SIZE`).

    shard = resolve_shard(shards=None, index=None, env=os.environ, remote=True)
    shard.owns(i)          # chunk i of the job's chunk list (0-based) is this shard's

Chunk i belongs to shard i mod N. The chunk list is the manifest validated and chunked
once, its bytes proven by their sha256, so every worker sees the same list in the same
order: the assignment is deterministic and disjoint, and each shard gets ⌊C/N⌋ or
⌈C/N⌉ of the C chunks (every chunk but a package's last holds the same number of
versions), balanced whichever packages are large. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bulkops.errors import UsageError

__all__ = ["INDEX_VARIABLES", "SIZE_VARIABLE", "Shard", "resolve_shard", "shard_rate"]

INDEX_VARIABLES = ("JOB_COMPLETION_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX")
SIZE_VARIABLE = "AWS_BATCH_JOB_ARRAY_SIZE"
MIN_SHARE = 0.5  # calls/s: below this a shard's limiter (and botocore's floor) cannot pace


@dataclass(frozen=True, slots=True)
class Shard:
    """Worker `index` of `count`; shard K of N keeps its journal at `PREFIX/shard-K-of-N`."""

    index: int
    count: int

    @property
    def name(self) -> str:
        return f"shard-{self.index}-of-{self.count}"

    def owns(self, position: int) -> bool:
        """Whether chunk `position` (0-based, in chunk-list order) is this shard's."""
        return position % self.count == self.index


def _number(text: str, source: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise UsageError(f"{source} is {text!r}, not a whole number") from None


def resolve_shard(
    shards: int | None, index: int | None, env: Mapping[str, str], *, remote: bool
) -> Shard | None:
    """The shard this worker runs, or None for an unsharded job; UsageError (exit 2) for
    anything inconsistent, before any call."""
    shards_from = "--shards"
    if shards is None and env.get(SIZE_VARIABLE):
        shards, shards_from = _number(env[SIZE_VARIABLE], SIZE_VARIABLE), SIZE_VARIABLE
    index_from = "--shard-index"
    if index is None:
        for name in INDEX_VARIABLES:
            if env.get(name):
                index, index_from = _number(env[name], name), name
                break
    if shards is None:
        if index is not None:
            raise UsageError(
                f"{index_from} {index} names a shard, but the job has no --shards N: "
                "pass --shards (the same N to every worker)"
            )
        return None
    if shards < 1:
        raise UsageError(f"{shards_from} {shards}: a job has at least 1 shard")
    if index is None:
        raise UsageError(
            f"{shards_from} {shards} needs this worker's index: --shard-index K, or "
            f"{' or '.join(INDEX_VARIABLES)} in the environment"
        )
    if not 0 <= index < shards:
        raise UsageError(
            f"{index_from} {index} is out of range for {shards} shards (0 to {shards - 1})"
        )
    if not remote:
        raise UsageError(
            f"{shards_from} {shards} needs a checkpoint every worker shares: "
            "--checkpoint s3://BUCKET/PREFIX"
        )
    return Shard(index, shards)


def shard_rate(rate: float, shard: Shard, what: str) -> float:
    """A shard's share of a scope's rate (rate ÷ N); refused when too small to pace."""
    share = rate / shard.count
    if share < MIN_SHARE:
        most = int(rate / MIN_SHARE)
        raise UsageError(
            f"{shard.count} shards would give each {share:g} {what} calls/s of {rate:g}: "
            f"under {MIN_SHARE:g}/s a shard cannot pace its calls; use at most {most} shards "
            "or raise the rate"
        )
    return share
