"""One API call with the engine's retries: paced, timed out, retried, and interruptible by a stop.

Throttles slow the call's quota scope and wait at least `retryAfterSeconds`; 5xx, 409,
timeouts and dropped connections back off with full jitter within an attempt and time
budget. Waiting (for a rate slot, or between tries) ends at once when a stop comes: only
a call already on the wire gets the grace period.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

import anyio
import structlog

from bulkops.engine.concurrency import Gate
from bulkops.engine.limits import AdaptiveRate, RetryPolicy
from bulkops.errors import CallFailed, CallTimeout, Conflict, Throttled

MARK_HOLD = 0.05  # seconds a dispatch mark is awaited holding a slot of the gate
log = structlog.get_logger("bulkops.engine.retry")
T = TypeVar("T")


class Abandoned(Exception):
    """A stop came before the call was sent; what it was for stays pending."""


class GaveUp(Exception):
    """A call exhausted its retry budget (or a stop ended its retries); carries the last failure."""

    def __init__(self, last: CallFailed) -> None:
        super().__init__(str(last))
        self.last = last


class CallRunner:
    """Makes calls for the engine's workers; `interrupt()` ends every wait at once."""

    def __init__(
        self,
        policy: RetryPolicy,
        call_timeout: float,
        *,
        stopping: Callable[[], bool],
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        seed: int | None = None,
        on_call: Callable[[], None] = lambda: None,
        on_retry: Callable[[CallFailed], None] = lambda _: None,
    ) -> None:
        self.policy = policy
        self.call_timeout = call_timeout
        self._stopping = stopping
        self._sleep = sleep
        self._rng = random.Random(seed)
        self._on_call = on_call
        self._on_retry = on_retry
        self._waits: set[anyio.CancelScope] = set()

    def interrupt(self) -> None:
        """End every wait in progress (rate slots, backoff sleeps): a stop was requested."""
        for scope in list(self._waits):
            scope.cancel()

    async def wait(self, waiter: Callable[[], Awaitable[None]]) -> bool:
        """Await `waiter()` unless a stop comes first; False when a stop cut it short."""
        if self._stopping():
            return False
        with anyio.CancelScope() as scope:
            self._waits.add(scope)
            try:
                await waiter()
            finally:
                self._waits.discard(scope)
        return not scope.cancelled_caught

    async def backoff(self, failures: int) -> bool:
        """Sleep a full-jitter delay after `failures` failures; False when a stop cut it short."""
        delay = self.policy.delay(failures, self._rng)
        return await self.wait(partial(self._sleep, delay))

    async def call(
        self,
        scope: AdaptiveRate,
        fn: Callable[[], Awaitable[T]],
        on_transient: Callable[[], None] = lambda: None,
        before_send: Callable[[], Awaitable[anyio.Event | None]] | None = None,
        gate: Gate | None = None,
    ) -> T:
        """`fn()` under `scope`'s pace, retried as the policy allows.

        `on_transient` is told of every 5xx, timeout or dropped connection: such a call
        may have acted before its answer was lost. `before_send` runs once, after the
        first rate slot is won and right before the first send, and may return an event
        to wait for (a dispatch mark becoming durable): once it has run, the call goes out
        whatever comes (a stop then waits for it like any call in flight).
        `gate`, when given, is held from before the rate slot until the answer: the calls
        in flight follow its limit, and neither backoff sleeps nor `before_send` hold a slot.
        """
        policy = self.policy
        deadline = anyio.current_time() + policy.budget
        failures = conflicts = 0
        while True:
            if self._stopping():
                raise Abandoned
            if gate is not None and not gate.try_acquire() and not await self.wait(gate.acquire):
                raise Abandoned
            held = gate is not None
            try:
                # a slot that is due is taken at once; only a real wait can be cut short
                if not await scope.acquire_if_due() and not await self.wait(scope.acquire):
                    raise Abandoned
                if before_send is not None:
                    durable = await before_send()  # the chunk's dispatch mark, on its way
                    before_send = None
                    if durable is not None and not durable.is_set():
                        with anyio.move_on_after(MARK_HOLD):  # a local fsync: keep the slot
                            await durable.wait()
                    if durable is not None and not durable.is_set():
                        # a journal that group-commits slowly (S3, every 0.5 s): waiting for
                        # it holds no slot, so the calls in flight still carry the rate; the
                        # slot is taken back, not cut short by a stop, to send the call
                        if gate is not None:
                            gate.release()
                            held = False
                        await durable.wait()
                        if gate is not None:
                            await gate.acquire()
                            held = True
                self._on_call()
                with anyio.fail_after(self.call_timeout):
                    result = await fn()
            except TimeoutError as exc:
                failure: CallFailed = CallTimeout(f"no answer within {self.call_timeout}s")
                failure.__cause__ = exc
            except CallFailed as exc:
                failure = exc
            else:
                scope.on_success()
                return result
            finally:
                if gate is not None and held:
                    gate.release()
            if isinstance(failure, Throttled):
                scope.on_throttle()
                delay = max(failure.retry_after or 0.0, policy.delay(1, self._rng))
            else:
                on_transient()
                failures += 1
                conflicts += isinstance(failure, Conflict)
                if failures >= policy.max_attempts or conflicts >= policy.max_conflicts:
                    raise GaveUp(failure)
                delay = policy.delay(failures, self._rng)
            if anyio.current_time() + delay > deadline:
                raise GaveUp(failure)
            self._on_retry(failure)
            log.debug("retry", kind=failure.kind, delay_s=round(delay, 3), error=str(failure))
            if not await self.wait(partial(self._sleep, delay)):
                raise GaveUp(failure)
