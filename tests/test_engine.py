"""The engine against an in-memory registry that throttles, fails, loses answers and skips."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from bulkops.engine.engine import Engine
from bulkops.engine.limits import RetryPolicy
from bulkops.engine.types import EngineSettings, StopSignal, WorkItem
from bulkops.errors import AccessDenied, Conflict, ServerError, Throttled
from bulkops.model import CANCELLED_IN_FLIGHT, Chunk, ChunkOutcome, JobSpec, Operation, PackageRef
from tests.fakes import FakeRegistry, MemoryJournal

pytestmark = pytest.mark.asyncio

REF_A = PackageRef("npm", "acme", "left-pad")
REF_B = PackageRef("pypi", None, "requests")
FAST = EngineSettings(concurrency=4, rate=10_000, copy_rate=10_000, read_rate=10_000, seed=1)


def spec(op: Operation = Operation.DELETE, **kw: Any) -> JobSpec:
    return JobSpec(operation=op, domain="acme", repository="main", **kw)


def chunks_for(reg: FakeRegistry, ref: PackageRef, n: int, size: int = 100) -> list[Chunk]:
    versions = [f"1.0.{i}" for i in range(n)]
    for v in versions:
        reg.add("main", ref, v)
    return [Chunk.build(ref, tuple(versions[i : i + size])) for i in range(0, n, size)]


class Sleeps:
    """An injected sleep that records delays and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await anyio.lowlevel.checkpoint()


async def run(
    reg: FakeRegistry,
    chunks: list[Chunk],
    job: JobSpec | None = None,
    settings: EngineSettings = FAST,
    **kw: Any,
) -> tuple[Any, MemoryJournal, Sleeps]:
    journal = MemoryJournal()
    sleeps = Sleeps()
    engine = Engine(job or spec(), reg, journal, settings, sleep=sleeps, **kw)
    result = await engine.run(WorkItem(c) for c in chunks)
    return result, journal, sleeps


def outcomes(journal: MemoryJournal) -> list[ChunkOutcome]:
    return [o for o, _ in journal.written if isinstance(o, ChunkOutcome)]


async def test_every_version_of_every_chunk_is_deleted_and_journaled_complete() -> None:
    reg = FakeRegistry()
    chunks = chunks_for(reg, REF_A, 250) + chunks_for(reg, REF_B, 30)
    result, journal, _ = await run(reg, chunks)
    assert reg.versions == {}
    assert result.stats.versions_ok == 280
    assert result.stats.chunks_done == 4
    assert all(complete for _, complete in journal.written)
    assert result.fatal is None and result.stopped is None


async def test_throttled_calls_wait_retry_after_slow_the_scope_and_then_succeed() -> None:
    reg = FakeRegistry(script=[Throttled("slow down", retry_after=2.0)] * 3)
    chunks = chunks_for(reg, REF_A, 100)
    engine_settings = EngineSettings(concurrency=1, rate=50, seed=1)
    journal, sleeps = MemoryJournal(), Sleeps()
    engine = Engine(spec(), reg, journal, engine_settings, sleep=sleeps)
    result = await engine.run([WorkItem(chunks[0])])
    assert result.stats.throttled == 3
    assert [d for d in sleeps.delays if d >= 2.0] == sleeps.delays[:3]
    assert engine.scope.rate < 50  # multiplicative decrease happened
    assert reg.versions == {}


async def test_server_errors_and_conflicts_are_retried_with_backoff() -> None:
    reg = FakeRegistry(script=[ServerError("500"), Conflict("409"), ServerError("500")])
    chunks = chunks_for(reg, REF_A, 10)
    result, _, sleeps = await run(reg, chunks)
    assert result.stats.retries == 3 and len(sleeps.delays) == 3
    assert reg.versions == {}
    assert result.stats.versions_failed == 0


async def test_lost_answer_then_not_found_counts_as_already_absent_not_failure() -> None:
    reg = FakeRegistry(script=["lose"])
    chunks = chunks_for(reg, REF_A, 5)
    result, journal, _ = await run(reg, chunks)
    last = outcomes(journal)[-1]
    assert set(last.settled) == {f"1.0.{i}" for i in range(5)}
    assert set(last.settled.values()) == {"already_absent"}
    assert result.stats.versions_failed == 0 and result.stats.versions_ok == 5


async def test_not_found_on_a_first_attempt_is_a_permanent_failure() -> None:
    reg = FakeRegistry()
    chunk = Chunk.build(REF_A, ("9.9.9",))
    result, journal, _ = await run(reg, [chunk])
    assert result.stats.versions_failed == 1
    assert outcomes(journal)[0].settled == {}
    assert result.stats.errors["NOT_FOUND"] == 1


