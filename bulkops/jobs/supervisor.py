"""One run under supervision: signals and --max-duration stop it, progress shows it.

    result = supervise(lambda stop, stats: run_new(job, header, stop, stats), job.supervision)

The first SIGINT or SIGTERM asks the engine to stop intake and drain; a second cancels
the calls in flight (they are resent on resume). An error raised inside the run's task
group comes out as itself, not wrapped in an ExceptionGroup, so it keeps its exit code.
"""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable

import anyio
import structlog

from bulkops.engine.types import RunResult, Stats, StopSignal
from bulkops.errors import first_error
from bulkops.jobs.job import Supervision
from bulkops.jobs.progress import show_progress

log = structlog.get_logger("bulkops.jobs.supervisor")

Start = Callable[[StopSignal, Stats], Awaitable[RunResult]]


def supervise(start: Start, supervision: Supervision | None = None) -> RunResult:
    """Run `start(stop, stats)` in a fresh event loop until it returns."""
    watch = supervision or Supervision()
    max_duration, progress = watch.max_duration, watch.progress

    async def main() -> RunResult:
        stop, stats = StopSignal(), Stats()
        result: RunResult | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(_watch_signals, stop, tg.cancel_scope)
            tg.start_soon(show_progress, stats, progress, watch.progress_interval)
            if max_duration:
                tg.start_soon(_stop_after, stop, max_duration)
            result = await start(stop, stats)
            tg.cancel_scope.cancel()
        if result is None:  # a second signal cancelled the run itself: still resumable
            return RunResult(
                stats, f"{stop.reason}, then cancelled", stop.fatal, tripped=stop.tripped
            )
        return result

    try:
        return anyio.run(main, backend="asyncio")
    except BaseExceptionGroup as group:  # a task group wraps what its tasks raised
        raise first_error(group) from None


async def _watch_signals(stop: StopSignal, scope: anyio.CancelScope) -> None:
    received = 0  # signals, not stops: a rail or an error that stopped the run is no signal
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            name = signal.Signals(signum).name
            received += 1
            if received > 1:
                log.warning("second_signal", signal=name, note="cancelling without drain")
                scope.cancel()
                return
            stop.request(name)


async def _stop_after(stop: StopSignal, seconds: float) -> None:
    await anyio.sleep(seconds)
    stop.request("max-duration")
