"""How many calls may be in flight: a limit found from the measured latency, or pinned.

The rate limiter owns the rate; concurrency only has to carry it. By Little's law the
calls in flight must be at least rate × latency, so the limit follows

    need = rate × p90 latency × headroom       (clamped to floor..max)

and grows towards it (doubling per update until load was first seen, then by √limit).
It shrinks when latency rises with load rather than with distance, the signal of Vegas
and Gradient limiters: the fastest of the last calls is compared with the no-load
latency (the fastest call of the last minute). Distance and jitter leave that ratio
near 1, however slow the answers; queueing in the service raises even the fastest
answers, and above `tolerance` the limit is cut by the ratio (at most by half). Still
that slow at the floor, the service got slower for everyone: that becomes the no-load
latency, and the limit grows again.

A `Gate` holds the limit: a semaphore whose size can change while calls hold it. The
engine keeps a fixed pool of `max_concurrency` workers; a call takes the gate before its
rate slot and gives it back when its answer comes, so backoff sleeps hold no slot.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio
import structlog

log = structlog.get_logger("bulkops.engine.concurrency")
Clock = Callable[[], float]
T = TypeVar("T")


class Gate:
    """An async semaphore whose limit may change at any time; loop-bound (born in the run)."""

    def __init__(self, limit: int) -> None:
        self._limit = max(1, limit)
        self._held = 0
        self._waiters: deque[anyio.Event] = deque()

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def held(self) -> int:
        return self._held

    def set_limit(self, limit: int) -> None:
        """Change the limit; a lower one takes effect as calls give their slots back."""
        self._limit = max(1, limit)
        self._wake()

    def try_acquire(self) -> bool:
        if self._held < self._limit and not self._waiters:
            self._held += 1
            return True
        return False

    async def acquire(self) -> None:
        """Wait for a slot, first come first served."""
        if self.try_acquire():
            return
        event = anyio.Event()
        self._waiters.append(event)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():  # handed a slot, then cancelled: pass it on
                self.release()
            else:
                self._waiters.remove(event)
            raise

    def release(self) -> None:
        self._held -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._held < self._limit:
            self._held += 1  # taken on the waiter's behalf: nobody can jump in between
            self._waiters.popleft().set()


@dataclass(frozen=True, slots=True)
class ConcurrencyTuning:
    """Constants of the concurrency limit; defaults are what the benchmarks were run with."""

    start: int = 16  # the limit before the first answers (the old fixed default)
    floor: int = 4  # the limit never goes below this (nor above the max)
    headroom: float = 1.5  # calls in flight per call the rate needs at p90 latency
    percentile: float = 0.9
    samples: int = 256  # latest answers behind the percentile and the mean
    recent: int = 20  # latest answers whose fastest is compared with the no-load latency
    base_window: float = 60.0  # seconds behind the no-load latency (a windowed minimum)
    tolerance: float = 2.0  # the fastest recent answer this many times the no-load one: load
    update_every: float = 0.25  # seconds between changes of the limit
    limited_after: int = 64  # answers seen before a run is said to be limited by concurrency


class Controller:
    """Sets a `Gate`'s limit from the latencies of answers and the paced rate.

    `pinned` keeps the limit where it is (`--concurrency N`); latencies are still
    measured, so progress can say when the pinned limit is what holds the run back.
    """

    def __init__(
        self,
        rate: Callable[[], float],
        *,
        maximum: int,
        pinned: bool = False,
        tuning: ConcurrencyTuning | None = None,
        clock: Clock = anyio.current_time,
        gate: Gate | None = None,
    ) -> None:
        self.gate = gate = gate or Gate(maximum)
        self.maximum = max(1, maximum)
        self.pinned = pinned
        self.tuning = t = tuning or ConcurrencyTuning()
        self._rate = rate
        self._clock = clock
        self._floor = min(t.floor, self.maximum)
        if not pinned:
            gate.set_limit(min(self.maximum, max(self._floor, t.start)))
        self._latencies: deque[float] = deque(maxlen=t.samples)
        self._base: deque[tuple[float, float]] = deque()  # (time, latency), rising latencies
        self._next_update = -math.inf
        self._grow_until: float = math.inf  # doubling ends at the first sign of load
        self.answers = 0
        self.cuts = 0
        self.limited: str | None = None  # said once: concurrency, not the rate, holds the run

    @property
    def limit(self) -> int:
        return self.gate.limit

    @property
    def latency(self) -> float:
        """Mean seconds per call over the latest answers (0 before the first)."""
        q = self._latencies
        return sum(q) / len(q) if q else 0.0

    @property
    def base_latency(self) -> float:
        """The no-load latency: the fastest answer of the base window (0 before the first)."""
        return self._base[0][1] if self._base else 0.0

    async def timed(self, call: Awaitable[T]) -> T:
        """Await one call and observe its latency when it answers."""
        started = self._clock()
        result = await call
        self.observe(self._clock() - started)
        return result

    def observe(self, latency: float) -> None:
        """Record one answer's latency; the limit follows every `update_every` seconds."""
        now = self._clock()
        self.answers += 1
        self._latencies.append(latency)
        base = self._base
        while base and base[-1][1] >= latency:  # a monotonic deque: its head is the minimum
            base.pop()
        base.append((now, latency))
        edge = now - self.tuning.base_window
        while base[0][0] < edge:
            base.popleft()
        if now >= self._next_update:
            self._next_update = now + self.tuning.update_every
            self._update()
        elif self.answers == self.tuning.limited_after:
            self._check_limited()

    def _update(self) -> None:
        t = self.tuning
        if not self.pinned:
            self.gate.set_limit(self._next_limit())
        self._check_limited()
        log.debug(
            "concurrency",
            limit=self.limit,
            latency_ms=round(1000 * self.latency, 1),
            base_ms=round(1000 * self.base_latency, 1),
            rate=round(self._rate(), 1),
            samples=min(self.answers, t.samples),
        )

    def _next_limit(self) -> int:
        t = self.tuning
        limit = self.limit
        recent = list(self._latencies)[-t.recent :]
        ratio = min(recent) / self.base_latency if self.base_latency > 0 else 1.0
        if ratio > t.tolerance and limit <= self._floor:
            # slow even with the fewest calls in flight: the service got slower, not
            # loaded by us; that is its no-load latency now, and the limit may grow again
            self._base.clear()
            self._base.append((self._clock(), min(recent)))
            self._grow_until = math.inf
            return limit
        if ratio > t.tolerance:  # latency rose with load: fewer calls in flight
            self.cuts += 1
            self._grow_until = limit
            return max(self._floor, math.floor(limit * max(0.5, t.tolerance / ratio)))
        ordered = sorted(self._latencies)
        p = ordered[min(len(ordered) - 1, int(t.percentile * len(ordered)))]
        need = math.ceil(self._rate() * p * t.headroom)
        target = min(self.maximum, max(self._floor, need))
        if target > limit:  # grow: doubling until load was seen, then by √limit
            step = limit if limit < self._grow_until else max(1, math.isqrt(limit))
            return min(target, limit + step)
        # shrink gently when the rate or the latency fell: a quarter of the gap per update
        return limit - math.ceil((limit - target) / 4)

    def _check_limited(self) -> None:
        """Note (once) when the limit, pinned or at its maximum, is what holds the rate back."""
        if self.limited is not None or self.answers < self.tuning.limited_after:
            return
        limit, latency, rate = self.limit, self.latency, self._rate()
        if not (self.pinned or limit >= self.maximum) or latency <= 0:
            return
        carried = limit / latency
        if carried < 0.95 * rate:
            self.limited = limited_words(limit, latency, carried, rate)


def limited_words(limit: int, latency: float, carried: float, rate: float) -> str:
    """ "limited by concurrency 16 at 610 ms per call: 26 calls/s of 100"."""
    return (
        f"limited by concurrency {limit} at {1000 * latency:.0f} ms per call: "
        f"{carried:.0f} calls/s of {rate:g}"
    )


def carried_rate(rate: float, concurrency: int, latency: float | None) -> float:
    """The calls per second `concurrency` calls in flight carry at `latency`, at most `rate`."""
    if latency is None or latency <= 0:
        return rate
    return min(rate, concurrency / latency)