async def test_not_found_for_a_chunk_an_earlier_run_dispatched_counts_as_already_absent() -> None:
    reg = FakeRegistry()
    chunk = Chunk.build(REF_A, ("9.9.9",))
    journal, sleeps = MemoryJournal(), Sleeps()
    engine = Engine(spec(), reg, journal, FAST, sleep=sleeps)
    result = await engine.run([WorkItem(chunk, dispatched=True)])
    assert outcomes(journal)[0].settled == {"9.9.9": "already_absent"}
    assert result.stats.versions_failed == 0


async def test_not_found_for_a_chunk_no_run_ever_sent_stays_a_permanent_failure() -> None:
    reg = FakeRegistry()
    chunk = Chunk.build(REF_A, ("9.9.9-typo",))
    result, journal, _ = await run(reg, [chunk])  # resumed or not: this chunk was never sent
    assert outcomes(journal)[0].settled == {}
    assert result.stats.versions_failed == 1


async def test_a_dispatch_mark_is_durable_before_the_first_call_of_a_chunk() -> None:
    reg = FakeRegistry()
    chunks = chunks_for(reg, REF_A, 250)
    journal = MemoryJournal()
    seen_marks: list[int] = []
    inner = reg.run_chunk

    async def spy(job: JobSpec, chunk: Chunk) -> Any:
        seen_marks.append(journal.dispatched.count(chunk.id))
        return await inner(job, chunk)

    reg.run_chunk = spy  # type: ignore[method-assign]
    await Engine(spec(), reg, journal, FAST, sleep=Sleeps()).run(WorkItem(c) for c in chunks)
    assert seen_marks == [1, 1, 1]
    assert sorted(journal.dispatched) == sorted(c.id for c in chunks)


async def test_a_lost_status_update_that_comes_back_mismatched_is_done_when_already_applied() -> (
    None
):
    reg = FakeRegistry(script=["lose"])
    chunks = chunks_for(reg, REF_A, 4)
    job = spec(Operation.SET_STATUS, target_status="Archived", expected_status="Published")
    result, journal, _ = await run(reg, chunks, job=job)
    last = outcomes(journal)[-1]
    assert set(last.failed) == {f"1.0.{i}" for i in range(4)}
    assert set(last.settled.values()) == {"already_applied"}
    assert result.stats.versions_failed == 0
    assert reg.calls["DescribePackageVersion"] == 4


async def test_skipped_versions_are_sent_again_until_done() -> None:
    reg = FakeRegistry(script=["skip:7"])
    chunks = chunks_for(reg, REF_A, 20)
    result, journal, _ = await run(reg, chunks)
    first, second = outcomes(journal)
    assert first.retry == tuple(f"1.0.{i}" for i in range(7))
    assert journal.written[0][1] is False and journal.written[1][1] is True
    assert second.chunk_id == first.chunk_id and second.attempt == 2
    assert reg.sent[1][1] == first.retry
    assert reg.versions == {} and result.stats.versions_ok == 20


async def test_a_chunk_that_keeps_failing_is_given_up_and_left_pending() -> None:
    reg = FakeRegistry(fault=lambda n: ServerError("500"))
    chunks = chunks_for(reg, REF_A, 3)
    policy = RetryPolicy(max_attempts=3)
    settings = EngineSettings(concurrency=1, rate=10_000, retry=policy, seed=1)
    result, journal, _ = await run(reg, chunks, settings=settings)
    (outcome, complete), *_ = journal.written
    assert complete is False
    assert outcome.error is not None and outcome.error["errorCode"] == "ServerError"
    assert outcome.retry == chunks[0].versions  # still pending, every one
    assert result.stats.chunks_given_up == 1
    assert sum(reg.calls.values()) == 3


async def test_access_denied_stops_the_run_and_leaves_the_rest_unsent() -> None:
    reg = FakeRegistry(script=[AccessDenied("no")])
    chunks = chunks_for(reg, REF_A, 1000)
    settings = EngineSettings(concurrency=1, rate=10_000, seed=1)
    result, journal, _ = await run(reg, chunks, settings=settings)
    assert isinstance(result.fatal, AccessDenied)
    assert result.stopped == "fatal"
    assert sum(reg.calls.values()) == 1
    assert journal.written == []


