"""The concurrency limit: the gate, and the controller under a fake clock and latencies."""

from __future__ import annotations

import anyio
import pytest
from structlog.testing import capture_logs

from bulkops.engine.concurrency import ConcurrencyTuning, Controller, Gate, carried_rate
from bulkops.engine.engine import Engine
from bulkops.engine.types import EngineSettings, Stats, WorkItem
from bulkops.jobs.progress import Meter, Once, bar_fields
from bulkops.model import Chunk, JobSpec, Operation, PackageRef
from tests.fakes import FakeRegistry, MemoryJournal


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def controller(
    rate: float, *, maximum: int = 256, pinned: bool = False, start: int | None = None
) -> tuple[Controller, Clock]:
    clock = Clock()
    tuning = ConcurrencyTuning() if start is None else ConcurrencyTuning(start=start)
    gate = Gate(start or 16)
    return Controller(
        lambda: rate, maximum=maximum, pinned=pinned, tuning=tuning, clock=clock, gate=gate
    ), clock


def feed(c: Controller, clock: Clock, latency: object, seconds: float, per_s: float) -> None:
    """Answers at `per_s` a second for `seconds`; `latency(limit, i)` gives each one's."""
    for i in range(int(seconds * per_s)):
        clock.now += 1 / per_s
        c.observe(latency(c.limit, i))  # type: ignore[operator]


def jittered(low: float, high: float) -> object:
    span = high - low
    return lambda _limit, i: low + span * ((i * 37) % 101) / 100  # spread evenly, repeatably


def test_at_high_latency_the_limit_rises_to_carry_the_rate() -> None:
    c, clock = controller(100)
    feed(c, clock, jittered(0.4, 0.8), seconds=5, per_s=25)  # starved: 16 / 0.6 s
    # p90 ≈ 0.76 s: 100/s needs ~76 in flight, and a half again as headroom
    assert 100 <= c.limit <= 130
    assert c.limit / c.latency >= 100  # what it carries at the mean latency
    assert c.cuts == 0  # jitter and distance are not load


def test_at_low_latency_the_limit_stays_small_but_at_least_the_floor() -> None:
    c, clock = controller(100)
    feed(c, clock, jittered(0.025, 0.075), seconds=5, per_s=100)
    assert 4 <= c.limit <= 16
    c, clock = controller(5)  # Copy at 5/s: 5 × 0.07 s needs less than one
    feed(c, clock, jittered(0.025, 0.075), seconds=5, per_s=5)
    assert c.limit == 4


def test_the_limit_never_passes_the_maximum() -> None:
    c, clock = controller(100, maximum=40)
    feed(c, clock, jittered(1.0, 2.0), seconds=10, per_s=30)
    assert c.limit == 40
    assert c.limited is not None and c.limited.startswith("limited by concurrency 40 at 1")
    assert c.limited.endswith(" ms per call: 27 calls/s of 100")


def test_latency_that_rises_with_load_shrinks_the_limit() -> None:
    c, clock = controller(1000)
    # the service queues: every call in flight adds 10 ms to a 20 ms answer; the calls in
    # flight climb from one as a run starts
    feed(c, clock, lambda limit, i: 0.02 + 0.01 * min(limit, i + 1), seconds=10, per_s=200)
    assert c.cuts > 0
    assert c.limit <= 6  # where the latency is about twice the no-load one
    assert c.limited is None  # the service, not the limit, holds this run back


def test_a_service_slower_at_any_load_is_taken_for_distance_and_the_limit_grows() -> None:
    c, clock = controller(200)
    feed(c, clock, lambda limit, i: 0.02 + 0.01 * min(limit, i + 1), seconds=5, per_s=200)
    low = c.limit
    feed(c, clock, lambda _limit, _i: 0.25, seconds=5, per_s=100)  # slower, whatever we send
    assert c.limit > 4 * low  # 200/s × 0.25 s × 1.5 = 75


def test_a_pinned_limit_stays_and_says_once_that_it_limits() -> None:
    c, clock = controller(100, pinned=True, start=16)
    feed(c, clock, jittered(0.4, 0.8), seconds=10, per_s=25)
    assert c.limit == 16
    assert c.limited is not None
    assert c.limited == "limited by concurrency 16 at 599 ms per call: 27 calls/s of 100"


def test_a_pinned_limit_that_carries_the_rate_is_not_said_to_limit() -> None:
    c, clock = controller(100, pinned=True, start=16)
    feed(c, clock, jittered(0.025, 0.075), seconds=10, per_s=100)
    assert c.limit == 16 and c.limited is None


def test_carried_rate_is_the_concurrency_over_the_latency_at_most_the_rate() -> None:
    assert carried_rate(100, 16, 0.61) == pytest.approx(26.2, abs=0.1)
    assert carried_rate(100, 16, 0.05) == 100
    assert carried_rate(100, 16, None) == 100


@pytest.mark.asyncio
async def test_the_gate_follows_a_changed_limit() -> None:
    gate = Gate(2)
    held: list[int] = []
    release = anyio.Event()

    async def call(i: int) -> None:
        await gate.acquire()
        held.append(i)
        await release.wait()
        gate.release()

    async with anyio.create_task_group() as tg:
        for i in range(6):
            tg.start_soon(call, i)
        await anyio.wait_all_tasks_blocked()
        assert held == [0, 1]  # the limit holds
        gate.set_limit(5)
        await anyio.wait_all_tasks_blocked()
        assert held == [0, 1, 2, 3, 4] and gate.held == 5  # a higher limit lets waiters in
        gate.set_limit(1)
        release.set()
    assert gate.held == 0 and sorted(held) == list(range(6))


