"""The bulk engine: one task group of a producer, N workers and a journal sink; stopping drains.

    items ──► producer ──► bounded stream ──► N workers ──► stream ──► sink ──► journal
                            (intake scope)     limiter → call → outcome     (shielded writes)

A stop (signal, --max-duration, a fatal call error, a safety rail) cancels intake and
every wait for a rate slot or a backoff: only calls already on the wire finish, within
the grace period; the sink writes what they produce, and only then does `run` return.
Chunks never sent stay pending in the journal for resume.

A call cut off on the wire (a second signal, the end of the grace period) is journaled
as pending with errorCode CANCELLED_IN_FLIGHT: it may have acted, and the report says so.

Before the first call of a chunk whose NOT_FOUND or MISMATCHED_STATUS answers depend on
whether an earlier call acted, the worker has the sink journal a dispatch mark (group
committed with the outcomes): a resume then knows exactly which chunks may have acted.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from functools import partial

import anyio
import anyio.lowlevel
import structlog
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from bulkops.engine.concurrency import Controller
from bulkops.engine.limits import AdaptiveRate
from bulkops.engine.retry import Abandoned, CallRunner, GaveUp
from bulkops.engine.sink import Mark, Out, Sink, each, put
from bulkops.engine.types import (
    EngineSettings,
    OutcomeWriter,
    RunResult,
    Stats,
    StopSignal,
    WorkItem,
)
from bulkops.engine.verdicts import Verdicts
from bulkops.errors import CallFailed, FatalCall, Throttled
from bulkops.log import redact_error
from bulkops.model import CANCELLED_IN_FLIGHT, CallResult, Chunk, ChunkOutcome, JobSpec, Operation
from bulkops.registry import Registry

log = structlog.get_logger("bulkops.engine.engine")

__all__ = [
    "Engine",
    "EngineSettings",
    "OutcomeWriter",
    "RunResult",
    "Stats",
    "StopSignal",
    "WorkItem",
]


class Engine:
    """Runs one job's work items against a registry and writes every outcome to the journal."""

    def __init__(
        self,
        spec: JobSpec,
        registry: Registry,
        journal: OutcomeWriter,
        settings: EngineSettings,
        *,
        stats: Stats | None = None,
        stop: StopSignal | None = None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.spec = spec
        self.registry = registry
        self.journal = journal
        self.settings = settings
        self.stats = stats or Stats()
        self.stop = stop or StopSignal()
        tuning = settings.tuning
        main_rate = settings.copy_rate if spec.operation is Operation.COPY else settings.rate
        self.scope = AdaptiveRate(spec.operation.scope, main_rate, tuning=tuning)
        self.read_scope = AdaptiveRate("read", settings.read_rate, tuning=tuning)
        self.calls = CallRunner(
            settings.retry,
            settings.call_timeout,
            stopping=lambda: self.stop.requested,
            sleep=sleep,
            seed=settings.seed,
            on_call=self._count_call,
            on_retry=self._count_retry,
        )
        self.stats.flight = self.flight = Controller(
            lambda: self.scope.rate, maximum=settings.most_in_flight,
            pinned=settings.concurrency is not None, tuning=settings.flight,
        )  # fmt: skip
        self.verdicts = Verdicts(spec, registry, self.calls, self.read_scope)
        # answers that depend on whether an earlier call acted: marks make that exact
        self._marks = spec.operation in (Operation.DELETE, Operation.DISPOSE) or (
            spec.operation is Operation.SET_STATUS and spec.expected_status is not None
        )
        self._fatal: FatalCall | None = None
        self._sink: Sink  # born in `run`, inside the loop
        self._intake = anyio.CancelScope()
        self._workers: anyio.CancelScope | None = None

    async def run(self, items: Iterable[WorkItem] | AsyncIterable[WorkItem]) -> RunResult:
        """Send every item; return when all are done or the stop has drained."""
        self.stats.started = anyio.current_time()
        self._sink = Sink(self.journal, self.stats, self.settings.commit_window)
        n = self.settings.most_in_flight
        work_send, work_recv = anyio.create_memory_object_stream[WorkItem](n)
        out_send, out_recv = anyio.create_memory_object_stream[Out](4 * n)
        failure: Exception | None = None
        async with anyio.create_task_group() as outer:
            outer.start_soon(self._sink.run, out_recv)
            watcher = anyio.CancelScope()
            outer.start_soon(self._watch_stop, watcher)
            try:
                async with out_send, anyio.create_task_group() as inner:
                    self._workers = inner.cancel_scope
                    inner.start_soon(self._produce, items, work_send)
                    async with work_recv:
                        for _ in range(n):
                            inner.start_soon(self._worker, work_recv.clone(), out_send.clone())
            except Exception as exc:  # a bug: the outcomes already in hand are journaled first
                failure = exc
            self._sink.draining = True  # no more outcomes will come to share an fsync
            self._sink.urgent.set()
            watcher.cancel()
        if failure is not None:
            raise failure
        return RunResult(self.stats, self.stop.reason, self._fatal, self.stop.tripped)

    async def _produce(
        self,
        items: Iterable[WorkItem] | AsyncIterable[WorkItem],
        send: MemoryObjectSendStream[WorkItem],
    ) -> None:
        with self._intake:
            async with send:
                async for item in each(items):  # the chunk list, read through the store
                    try:
                        await put(send, item)
                    except anyio.BrokenResourceError:
                        return  # every worker has stopped (a fatal error): nothing takes more

    async def _watch_stop(self, scope: anyio.CancelScope) -> None:
        with scope:
            await self.stop.wait()
            log.info("stop_requested", reason=self.stop.reason, grace_s=self.settings.grace_period)
            self._intake.cancel()
            self.calls.interrupt()
            await anyio.sleep(self.settings.grace_period)
            log.warning("grace_period_over", note="cancelling calls in flight; resume resends them")
            if self._workers is not None:
                self._workers.cancel()

    async def _worker(
        self, receive: MemoryObjectReceiveStream[WorkItem], send: MemoryObjectSendStream[Out]
    ) -> None:
        async with receive, send:
            while True:
                try:  # the fast path: no trip through the loop when work is waiting
                    item = receive.receive_nowait()
                except anyio.WouldBlock:
                    try:
                        item = await receive.receive()
                    except anyio.EndOfStream:
                        return
                except anyio.EndOfStream:
                    return
                if self.stop.requested:
                    return  # not taken: stays pending for resume
                try:
                    await self._run_chunk(item, send)
                except FatalCall as exc:
                    if self._fatal is None:
                        self._fatal = exc
                    log.error("fatal_call_error", error=str(exc), package=str(item.chunk.ref))
                    self.stop.request("fatal", fatal=exc)
                    return

    async def _run_chunk(self, item: WorkItem, send: MemoryObjectSendStream[Out]) -> None:
        chunk = item.chunk
        attempt = item.attempts_before
        maybe_applied = [item.dispatched or attempt > 0]  # an earlier call may have acted

        def transient() -> None:
            maybe_applied[0] = True

        async def mark_dispatched() -> anyio.Event:  # durable before the chunk's first send
            mark = Mark(chunk.id, anyio.Event())
            await self._sink.emit(send, mark)
            self._sink.urgent.set()  # a send waits for this mark: no group-commit window
            return mark.done

        first_send = mark_dispatched if self._marks and not maybe_applied[0] else None
        rounds = 0
        while True:
            attempt += 1
            on_wire = [False]  # set once a call of this attempt is sent
            try:
                result = await self.calls.call(
                    self.scope,
                    partial(self._send, chunk, on_wire),
                    transient,
                    before_send=first_send,
                    gate=self.flight.gate,
                )
            except Abandoned:
                return
            except anyio.get_cancelled_exc_class():
                if on_wire[0]:
                    await self._record_cancelled(chunk, attempt)
                raise
            except GaveUp as gave_up:
                err = {"errorCode": gave_up.last.code, "errorMessage": redact_error(gave_up.last)}
                # every version of the attempt is still pending: say so, pins included
                outcome = ChunkOutcome(
                    chunk.id,
                    chunk.ref,
                    attempt,
                    retry=chunk.versions,
                    error=err,
                    revisions=chunk.revisions,
                )
                await self._sink.emit(send, (outcome, False))
                if self.stop.requested:  # the stop cut its retries short: pending, not given up
                    log.info("chunk_interrupted", package=str(chunk.ref), chunk=chunk.id, **err)
                else:
                    self.stats.chunks_given_up += 1
                    log.warning("chunk_gave_up", package=str(chunk.ref), chunk=chunk.id, **err)
                return
            first_send = None  # sent: marked (if it needed a mark) once and for all
            outcome = await self.verdicts.outcome(chunk, result, attempt, maybe_applied[0])
            complete = not outcome.retry
            await self._sink.emit(send, (outcome, complete))
            if complete or self.stop.requested:
                return
            rounds += 1
            if rounds >= self.settings.retry.max_attempts or not await self.calls.backoff(rounds):
                # still SKIPPED (or unanswered) after every round: pending, for a resume
                self.stats.chunks_given_up += not self.stop.requested
                log.warning(
                    "chunk_left_pending", package=str(chunk.ref), versions=len(outcome.retry)
                )
                return
            chunk = chunk.narrowed(outcome.retry)

    async def _send(self, chunk: Chunk, on_wire: list[bool]) -> CallResult:
        on_wire[0] = True
        return await self.flight.timed(self.registry.run_chunk(self.spec, chunk))

    async def _record_cancelled(self, chunk: Chunk, attempt: int) -> None:
        """Journal a chunk whose call was cancelled on the wire: pending, and it may have
        acted (a resume treats it so, and the report says "may have been applied")."""
        error = {
            "errorCode": CANCELLED_IN_FLIGHT,
            "errorMessage": "the call was cancelled after it was sent; it may have been applied",
        }
        outcome = ChunkOutcome(
            chunk.id, chunk.ref, attempt, retry=chunk.versions, error=error,
            revisions=chunk.revisions,
        )  # fmt: skip
        with anyio.move_on_after(5, shield=True):  # a cancelled run must still end
            try:
                await self.journal.write([(outcome, False)])
            except Exception as exc:  # a broken journal: the dispatch marks still hold
                log.warning("cancelled_chunk_not_journaled", chunk=chunk.id, error=str(exc))

    def _count_call(self) -> None:
        self.stats.calls += 1

    def _count_retry(self, failure: CallFailed) -> None:
        self.stats.errors[failure.kind] += 1
        self.stats.retries += 1
        self.stats.throttled += isinstance(failure, Throttled)