async def test_stop_drains_in_flight_chunks_and_takes_no_new_ones() -> None:
    reg = FakeRegistry(delay=0.05)
    chunks = chunks_for(reg, REF_A, 2000)
    stop = StopSignal()
    settings = EngineSettings(concurrency=2, rate=10_000, seed=1, grace_period=5)
    journal = MemoryJournal()

    async def stop_after_first_write() -> None:
        while not journal.written:
            await anyio.sleep(0.01)
        stop.request("SIGTERM")

    engine = Engine(spec(), reg, journal, settings, stop=stop)
    async with anyio.create_task_group() as tg:
        tg.start_soon(stop_after_first_write)
        result = await engine.run(WorkItem(c) for c in chunks)
    assert result.stopped == "SIGTERM"
    sent = len(reg.sent)
    assert 1 <= sent < len(chunks)
    assert len(journal.written) == sent  # every call that was made is journaled
    assert all(complete for _, complete in journal.written)


async def test_versions_skipped_round_after_round_are_left_pending_not_retried_forever() -> None:
    reg = FakeRegistry(fault=lambda n: "skip:100")
    chunks = chunks_for(reg, REF_A, 5)
    settings = EngineSettings(concurrency=1, rate=10_000, retry=RetryPolicy(max_attempts=3), seed=1)
    result, journal, _ = await run(reg, chunks, settings=settings)
    assert sum(reg.calls.values()) == 3
    assert [complete for _, complete in journal.written] == [False, False, False]
    assert result.stats.chunks_given_up == 1


async def test_a_stop_ends_waits_for_a_rate_slot_at_once() -> None:
    reg = FakeRegistry()
    chunks = [c for i in range(8) for c in chunks_for(reg, PackageRef("npm", None, f"p{i}"), 1)]
    stop = StopSignal()
    settings = EngineSettings(concurrency=8, rate=0.5, seed=1, grace_period=30)
    journal = MemoryJournal()
    engine = Engine(spec(), reg, journal, settings, stop=stop)

    async def stop_after_first_call() -> None:
        while not reg.sent:
            await anyio.sleep(0.01)
        stop.request("SIGTERM")

    with anyio.fail_after(5):  # the next slot is 2 s away and the grace period 30 s
        async with anyio.create_task_group() as tg:
            tg.start_soon(stop_after_first_call)
            result = await engine.run(WorkItem(c) for c in chunks)
    assert result.stopped == "SIGTERM"
    assert len(reg.sent) == 1
    assert journal.dispatched == [reg.sent[0][0]]  # only the chunk really sent is marked


async def test_a_lost_update_whose_version_changed_revision_is_not_counted_done() -> None:
    reg = FakeRegistry(script=["lose"])
    revision = reg.add("main", REF_A, "1.0.0")
    chunk = Chunk.build(REF_A, ("1.0.0",), {"1.0.0": revision})
    job = spec(Operation.SET_STATUS, target_status="Archived", expected_status="Published")
    reg.script.append(None)
    # between the lost answer and the retry someone republishes it (new revision) archived
    inner = reg.run_chunk

    async def republish_then(job_: JobSpec, c: Chunk) -> Any:
        try:
            return await inner(job_, c)
        finally:
            reg.versions[("main", REF_A, "1.0.0")] = ["Archived", "rev-NEW"]

    reg.run_chunk = republish_then  # type: ignore[method-assign]
    result, journal, _ = await run(reg, [chunk], job=job)
    assert outcomes(journal)[-1].settled == {}
    assert result.stats.versions_failed == 1


async def test_a_refused_status_check_keeps_the_answer_as_a_failure() -> None:
    reg = FakeRegistry(script=["lose"])
    chunks = chunks_for(reg, REF_A, 3)

    async def refused(*_: Any) -> None:
        raise AccessDenied("no DescribePackageVersion")

    reg.describe_version = refused  # type: ignore[method-assign]
    job = spec(Operation.SET_STATUS, target_status="Archived", expected_status="Published")
    result, journal, _ = await run(reg, chunks, job=job)
    assert result.fatal is None
    assert outcomes(journal)[-1].permanent == ["1.0.0", "1.0.1", "1.0.2"]


async def test_concurrency_bounds_calls_in_flight() -> None:
    reg = FakeRegistry(delay=0.01)
    chunks = [c for i in range(20) for c in chunks_for(reg, PackageRef("npm", None, f"p{i}"), 3)]
    settings = EngineSettings(concurrency=5, rate=10_000, seed=1)
    await run(reg, chunks, settings=settings)
    assert 1 < reg.max_in_flight <= 5


