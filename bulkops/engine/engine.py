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

from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol, TypeAlias, TypeVar

import anyio
import anyio.lowlevel
import structlog
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from bulkops.engine.concurrency import ConcurrencyTuning, Controller
from bulkops.engine.limits import READ_RATE, AdaptiveRate, RateTuning, RetryPolicy
from bulkops.engine.retry import Abandoned, CallRunner, GaveUp
from bulkops.engine.verdicts import Verdicts
from bulkops.errors import CallFailed, FatalCall, Throttled
from bulkops.log import redact_error
from bulkops.model import CANCELLED_IN_FLIGHT, CallResult, Chunk, ChunkOutcome, JobSpec, Operation
from bulkops.registry import Registry

log = structlog.get_logger("bulkops.engine.engine")


class OutcomeWriter(Protocol):
    """Where finished attempts go: the journal. `write` returns once they are durable.

    `dispatched` names chunks about to be sent for the first time (see the module doc).
    """

    async def write(
        self, outcomes: Sequence[tuple[ChunkOutcome, bool]], dispatched: Sequence[str] = ()
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Knobs of one run; defaults live here and nowhere else."""

    concurrency: int | None = None  # calls in flight; None: found by the engine (auto)
    max_concurrency: int = 256  # the most calls in flight auto may reach (README: why 256)
    rate: float = 100.0  # write calls per second (Delete, Dispose, UpdateStatus, DeletePackage)
    copy_rate: float = 5.0  # CopyPackageVersions calls per second
    read_rate: float = READ_RATE  # DescribePackageVersion calls/s (copy, status checks)
    call_timeout: float = 60.0
    grace_period: float = 20.0
    # group commit: an outcome waits at most this long for others to share its fsync
    # (a dispatch mark, which holds up a send, is written at once)
    commit_window: float = 0.01
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    tuning: RateTuning = field(default_factory=RateTuning)
    flight: ConcurrencyTuning = field(default_factory=ConcurrencyTuning)
    seed: int | None = None  # jitter; fixed in tests for repeatable runs

    @property
    def most_in_flight(self) -> int:
        """Workers, and the connections and stream room they need: the pinned or the max."""
        return max(1, self.concurrency or self.max_concurrency)


@dataclass(slots=True)
class Stats:
    """Live counters of a run; the progress display and the final summary read them."""

    versions_total: int = 0
    chunks_total: int = 0
    versions_ok: int = 0  # succeeded or settled as already done
    versions_failed: int = 0  # permanent per-version failures
    versions_skipped_done: int = 0  # found complete in the journal on resume
    chunks_done: int = 0
    chunks_given_up: int = 0
    calls: int = 0
    throttled: int = 0
    retries: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    started: float = 0.0
    flight: Controller | None = None  # the concurrency limit and the latency it follows

    @property
    def versions_done(self) -> int:
        return self.versions_ok + self.versions_failed + self.versions_skipped_done


class StopSignal:
    """A request to stop intake and drain, with the reason it was made."""

    def __init__(self) -> None:
        self._event = anyio.Event()
        self.reason: str | None = None
        self.tripped = False  # a safety rail (breaker, canary) asked: not a plain interruption
        self.fatal: FatalCall | None = None  # the error that asked, when one did

    def request(
        self, reason: str, *, tripped: bool = False, fatal: FatalCall | None = None
    ) -> None:
        if self.reason is None:
            self.reason, self.tripped, self.fatal = reason, tripped, fatal
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> None:
        await self._event.wait()


@dataclass(frozen=True, slots=True)
class WorkItem:
    """A chunk to send, with what earlier runs already did to it."""

    chunk: Chunk
    attempts_before: int = 0  # calls recorded for this chunk by earlier runs
    dispatched: bool = False  # an earlier run marked it sent: its calls may have acted


@dataclass(frozen=True, slots=True)
class _Mark:
    """A worker's request to journal a dispatch mark; `done` is set once it is durable."""

    chunk_id: str
    done: anyio.Event


_Out: TypeAlias = "tuple[ChunkOutcome, bool] | _Mark"


@dataclass(slots=True)
class RunResult:
    stats: Stats
    stopped: str | None = None  # the stop reason when intake was cut short
    fatal: FatalCall | None = None
    tripped: bool = False  # the stop came from a safety rail


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
        # set to end the sink's group-commit window: a dispatch mark waits to be written,
        # the outcome stream is full, or the run is draining (born in `run`, in the loop)
        self._urgent: anyio.Event
        self._draining = False
        self._intake = anyio.CancelScope()
        self._workers: anyio.CancelScope | None = None

    async def run(self, items: Iterable[WorkItem]) -> RunResult:
        """Send every item; return when all are done or the stop has drained."""
        self.stats.started = anyio.current_time()
        self._urgent = anyio.Event()
        self._draining = False
        n = self.settings.most_in_flight
        work_send, work_recv = anyio.create_memory_object_stream[WorkItem](n)
        out_send, out_recv = anyio.create_memory_object_stream[_Out](4 * n)
        failure: Exception | None = None
        async with anyio.create_task_group() as outer:
            outer.start_soon(self._sink, out_recv)
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
            self._draining = True  # no more outcomes will come to share an fsync
            self._urgent.set()
            watcher.cancel()
        if failure is not None:
            raise failure
        return RunResult(self.stats, self.stop.reason, self._fatal, self.stop.tripped)

    async def _produce(
        self, items: Iterable[WorkItem], send: MemoryObjectSendStream[WorkItem]
    ) -> None:
        with self._intake:
            async with send:
                for i, item in enumerate(items):
                    if i % 64 == 0:  # reading the manifest is synchronous: let the loop breathe
                        await anyio.lowlevel.checkpoint()
                    try:
                        await _put(send, item)
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
        self, receive: MemoryObjectReceiveStream[WorkItem], send: MemoryObjectSendStream[_Out]
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

    async def _run_chunk(self, item: WorkItem, send: MemoryObjectSendStream[_Out]) -> None:
        chunk = item.chunk
        attempt = item.attempts_before
        maybe_applied = [item.dispatched or attempt > 0]  # an earlier call may have acted

        def transient() -> None:
            maybe_applied[0] = True

        async def mark_dispatched() -> None:  # durable before the chunk's first send
            mark = _Mark(chunk.id, anyio.Event())
            await self._emit(send, mark)
            self._urgent.set()  # a send waits for this mark: no group-commit window
            await mark.done.wait()

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
                await self._emit(send, (outcome, False))
                if self.stop.requested:  # the stop cut its retries short: pending, not given up
                    log.info("chunk_interrupted", package=str(chunk.ref), chunk=chunk.id, **err)
                else:
                    self.stats.chunks_given_up += 1
                    log.warning("chunk_gave_up", package=str(chunk.ref), chunk=chunk.id, **err)
                return
            first_send = None  # sent: marked (if it needed a mark) once and for all
            outcome = await self.verdicts.outcome(chunk, result, attempt, maybe_applied[0])
            complete = not outcome.retry
            await self._emit(send, (outcome, complete))
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

    async def _emit(self, send: MemoryObjectSendStream[_Out], item: _Out) -> None:
        """Hand `item` to the sink; a full stream ends its group-commit window at once."""
        await _put(send, item, on_full=self._urgent.set)

    async def _sink(self, receive: MemoryObjectReceiveStream[_Out]) -> None:
        window = self.settings.commit_window
        async with receive:
            while True:
                try:
                    batch = [await receive.receive()]
                except anyio.EndOfStream:
                    return
                # from here the batch is in hand: nothing may cancel it before it is written
                with anyio.CancelScope(shield=True):
                    if window > 0 and not self._draining and not isinstance(batch[0], _Mark):
                        # group commit: let the outcomes of the next calls share this fsync
                        with anyio.move_on_after(window):
                            await self._urgent.wait()
                    self._urgent = anyio.Event()
                    while len(batch) < 512:
                        try:
                            batch.append(receive.receive_nowait())
                        except (anyio.WouldBlock, anyio.EndOfStream):
                            break
                    outcomes = [b for b in batch if not isinstance(b, _Mark)]
                    marks = [b.chunk_id for b in batch if isinstance(b, _Mark)]
                    await self.journal.write(outcomes, marks)
                for b in batch:
                    if isinstance(b, _Mark):
                        b.done.set()
                    else:
                        self._count(*b)

    def _count_call(self) -> None:
        self.stats.calls += 1

    def _count_retry(self, failure: CallFailed) -> None:
        self.stats.errors[failure.kind] += 1
        self.stats.retries += 1
        self.stats.throttled += isinstance(failure, Throttled)

    def _count(self, outcome: ChunkOutcome, complete: bool) -> None:
        s = self.stats
        permanent = outcome.permanent
        s.versions_ok += len(outcome.successful) + len(outcome.settled) + outcome.package_done
        s.versions_failed += len(permanent)
        for v in permanent:
            s.errors[outcome.failed[v].get("errorCode", "?")] += 1
        if complete:
            s.chunks_done += 1
        log.debug(
            "chunk_done",
            package=str(outcome.ref),
            chunk=outcome.chunk_id,
            attempt=outcome.attempt,
            ok=len(outcome.successful) + len(outcome.settled),
            failed=len(permanent),
            retry=len(outcome.retry),
            complete=complete,
        )


T = TypeVar("T")


async def _put(
    send: MemoryObjectSendStream[T], item: T, on_full: Callable[[], None] | None = None
) -> None:
    """Send `item`, without a trip through the event loop when the stream has room;
    `on_full` is told when it has none."""
    try:
        send.send_nowait(item)
    except anyio.WouldBlock:
        if on_full is not None:
            on_full()
        await send.send(item)
