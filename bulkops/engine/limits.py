"""Pacing of each quota scope with adaptive backoff, and retry delays.

An `AdaptiveRate` keeps one scope (writes, Copy, reads) at or below its ceiling:

- every call waits for `acquire()`: calls leave one at a time, in arrival order, 1/rate
  apart, so they are evenly spaced at the current rate instead of bursting; a change of
  rate applies to the very next slot, whoever is already waiting; an aiolimiter leaky
  bucket holds the configured ceiling underneath over windows of 50 ms, whatever the
  adaptive rate does (aiolimiter's rate is fixed when it is built, so it cannot be the
  adaptive pacer itself: one limiter per rate let old limiters' waiters run beside new);
- a throttled call cuts the rate to a little under what the service accepted since the
  last cut (over the last window at most; by `decrease` when nothing was accepted): once
  per `cooldown`, because the calls already in flight at the old rate will be throttled
  too, unless enough calls were accepted since the cut to show it was not deep enough;
- successes raise the rate again, quickly back to the rate last known to work, slowly
  around it, and then faster the longer no throttle comes (so a quota given back by
  another tenant is found within seconds), never above the ceiling.
"""

from __future__ import annotations

import bisect
import math
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
from aiolimiter import AsyncLimiter

# DescribePackageVersion calls/s for every reader (engine checks, discovery): half the
# account's 800/s read quota, which every build pulling packages shares
READ_RATE = 400.0

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RateTuning:
    """Constants of the adaptive rate; defaults are what the benchmarks were run with."""

    decrease: float = 0.7  # the cut when nothing was accepted in the window
    floor: float = 0.2  # calls per second the rate never goes below
    cooldown: float = 1.0  # seconds after a cut during which further throttles do not cut again
    recut_after: int = 10  # ... unless this many calls were accepted since the cut
    window: float = 2.0  # seconds of history behind the accepted-rate measurement
    margin: float = 0.95  # a cut aims this far under the measured accepted rate
    probe: float = 0.001  # share of the ceiling added per second, probing near the last good rate
    recover: float = 0.5  # share of the gap to the last good rate closed per second below it
    probe_doubling: float = 0.5  # calm seconds after which the probe step doubles
    probe_max_doublings: float = 12  # the probe step grows at most 2**this fold


