"""The bulk engine: one task group of a producer, N workers and a journal sink; stopping drains.

    items ──► producer ──► bounded stream ──► N workers ──► stream ──► sink ──► journal
                            (intake scope)     limiter → call → outcome     (shielded writes)

A stop (signal, --max-duration, a fatal call error) cancels intake only: workers finish
the chunk in hand within the grace period, the sink writes what they produce, and only
then does `run` return. Chunks never taken stay pending in the journal for resume.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol, TypeVar

import anyio
import anyio.lowlevel
import structlog
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from anyio.streams.memory import MemoryObjectReceiveStream

from bulkops.errors import CallFailed, Conflict, FatalCall, Throttled
from bulkops.limits import AdaptiveRate, RateTuning, RetryPolicy
from bulkops.model import CallResult, Chunk, ChunkOutcome, JobSpec, Operation, Settled
from bulkops.registry import Registry

log = structlog.get_logger("bulkops.engine")
T = TypeVar("T")


class OutcomeWriter(Protocol):
    """Where finished attempts go: the journal. `write` returns once they are durable."""

    async def write(self, outcomes: Sequence[tuple[ChunkOutcome, bool]]) -> None: ...


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Knobs of one run; defaults live here and nowhere else."""

    concurrency: int = 16
    rate: float = 100.0  # write calls per second (Delete, Dispose, UpdateStatus, DeletePackage)
    copy_rate: float = 5.0  # CopyPackageVersions calls per second
    read_rate: float = 50.0  # DescribePackageVersion calls per second (copy checks)
    call_timeout: float = 60.0
    grace_period: float = 20.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    tuning: RateTuning = field(default_factory=RateTuning)
    seed: int | None = None  # jitter; fixed in tests for repeatable runs


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

    @property
    def versions_done(self) -> int:
        return self.versions_ok + self.versions_failed + self.versions_skipped_done


class StopSignal:
    """A request to stop intake and drain, with the reason it was made."""

    def __init__(self) -> None:
        self._event = anyio.Event()
        self.reason: str | None = None
        self.tripped = False  # a safety rail (breaker, canary) asked: not a plain interruption

    def request(self, reason: str, *, tripped: bool = False) -> None:
        if self.reason is None:
            self.reason = reason
            self.tripped = tripped
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


@dataclass(slots=True)
class RunResult:
    stats: Stats
    stopped: str | None = None  # the stop reason when intake was cut short
    fatal: FatalCall | None = None
    tripped: bool = False  # the stop came from a safety rail


class _Abandoned(Exception):
    """A stop came before the call was sent; the chunk stays pending."""


class _GaveUp(Exception):
    """A call exhausted its retry budget; carries the last transient failure."""

    def __init__(self, last: CallFailed) -> None:
        super().__init__(str(last))
        self.last = last


