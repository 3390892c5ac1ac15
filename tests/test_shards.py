"""Shard resolution and assignment: pure, no I/O."""

from __future__ import annotations

import pytest

from bulkops.errors import UsageError
from bulkops.jobs.shards import Shard, resolve_shard, shard_rate


def test_no_shards_anywhere_is_an_unsharded_job() -> None:
    assert resolve_shard(None, None, {}, remote=False) is None


def test_the_option_wins_over_the_environment() -> None:
    env = {"JOB_COMPLETION_INDEX": "3", "AWS_BATCH_JOB_ARRAY_SIZE": "8"}
    assert resolve_shard(4, 1, env, remote=True) == Shard(1, 4)


def test_kubernetes_index_comes_before_batch_index() -> None:
    env = {"JOB_COMPLETION_INDEX": "2", "AWS_BATCH_JOB_ARRAY_INDEX": "1"}
    assert resolve_shard(4, None, env, remote=True) == Shard(2, 4)


def test_batch_array_gives_both_size_and_index() -> None:
    env = {"AWS_BATCH_JOB_ARRAY_INDEX": "5", "AWS_BATCH_JOB_ARRAY_SIZE": "10"}
    assert resolve_shard(None, None, env, remote=True) == Shard(5, 10)


@pytest.mark.parametrize(
    ("shards", "index", "env", "remote", "says"),
    [
        (4, 4, {}, True, "out of range"),
        (4, -1, {}, True, "out of range"),
        (None, None, {"AWS_BATCH_JOB_ARRAY_SIZE": "2", "JOB_COMPLETION_INDEX": "2"}, True, "out"),
        (None, 1, {}, True, "no --shards"),
        (None, None, {"JOB_COMPLETION_INDEX": "0"}, True, "JOB_COMPLETION_INDEX 0 names"),
        (4, None, {}, True, "needs this worker's index"),
        (4, 0, {}, False, "s3://"),
        (0, 0, {}, True, "at least 1"),
        (None, None, {"AWS_BATCH_JOB_ARRAY_SIZE": "x", "JOB_COMPLETION_INDEX": "0"}, True, "x"),
    ],
)
def test_inconsistent_shards_are_refused(
    shards: int | None, index: int | None, env: dict[str, str], remote: bool, says: str
) -> None:
    with pytest.raises(UsageError, match=says) as caught:
        resolve_shard(shards, index, env, remote=remote)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(("chunks", "n"), [(0, 3), (1, 4), (7, 3), (1000, 4), (10, 1)])
def test_assignment_is_disjoint_complete_and_balanced(chunks: int, n: int) -> None:
    owned = [[i for i in range(chunks) if Shard(k, n).owns(i)] for k in range(n)]
    assert sorted(i for shard in owned for i in shard) == list(range(chunks))
    sizes = [len(shard) for shard in owned]
    assert max(sizes) - min(sizes) <= 1


def test_more_shards_than_chunks_leaves_some_empty() -> None:
    assert [Shard(k, 4).owns(0) for k in range(4)] == [True, False, False, False]
    assert not any(Shard(3, 4).owns(i) for i in range(3))


def test_rate_is_shared_and_too_small_a_share_is_refused() -> None:
    assert shard_rate(100.0, Shard(0, 4), "write") == 25.0
    assert shard_rate(5.0, Shard(0, 10), "copy") == 0.5
    with pytest.raises(UsageError, match="at most 10 shards"):
        shard_rate(5.0, Shard(0, 11), "copy")


def test_shard_names_its_journal() -> None:
    assert Shard(2, 4).name == "shard-2-of-4"