class AdaptiveRate:
    """The pace of one quota scope, adapting to throttles under a fixed ceiling."""

    def __init__(
        self,
        name: str,
        ceiling: float,
        *,
        tuning: RateTuning | None = None,
        clock: Clock = anyio.current_time,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        if ceiling <= 0:
            raise ValueError(f"rate ceiling for {name} must be positive, got {ceiling}")
        self.name = name
        self.ceiling = ceiling
        self.tuning = tuning or RateTuning()
        self._clock = clock
        self._sleep = sleep
        self._rate = ceiling
        self._good = ceiling  # the last rate the service was seen to accept
        self._last_cut = -math.inf
        self._first: float | None = None  # when the first answer came
        self._calm_since: float | None = None
        self._accepted: deque[float] = deque()
        self._turn: anyio.Lock | None = None  # born in the loop, on the first acquire
        self._ceiling_guard: AsyncLimiter | None = None
        self._slot = -math.inf  # when the last slot was due
        self.throttles = 0
        self.cuts = 0

    @property
    def rate(self) -> float:
        """The current target rate in calls per second."""
        return self._rate

    async def acquire_if_due(self) -> bool:
        """Take the next slot if it can be had without waiting; False if one must wait.

        The fast path, for a scope running below its pace: the slot is due, nobody waits
        for one and the ceiling has room, so it is taken without a trip through the loop.
        """
        if self._turn is None:
            self._turn = anyio.Lock()
            # a window of 50 ms (at least one call): a capacity of exactly one call
            # loses every timer's lateness and costs throughput at the ceiling
            burst = max(1.0, self.ceiling * 0.05)
            self._ceiling_guard = AsyncLimiter(burst, burst / self.ceiling)  # loop-bound
        guard = self._ceiling_guard
        assert guard is not None
        if self._turn.locked() or not guard.has_capacity() or self._take_slot():
            return False
        await guard.acquire()  # it has capacity: returns without suspending
        return True

    async def acquire(self) -> None:
        """Wait for this scope's next call slot: 1/rate after the last, first come first served."""
        if await self.acquire_if_due():
            return
        guard = self._ceiling_guard
        assert self._turn is not None and guard is not None
        # One pacer for the scope's whole life: swapping in a new limiter per rate let the
        # waiters of each old one go on at its pace beside the new one (several times the rate).
        async with self._turn:  # anyio's Lock is fair: slots go out in arrival order
            while wait := self._take_slot():
                await self._sleep(wait)  # the rate may change meanwhile: look again
            # The configured ceiling, held by aiolimiter whatever the adaptive rate does;
            # at a rate under the ceiling the slot above has already waited long enough.
            await guard.acquire()

    def _take_slot(self) -> float:
        """Take the next slot if it is due (1/rate after the last one) and return 0; else
        return the seconds until it is."""
        interval = 1.0 / self._rate
        due = self._slot + interval
        now = self._clock()
        if now < due:
            return due - now
        # A late wake-up keeps to the grid rather than losing its lag on every call;
        # after an idle spell (or the first call) the grid starts afresh from now.
        self._slot = due if now - due < interval else now
        return 0.0

    def accepted_rate(self) -> float:
        """Calls per second the service accepted since the last cut, over the window at most.

        After a cut the service is known to be full, so what it accepted since is our
        share; the window's older calls may have spent a burst. Early in a run the history
        counts as at least `cooldown` long, so a first burst is not taken for the rate.
        """
        now = self._clock()
        self._expire(now)
        t = self.tuning
        first = now if self._first is None else self._first
        since = max(now - t.window, self._last_cut, first)
        span = now - since
        if since == first:
            span = max(span, t.cooldown)
        if span <= 0:
            return 0.0
        return self._count_since(since) / span

    def on_success(self) -> None:
        """Record an accepted call and let the rate recover."""
        now = self._clock()
        if self._first is None:
            self._first = now
        self._accepted.append(now)
        self._expire(now)
        if self._calm_since is None:
            self._calm_since = now
        t = self.tuning
        per_call = 1.0 / max(self._rate, t.floor)  # seconds this call stands for at this rate
        if self._rate < self._good * t.margin:
            step = (self._good - self._rate) * t.recover * per_call
        else:
            calm = now - self._calm_since
            # Probe gently near the last good rate, then double the probe every few calm seconds.
            doublings = min(calm / t.probe_doubling, t.probe_max_doublings)
            step = self.ceiling * t.probe * per_call * 2**doublings
        self._rate = min(self.ceiling, self._rate + step)

    def on_throttle(self) -> None:
        """Record a throttled call; cut the rate once per cooldown, or sooner when the last
        cut has proved too shallow."""
        now = self._clock()
        if self._first is None:
            self._first = now
        self.throttles += 1
        self._calm_since = None
        t = self.tuning
        if now - self._last_cut < t.cooldown:
            self._expire(now)
            if self._count_since(self._last_cut) < t.recut_after:
                return
        accepted = self.accepted_rate()
        self._last_cut = now
        self.cuts += 1
        if accepted > 0:
            # What the service accepted while we sent too much is the best estimate of our share.
            target = min(accepted, self._rate) * t.margin
        else:
            target = self._rate * t.decrease
        self._good = target
        self._rate = max(min(t.floor, self.ceiling), target)  # the floor never lifts a low ceiling

    def _count_since(self, since: float) -> int:
        """Accepted calls recorded at or after `since` (within the window)."""
        q = self._accepted
        return len(q) - bisect.bisect_left(q, since)

    def _expire(self, now: float) -> None:
        edge = now - self.tuning.window
        q = self._accepted
        while q and q[0] < edge:
            q.popleft()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long one chunk is retried after transient failures."""

    max_attempts: int = 8  # calls per chunk for 5xx, network errors and timeouts
    max_conflicts: int = 4  # calls per chunk that may end in 409 before it is reported
    base_delay: float = 0.25
    max_delay: float = 20.0
    budget: float = 600.0  # seconds one chunk may spend retrying, throttles included

    def delay(self, failures: int, rng: random.Random) -> float:
        """Full-jitter exponential backoff after the given number of consecutive failures."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** max(0, failures - 1))
        return rng.uniform(0, ceiling)