@pytest.mark.asyncio
async def test_a_cancelled_waiter_gives_up_its_place() -> None:
    gate = Gate(1)
    assert gate.try_acquire()
    with anyio.move_on_after(0.01):
        await gate.acquire()
    assert gate.held == 1 and not gate.try_acquire()
    gate.release()
    assert gate.held == 0 and gate.try_acquire()


# ---- the engine against the in-memory registry, with injected latency -------------------

REF = PackageRef("npm", None, "left-pad")


def one_version_chunks(reg: FakeRegistry, n: int) -> list[Chunk]:
    for i in range(n):
        reg.add("main", REF, f"1.0.{i}")
    return [Chunk.build(REF, (f"1.0.{i}",)) for i in range(n)]


async def run_engine(reg: FakeRegistry, n: int, settings: EngineSettings) -> Engine:
    job = JobSpec(Operation.SET_STATUS, "acme", "main", target_status="Archived")
    engine = Engine(job, reg, MemoryJournal(), settings)
    result = await engine.run(WorkItem(c) for c in one_version_chunks(reg, n))
    assert result.stats.chunks_done == n and result.stopped is None
    return engine


@pytest.mark.asyncio
async def test_engine_auto_concurrency_rises_past_16_to_carry_the_rate_at_high_latency() -> None:
    reg = FakeRegistry(delay=0.1)  # 16 in flight carry 160 calls/s of 1000
    settings = EngineSettings(rate=1000, max_concurrency=64, seed=1, commit_window=0)
    engine = await run_engine(reg, 400, settings)
    assert 16 < reg.max_in_flight <= 64  # rose, and never passed the maximum
    assert engine.flight.limit == 64


@pytest.mark.asyncio
async def test_engine_auto_concurrency_falls_when_latency_grows_with_the_calls_in_flight() -> None:
    reg = FakeRegistry(load_delay=lambda in_flight: 0.005 + 0.005 * in_flight)
    settings = EngineSettings(rate=1000, max_concurrency=64, seed=1, commit_window=0)
    engine = await run_engine(reg, 200, settings)
    assert engine.flight.cuts > 0
    assert engine.flight.limit <= 8  # from 16 at the start, towards twice the no-load latency


@pytest.mark.asyncio
async def test_engine_pinned_concurrency_stays_pinned_at_high_latency() -> None:
    reg = FakeRegistry(delay=0.05)
    settings = EngineSettings(concurrency=8, rate=1000, seed=1, commit_window=0)
    engine = await run_engine(reg, 80, settings)
    assert reg.max_in_flight == 8 and engine.flight.limit == 8
    assert engine.flight.limited is not None  # 8 / 0.05 s = 160 calls/s of 1000
    assert engine.flight.limited.endswith("calls/s of 1000")


@pytest.mark.asyncio
async def test_progress_shows_the_limit_and_latency_and_says_once_when_concurrency_limits() -> None:
    c, clock = controller(100, pinned=True, start=16)
    stats = Stats(versions_total=100, flight=c)
    once = Once()
    with capture_logs() as logs:
        feed(c, clock, jittered(0.4, 0.8), seconds=1, per_s=25)  # not enough answers yet
        once(Meter(stats).snapshot())
        feed(c, clock, jittered(0.4, 0.8), seconds=9, per_s=25)
        for _ in range(3):
            snap = Meter(stats).snapshot()
            once(snap)
    said = [e for e in logs if e["event"] == "concurrency_limited"]
    assert [e["message"] for e in said] == [c.limited]
    assert snap.to_log()["concurrency"] == 16 and 550 < snap.to_log()["latency_ms"] < 650
    assert bar_fields(snap)["detail"].startswith("in flight ≤16 at 5")


class PausedJournal(MemoryJournal):
    """A journal that stores at most one batch every `pause` seconds, as S3 does (0.5 s)."""

    def __init__(self, pause: float) -> None:
        super().__init__()
        self.pause = pause
        self.most_marks = 0  # the most dispatch marks one write carried

    async def write(self, outcomes: list[tuple[object, bool]], dispatched: list[str] = ()) -> None:  # type: ignore[assignment,override]
        await anyio.sleep(self.pause)
        self.most_marks = max(self.most_marks, len(dispatched))
        await super().write(outcomes, dispatched)


@pytest.mark.asyncio
async def test_chunks_waiting_for_their_dispatch_mark_hold_no_slot_of_the_concurrency_limit() -> (
    None
):
    # A dispose needs each chunk's mark durable before its first send. With a journal that
    # stores a batch every 0.1 s, the marks of more chunks than the limit (sized from the
    # fast answers) must share one write, or the run crawls at limit / pause calls/s.
    reg = FakeRegistry(delay=0.005)
    for i in range(120):
        reg.add("main", REF, f"1.0.{i}")
    chunks = [Chunk.build(REF, (f"1.0.{i}",)) for i in range(120)]
    journal = PausedJournal(0.1)
    settings = EngineSettings(rate=400, max_concurrency=64, seed=1, commit_window=0)
    job = JobSpec(Operation.DISPOSE, "acme", "main")
    engine = Engine(job, reg, journal, settings)
    result = await engine.run(WorkItem(c) for c in chunks)
    assert result.stats.chunks_done == 120 and result.stopped is None
    # the rate (400/s) paces the sends, so the marks of dozens of chunks share each write:
    # a few writes, not one per limit's worth of chunks (39 writes when marks held slots)
    assert journal.writes <= 15 and journal.most_marks > engine.flight.limit
    assert sorted(journal.dispatched) == sorted(c.id for c in chunks)  # each marked, once
