"""Progress of a run: a live bar on a terminal, a `progress` log event every N seconds elsewhere.

Both show the calls in flight allowed and the latency per call; when concurrency, not
the rate, is what holds the run back, they say so once (a `concurrency_limited` event).
"""

from __future__ import annotations

import sys
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import structlog
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from bulkops.engine.types import Stats

ProgressMode = Literal["auto", "bar", "log", "off"]
log = structlog.get_logger("bulkops.jobs.progress")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a progress line or bar shows at one moment."""

    done: int
    total: int
    calls_per_s: float
    throttled: int
    retries: int
    errors: dict[str, int]
    eta_s: float | None
    concurrency: int | None = None  # the limit of calls in flight
    latency_ms: float | None = None  # mean per call over the latest answers
    limited: str | None = None  # "limited by concurrency 16 at 610 ms per call: 26 calls/s of 100"

    def to_log(self) -> dict[str, object]:
        return {
            "done": self.done,
            "total": self.total,
            "percent": round(100 * self.done / self.total, 1) if self.total else None,
            "calls_per_s": round(self.calls_per_s, 1),
            "throttled": self.throttled,
            "retries": self.retries,
            "errors": self.errors,
            "eta_s": None if self.eta_s is None else round(self.eta_s),
            "concurrency": self.concurrency,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms),
        }


class Meter:
    """Turns the engine's counters into rates over a sliding window of a few seconds."""

    def __init__(self, stats: Stats, window: float = 5.0) -> None:
        self.stats = stats
        self.window = window
        self._samples: deque[tuple[float, int, int]] = deque()
        self.snapshot()  # the first sample: rates are measured from here

    def snapshot(self) -> Snapshot:
        s = self.stats
        now = anyio.current_time()
        self._samples.append((now, s.calls, s.versions_done))
        while len(self._samples) > 2 and now - self._samples[0][0] > self.window:
            self._samples.popleft()
        t0, calls0, done0 = self._samples[0]
        elapsed = now - t0
        calls_per_s = (s.calls - calls0) / elapsed if elapsed > 0 else 0.0
        done_per_s = (s.versions_done - done0) / elapsed if elapsed > 0 else 0.0
        remaining = max(s.versions_total - s.versions_done, 0)
        eta = remaining / done_per_s if done_per_s > 0 else None
        flight = s.flight
        return Snapshot(
            done=s.versions_done,
            total=s.versions_total,
            calls_per_s=calls_per_s,
            throttled=s.throttled,
            retries=s.retries,
            errors=dict(s.errors),
            eta_s=eta,
            concurrency=flight.limit if flight else None,
            latency_ms=1000 * flight.latency if flight and flight.answers else None,
            limited=flight.limited if flight else None,
        )


class Once:
    """Says the run is limited by concurrency the first time a snapshot shows it."""

    def __init__(self) -> None:
        self.said = False

    def __call__(self, snap: Snapshot) -> None:
        if self.said or snap.limited is None:
            return
        self.said = True
        log.info("concurrency_limited", message=snap.limited, concurrency=snap.concurrency)


def choose_mode(mode: ProgressMode) -> Literal["bar", "log", "off"]:
    """`auto` is a bar when stderr is a terminal and log events otherwise."""
    if mode == "auto":
        return "bar" if sys.stderr.isatty() else "log"
    return mode


async def show_progress(stats: Stats, mode: ProgressMode, interval: float) -> None:
    """Report progress until cancelled; the caller cancels it when the run ends."""
    chosen = choose_mode(mode)
    meter = Meter(stats)
    once = Once()
    if chosen == "off":
        return
    if chosen == "log":
        while True:
            await anyio.sleep(interval)
            snap = meter.snapshot()
            log.info("progress", **snap.to_log())
            once(snap)
    console = Console(file=sys.stderr)
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[count]}"),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[detail]}"),
        console=console,
        transient=False,
        redirect_stderr=True,
        redirect_stdout=False,
    )
    task = bar.add_task(
        "versions", total=stats.versions_total or None, count="", rate="", detail=""
    )
    with bar:
        try:
            while True:
                snap = meter.snapshot()
                bar.update(task, **bar_fields(snap))
                once(snap)
                await anyio.sleep(0.25)
        finally:
            bar.update(task, **bar_fields(meter.snapshot()))  # the last frame shows the end


def bar_fields(snap: Snapshot) -> dict[str, Any]:
    """What one frame of the bar shows: every field, so no frame mixes two moments."""
    errors = " ".join(f"{k}={v}" for k, v in sorted(snap.errors.items()))
    return {
        "completed": snap.done,
        "total": snap.total or None,
        "count": f"{snap.done:,}/{snap.total:,}",
        "rate": f"{snap.calls_per_s:.1f} calls/s",
        "detail": f"{_flight(snap)}throttled={snap.throttled} retries={snap.retries} "
        f"{errors}".strip(),
    }


def _flight(snap: Snapshot) -> str:
    if snap.concurrency is None or snap.latency_ms is None:
        return ""
    return f"in flight ≤{snap.concurrency} at {snap.latency_ms:.0f} ms "