class Engine:
    """Runs one job's work items against a registry and writes every outcome to the journal."""

    def __init__(
        self,
        spec: JobSpec,
        registry: Registry,
        journal: OutcomeWriter,
        settings: EngineSettings,
        *,
        resumed: bool = False,
        stats: Stats | None = None,
        stop: StopSignal | None = None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.spec = spec
        self.registry = registry
        self.journal = journal
        self.settings = settings
        self.resumed = resumed
        self.stats = stats or Stats()
        self.stop = stop or StopSignal()
        self._sleep = sleep
        self._rng = random.Random(settings.seed)
        tuning = settings.tuning
        main_rate = settings.copy_rate if spec.operation is Operation.COPY else settings.rate
        self.scope = AdaptiveRate(spec.operation.scope, main_rate, tuning=tuning)
        self.read_scope = AdaptiveRate("read", settings.read_rate, tuning=tuning)
        self._fatal: FatalCall | None = None
        self._intake = anyio.CancelScope()
        self._workers: anyio.CancelScope | None = None

    async def run(self, items: Iterable[WorkItem]) -> RunResult:
        """Send every item; return when all are done or the stop has drained."""
        self.stats.started = anyio.current_time()
        n = max(1, self.settings.concurrency)
        work_send, work_recv = anyio.create_memory_object_stream[WorkItem](n)
        out_send, out_recv = anyio.create_memory_object_stream[tuple[ChunkOutcome, bool]](4 * n)
        async with anyio.create_task_group() as outer:
            outer.start_soon(self._sink, out_recv)
            watcher = anyio.CancelScope()
            outer.start_soon(self._watch_stop, watcher)
            async with out_send, anyio.create_task_group() as inner:
                self._workers = inner.cancel_scope
                inner.start_soon(self._produce, items, work_send)
                async with work_recv:
                    for _ in range(n):
                        inner.start_soon(self._worker, work_recv.clone(), out_send.clone())
            watcher.cancel()
        return RunResult(self.stats, self.stop.reason, self._fatal, self.stop.tripped)

    async def _produce(self, items: Iterable[WorkItem], send: ObjectSendStream[WorkItem]) -> None:
        with self._intake:
            async with send:
                for i, item in enumerate(items):
                    if i % 64 == 0:  # reading the manifest is synchronous: let the loop breathe
                        await anyio.lowlevel.checkpoint()
                    try:
                        await send.send(item)
                    except anyio.BrokenResourceError:
                        return  # every worker has stopped (a fatal error): nothing takes more

    async def _watch_stop(self, scope: anyio.CancelScope) -> None:
        with scope:
            await self.stop.wait()
            log.info("stop_requested", reason=self.stop.reason, grace_s=self.settings.grace_period)
            self._intake.cancel()
            await anyio.sleep(self.settings.grace_period)
            log.warning("grace_period_over", note="cancelling calls in flight; resume resends them")
            if self._workers is not None:
                self._workers.cancel()

    async def _worker(
        self,
        receive: ObjectReceiveStream[WorkItem],
        send: ObjectSendStream[tuple[ChunkOutcome, bool]],
    ) -> None:
        async with receive, send:
            async for item in receive:
                if self.stop.requested:
                    return  # not taken: stays pending for resume
                try:
                    await self._run_chunk(item, send)
                except FatalCall as exc:
                    if self._fatal is None:
                        self._fatal = exc
                    log.error("fatal_call_error", error=str(exc), package=str(item.chunk.ref))
                    self.stop.request("fatal")
                    return

    async def _call(
        self, scope: AdaptiveRate, fn: Callable[[], Awaitable[T]], on_transient: Callable[[], None]
    ) -> T:
        """One API call with the engine's retries: throttles, 5xx, 409, network errors."""
        policy = self.settings.retry
        deadline = anyio.current_time() + policy.budget
        failures = conflicts = 0
        while True:
            await scope.acquire()
            if self.stop.requested:
                raise _Abandoned  # waiting for a slot is not in flight: leave it for resume
            self.stats.calls += 1
            try:
                with anyio.fail_after(self.settings.call_timeout):
                    result = await fn()
            except TimeoutError as exc:
                failure: CallFailed = _Timeout(f"no answer within {self.settings.call_timeout}s")
                failure.__cause__ = exc
            except CallFailed as exc:
                failure = exc
            else:
                scope.on_success()
                return result
            self.stats.errors[failure.kind] += 1
            if isinstance(failure, Throttled):
                scope.on_throttle()
                self.stats.throttled += 1
                delay = max(failure.retry_after or 0.0, policy.delay(1, self._rng))
            else:
                on_transient()
                failures += 1
                conflicts += isinstance(failure, Conflict)
                if failures >= policy.max_attempts or conflicts >= policy.max_conflicts:
                    raise _GaveUp(failure)
                delay = policy.delay(failures, self._rng)
            if anyio.current_time() + delay > deadline or self.stop.requested:
                raise _GaveUp(failure)
            self.stats.retries += 1
            log.debug("retry", kind=failure.kind, delay_s=round(delay, 3), error=str(failure))
            await self._sleep(delay)

    async def _run_chunk(
        self, item: WorkItem, send: ObjectSendStream[tuple[ChunkOutcome, bool]]
    ) -> None:
        chunk = item.chunk
        attempt = item.attempts_before
        maybe_applied = [self.resumed or attempt > 0]  # an earlier call may have acted already

        def transient() -> None:
            maybe_applied[0] = True

        while True:
            attempt += 1
            try:
                result = await self._call(
                    self.scope, partial(self.registry.run_chunk, self.spec, chunk), transient
                )
            except _Abandoned:
                return
            except _GaveUp as gave_up:
                err = {"errorCode": gave_up.last.code, "errorMessage": str(gave_up.last)}
                # every version of the attempt is still pending: say so, pins included
                outcome = ChunkOutcome(
                    chunk.id,
                    chunk.ref,
                    attempt,
                    retry=chunk.versions,
                    error=err,
                    revisions=chunk.revisions,
                )
                await send.send((outcome, False))
                self.stats.chunks_given_up += 1
                log.warning("chunk_gave_up", package=str(chunk.ref), chunk=chunk.id, **err)
                return
            outcome = await self._classify(chunk, result, attempt, maybe_applied[0])
            complete = not outcome.retry
            await send.send((outcome, complete))
            if complete or self.stop.requested:
                return
            chunk = chunk.narrowed(outcome.retry)
            await self._sleep(self.settings.retry.delay(1, self._rng))

    async def _classify(
        self, chunk: Chunk, result: CallResult, attempt: int, maybe_applied: bool
    ) -> ChunkOutcome:
        op = self.spec.operation
        if op is Operation.DELETE_PACKAGES:
            return ChunkOutcome(
                chunk.id,
                chunk.ref,
                attempt,
                deleted_package=result.deleted_package,
                package_done=True,
            )
        settled: dict[str, Settled] = {}
        retry: list[str] = []
        for version, info in result.failed.items():
            code = info.get("errorCode")
            if code == "SKIPPED":
                retry.append(version)
            elif (
                code == "NOT_FOUND"
                and maybe_applied
                and op in (Operation.DELETE, Operation.DISPOSE)
            ):
                settled[version] = "already_absent"
            elif code == "ALREADY_EXISTS" and op is Operation.COPY:
                identical = await self._identical_copy(chunk, version)
                if identical is None:  # could not tell now: ask again on the next attempt
                    retry.append(version)
                elif identical:
                    settled[version] = "identical_copy"
        answered = result.successful.keys() | result.failed.keys()
        missing = [v for v in chunk.versions if v not in answered]
        if missing:  # the service answered for fewer versions than it was sent: send them again
            log.warning("versions_unanswered", package=str(chunk.ref), versions=missing[:10])
            retry.extend(missing)
        return ChunkOutcome(
            chunk.id,
            chunk.ref,
            attempt,
            successful=result.successful,
            failed=result.failed,
            settled=settled,
            retry=tuple(retry),
            revisions=chunk.revisions,
        )

    async def _identical_copy(self, chunk: Chunk, version: str) -> bool | None:
        """Whether the destination holds this version at the source's revision; None: unknown."""
        spec = self.spec
        assert spec.destination_repository is not None
        source = chunk.revisions.get(version)
        try:
            if source is None:
                source = await self._call(
                    self.read_scope,
                    lambda: self.registry.describe_revision(
                        spec, spec.repository, chunk.ref, version
                    ),
                    lambda: None,
                )
            dest = await self._call(
                self.read_scope,
                lambda: self.registry.describe_revision(
                    spec, spec.destination_repository or "", chunk.ref, version
                ),
                lambda: None,
            )
        except _GaveUp as gave_up:
            log.warning("copy_check_failed", package=str(chunk.ref), error=str(gave_up.last))
            return None
        except _Abandoned:
            return None
        return source is not None and source == dest

    async def _sink(self, receive: MemoryObjectReceiveStream[tuple[ChunkOutcome, bool]]) -> None:
        async with receive:
            while True:
                try:
                    batch = [await receive.receive()]
                except anyio.EndOfStream:
                    return
                while len(batch) < 512:  # group commit: one fsync for all that is ready
                    try:
                        batch.append(receive.receive_nowait())
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                with anyio.CancelScope(shield=True):
                    await self.journal.write(batch)
                for outcome, complete in batch:
                    self._count(outcome, complete)

    def _count(self, outcome: ChunkOutcome, complete: bool) -> None:
        s = self.stats
        permanent = {v for v in outcome.failed if v not in outcome.retry} - set(outcome.settled)
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


class _Timeout(CallFailed):
    kind = "timeout"
