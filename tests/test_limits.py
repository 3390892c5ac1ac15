"""Adaptive rate and retry delays, on an injected clock."""

from __future__ import annotations

import itertools
import random

import anyio
import anyio.lowlevel
import pytest

from bulkops.engine.limits import AdaptiveRate, RateTuning, RetryPolicy


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def feed(rate: AdaptiveRate, clock: Clock, seconds: float, per_second: float) -> None:
    """Record accepted calls evenly over `seconds` at `per_second`."""
    step = 1.0 / per_second
    end = clock.now + seconds
    while clock.now < end:
        clock.now += step
        rate.on_success()


def test_rate_never_exceeds_its_ceiling_however_long_calls_succeed() -> None:
    clock = Clock()
    rate = AdaptiveRate("write", 100, clock=clock)
    feed(rate, clock, 60, 100)
    assert rate.rate == pytest.approx(100)


def test_a_burst_of_throttles_cuts_the_rate_once_per_cooldown() -> None:
    clock = Clock()
    rate = AdaptiveRate("write", 100, clock=clock)
    feed(rate, clock, 2, 100)
    for _ in range(20):  # everything in flight comes back throttled at once
        rate.on_throttle()
    assert rate.cuts == 1 and rate.throttles == 20
    assert rate.rate == pytest.approx(100 * RateTuning().margin, rel=0.02)


def simulate(rate: AdaptiveRate, clock: Clock, seconds: float, quota: float) -> tuple[float, float]:
    """Send at the adaptive rate into a token bucket of one second's quota.

    Returns (accepted calls, throttled calls).
    """
    tokens, accepted_total, throttled_total = quota, 0.0, 0.0
    for _ in range(int(seconds * 10)):
        tokens = min(quota, tokens + quota / 10)
        want = rate.rate / 10
        accepted = min(want, tokens)
        tokens -= accepted
        if accepted:
            feed(rate, clock, 0.1, accepted * 10)
        else:
            clock.now += 0.1
        if want > accepted:
            rate.on_throttle()
        accepted_total += accepted
        throttled_total += want - accepted
    return accepted_total, throttled_total


def test_rate_settles_under_a_smaller_quota_using_most_of_it_with_few_throttles() -> None:
    clock = Clock()
    rate = AdaptiveRate("write", 100, clock=clock)
    simulate(rate, clock, 10, 60)  # the quota drops from 100 to 60: adapt
    accepted, throttled = simulate(rate, clock, 60, 60)
    assert accepted >= 0.95 * 60 * 60
    assert throttled <= 0.03 * (accepted + throttled)


def seconds_to_recover(cuts: int) -> float:
    """After `cuts` throttles at 60/s of a 100/s ceiling, seconds until the rate is back at 90."""
    clock = Clock()
    rate = AdaptiveRate("write", 100, clock=clock)
    for _ in range(cuts):
        feed(rate, clock, 1.0, 60)
        rate.on_throttle()
    start = clock.now
    while rate.rate < 90:
        feed(rate, clock, 0.1, max(rate.rate, 1))
    return clock.now - start


def test_rate_recovers_to_ninety_percent_within_ten_seconds_of_the_quota_returning() -> None:
    assert seconds_to_recover(cuts=10) <= 10


def test_rate_never_falls_below_its_floor() -> None:
    clock = Clock()
    rate = AdaptiveRate("copy", 5, clock=clock)
    for _ in range(50):
        clock.now += 2
        rate.on_throttle()
    assert rate.rate == pytest.approx(RateTuning().floor)


def test_ceiling_must_be_positive() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        AdaptiveRate("write", 0)


def test_full_jitter_backoff_stays_within_its_exponential_bound() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=8)
    rng = random.Random(3)
    for failures, bound in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (9, 8.0)]:
        delays = [policy.delay(failures, rng) for _ in range(200)]
        assert all(0 <= d <= bound for d in delays)
        assert max(delays) > bound * 0.8  # jitter spans the range, not a constant