async def test_copy_already_exists_at_the_same_revision_counts_as_done() -> None:
    reg = FakeRegistry()
    chunks = chunks_for(reg, REF_A, 3)
    reg.versions[("release", REF_A, "1.0.0")] = list(reg.versions[("main", REF_A, "1.0.0")])
    reg.versions[("release", REF_A, "1.0.1")] = ["Published", "another-revision"]
    job = spec(Operation.COPY, destination_repository="release")
    result, journal, _ = await run(reg, chunks, job=job)
    (outcome,) = outcomes(journal)
    assert outcome.settled == {"1.0.0": "identical_copy"}
    assert set(outcome.failed) == {"1.0.0", "1.0.1"}
    assert result.stats.versions_failed == 1  # 1.0.1 differs: permanent
    assert result.stats.versions_ok == 2


async def test_delete_packages_treats_an_absent_package_as_done() -> None:
    reg = FakeRegistry()
    chunks_for(reg, REF_A, 3)
    job = spec(Operation.DELETE_PACKAGES)
    items = [Chunk.build(REF_A, ()), Chunk.build(REF_B, ())]
    result, journal, _ = await run(reg, items, job=job)
    done = outcomes(journal)
    assert all(o.package_done for o in done)
    assert {o.ref: o.deleted_package is not None for o in done} == {REF_A: True, REF_B: False}
    assert reg.versions == {} and result.stats.versions_ok == 2


async def test_outcomes_share_an_fsync_within_the_commit_window() -> None:
    reg = FakeRegistry()
    chunks = chunks_for(reg, REF_A, 2000, size=10)
    job = spec(Operation.SET_STATUS, target_status="Archived")  # no dispatch marks
    settings = EngineSettings(concurrency=8, rate=10_000, seed=1, commit_window=0.05)
    result, journal, _ = await run(reg, chunks, job, settings)
    assert result.stats.chunks_done == len(outcomes(journal)) == 200
    assert journal.writes < 50  # without the window: about one write per chunk


async def test_a_dispatch_mark_does_not_wait_for_the_commit_window() -> None:
    reg = FakeRegistry()
    chunks = chunks_for(reg, REF_A, 300, size=10)
    settings = EngineSettings(concurrency=4, rate=10_000, seed=1, commit_window=30.0)
    with anyio.fail_after(10):  # 30 chunks, each held a 30 s window: minutes
        result, journal, _ = await run(reg, chunks, spec(), settings)
    assert result.stats.chunks_done == 30
    assert sorted(journal.dispatched) == sorted(c.id for c in chunks)


async def test_a_bug_in_a_call_still_lets_every_finished_outcome_reach_the_journal() -> None:
    reg = FakeRegistry()
    chunks = chunks_for(reg, REF_A, 200, size=10)
    inner = reg.run_chunk
    calls = 0

    async def buggy(job: JobSpec, chunk: Chunk) -> Any:
        nonlocal calls
        calls += 1
        if calls == 12:
            raise RuntimeError("a bug, not an AWS error")
        return await inner(job, chunk)

    reg.run_chunk = buggy  # type: ignore[method-assign]
    # a long window: the outcomes wait in the stream when the bug strikes
    settings = EngineSettings(concurrency=1, rate=10_000, seed=1, commit_window=30.0)
    journal = MemoryJournal()
    engine = Engine(spec(Operation.SET_STATUS, target_status="Archived"), reg, journal, settings)
    with anyio.fail_after(10), pytest.raises(BaseExceptionGroup) as caught:
        await engine.run(WorkItem(c) for c in chunks)
    assert caught.group_contains(RuntimeError, match="a bug")
    assert len(outcomes(journal)) == 11  # every call answered before the bug, written


async def test_calls_cancelled_on_the_wire_are_journaled_as_may_have_been_applied() -> None:
    reg = FakeRegistry(delay=3600)  # answers that never come before the cancel
    chunks = chunks_for(reg, REF_A, 1000)
    journal = MemoryJournal()
    settings = EngineSettings(concurrency=3, rate=10_000, seed=1)
    engine = Engine(spec(Operation.SET_STATUS, target_status="Archived"), reg, journal, settings)
    async with anyio.create_task_group() as tg:
        tg.start_soon(engine.run, [WorkItem(c) for c in chunks])
        await anyio.wait_all_tasks_blocked()
        assert reg.in_flight == 3
        tg.cancel_scope.cancel()  # what a second SIGTERM does
    written = outcomes(journal)
    assert len(written) == 3  # the three on the wire; the seven others were never sent
    assert {o.chunk_id for o in written} == {c.id for c in chunks[:3]}
    by_id = {c.id: c for c in chunks}
    for o in written:
        chunk = by_id[o.chunk_id]
        assert o.error is not None and o.error["errorCode"] == CANCELLED_IN_FLIGHT
        assert o.retry == chunk.versions and not o.successful
    assert not any(complete for _, complete in journal.written)
