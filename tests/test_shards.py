"""Shard resolution and assignment (pure), and a sharded job's objects on the memory store."""

from __future__ import annotations

import pytest

from bulkops.errors import UsageError
from bulkops.jobs.sharded import Descriptor, claim_job, read_descriptor, shard_header
from bulkops.jobs.shards import Shard, resolve_shard, shard_rate
from bulkops.journal.chunklist import CHUNKS, ChunkListWriter, read_chunks
from bulkops.journal.journal import JournalHeader
from bulkops.journal.memory import MemoryStore
from bulkops.model import JobSpec, Operation, PackageRef


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


# The job's objects, on the in-memory store: the first claim wins, a disagreeing one is refused.

SPEC = JobSpec(Operation.DISPOSE, "acme", "main")


def _descriptor(sha: str = "a" * 64, shards: int = 4, spec: JobSpec = SPEC) -> Descriptor:
    return Descriptor(shards, spec, sha, chunks=10, versions=900, packages=3)


@pytest.mark.asyncio
async def test_the_first_claim_stores_the_job_and_an_equal_one_passes() -> None:
    store = MemoryStore()
    await claim_job(store, _descriptor())
    await claim_job(store, _descriptor())
    assert await read_descriptor(store) == _descriptor()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("other", "says"),
    [
        (_descriptor(sha="b" * 64), "another manifest"),
        (_descriptor(shards=3), "--shards 4, not 3"),
        (_descriptor(spec=JobSpec(Operation.DELETE, "acme", "main")), "another job"),
    ],
)
async def test_a_claim_that_disagrees_is_refused_with_exit_2(other: Descriptor, says: str) -> None:
    store = MemoryStore()
    await claim_job(store, _descriptor())
    with pytest.raises(UsageError, match=says) as caught:
        await claim_job(store, other)
    assert caught.value.exit_code == 2
    assert await read_descriptor(store) == _descriptor()  # the first one stays


@pytest.mark.asyncio
async def test_shard_chunk_lists_split_the_job_list_disjointly() -> None:
    job = MemoryStore()
    writer = ChunkListWriter(job)
    refs = [PackageRef("npm", None, f"p{i}") for i in range(3)]
    for n in range(7):
        writer.add(refs[n % 3], [f"1.0.{n}", f"2.0.{n}"], {})
    listing = await writer.commit()
    header = JournalHeader.new(SPEC, chunks=7, chunk_list=listing.file,
                               chunk_list_sha256=listing.sha256)  # fmt: skip
    seen: list[str] = []
    for k in range(3):
        own = MemoryStore()
        got = await shard_header(job, own, Shard(k, 3), header)
        assert got.chunks == len(range(k, 7, 3)) and got.versions == 2 * got.chunks
        assert got.chunk_list_sha256 is not None
        seen += [v for c in [c async for c in read_chunks(own, CHUNKS, got.chunk_list_sha256)]
                 for v in c.versions]  # fmt: skip
    assert sorted(seen) == sorted(f"{m}.0.{n}" for n in range(7) for m in (1, 2))