@pytest.mark.asyncio
async def test_concurrent_callers_get_slots_no_faster_than_the_rate_while_it_changes() -> None:
    # Every success moves the rate; callers already waiting must still leave 1/rate apart
    # (one limiter per rate once let each old limiter's waiters go on at its own pace).
    clock = Clock()

    async def sleep(seconds: float) -> None:
        clock.now += seconds
        await anyio.lowlevel.checkpoint()

    rate = AdaptiveRate("write", 100, clock=clock, sleep=sleep)
    feed(rate, clock, 2, 100)
    rate.on_throttle()  # down to ~97/s, and probing back up on every success from here
    grants: list[tuple[float, float]] = []

    async def caller() -> None:
        while len(grants) < 400:
            await rate.acquire()
            grants.append((clock.now, rate.rate))
            rate.on_success()
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        for _ in range(16):
            tg.start_soon(caller)
    gaps = [(t - prev, 1 / r) for (prev, _), (t, r) in itertools.pairwise(grants)]
    assert all(gap >= interval - 1e-9 for gap, interval in gaps)
    assert len({r for _, r in grants}) > 100  # the rate did change all along


@pytest.mark.asyncio
async def test_a_cut_applies_to_the_slot_a_caller_is_already_waiting_for() -> None:
    clock = Clock()

    async def sleep(seconds: float) -> None:
        clock.now += seconds
        await anyio.lowlevel.checkpoint()

    rate = AdaptiveRate("write", 10, clock=clock, sleep=sleep, tuning=RateTuning(decrease=0.5))
    await rate.acquire()  # the first slot is free
    started = clock.now

    async def throttled_meanwhile() -> None:
        await anyio.lowlevel.checkpoint()
        rate.on_throttle()  # nothing accepted yet: the rate halves to 5/s

    async with anyio.create_task_group() as tg:
        tg.start_soon(throttled_meanwhile)
        await rate.acquire()
    assert clock.now - started == pytest.approx(1 / 5)


def test_a_cut_that_proves_too_shallow_is_cut_again_before_the_cooldown_ends() -> None:
    # The quota drops from 100 to 40: the first cut still trusts two seconds at 100/s.
    clock = Clock()
    rate = AdaptiveRate("write", 100, clock=clock)
    feed(rate, clock, 2, 100)
    rate.on_throttle()
    assert rate.cuts == 1 and rate.rate == pytest.approx(95, rel=0.02)
    rate.on_throttle()  # in flight at the old rate: nothing accepted since, no second cut
    assert rate.cuts == 1
    feed(rate, clock, 0.5, 40)  # 20 accepted since the cut, still throttled
    rate.on_throttle()
    assert rate.cuts == 2
    assert rate.rate == pytest.approx(40 * RateTuning().margin, rel=0.05)


def test_a_first_throttle_does_not_take_the_opening_burst_for_the_rate() -> None:
    # A full bucket lets 20 calls through in 0.2 s at 100/s; the quota is 20/s, not 100/s.
    clock = Clock()
    rate = AdaptiveRate("write", 100, clock=clock)
    feed(rate, clock, 0.2, 100)
    rate.on_throttle()
    assert rate.rate <= 20


def test_from_a_cold_start_under_a_fifth_of_the_ceiling_few_calls_are_throttled() -> None:
    clock = Clock()
    rate = AdaptiveRate("write", 100, clock=clock)
    accepted, throttled = simulate(rate, clock, 60, 20)
    assert accepted >= 0.95 * 20 * 60
    assert throttled <= 0.03 * (accepted + throttled)


def test_a_returned_quota_is_found_within_five_seconds_of_the_last_throttle() -> None:
    # 60/s of a 100/s ceiling, throttled just now: the quota comes back at once.
    assert seconds_to_recover(cuts=5) <= 5


def test_a_ceiling_below_the_floor_is_never_exceeded_after_a_throttle() -> None:
    clock = Clock()
    rate = AdaptiveRate("copy", 0.1, clock=clock)
    for _ in range(5):
        clock.now += 5
        rate.on_throttle()
        assert rate.rate <= 0.1


def test_jobs_discovery_and_the_plan_command_read_at_one_default_rate_half_the_quota() -> None:
    from click.testing import CliRunner

    from bulkops.cli import cli
    from bulkops.engine.engine import EngineSettings
    from bulkops.engine.limits import READ_RATE
    from bulkops.selection.discover import DiscoverySettings

    assert READ_RATE == 800 / 2  # CODEARTIFACT.md: 800 read calls/s per account, shared
    assert EngineSettings().read_rate == DiscoverySettings().read_rate == READ_RATE
    help_text = " ".join(CliRunner().invoke(cli, ["plan", "--help"]).output.split())
    assert f"[default: {READ_RATE};" in help_text
