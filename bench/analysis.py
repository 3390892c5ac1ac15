"""Figures from client-side attempt records: per-second series, shares of a quota, adaptation times.

Attempt records are `[seconds after READY, "ok" | "throttled" | "error"]`, one per HTTP
attempt, stamped when its answer arrived.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any

Attempts = Sequence[Sequence[Any]]


def times(attempts: Attempts, code: str) -> list[float]:
    return sorted(float(t) for t, c in attempts if c == code)


def per_second(attempts: Attempts, end: float | None = None) -> dict[str, list[float]]:
    """Calls per one-second bin after READY: accepted, throttled and other errors."""
    last = max((float(t) for t, _ in attempts), default=0.0)
    bins = max(1, math.ceil(end if end is not None else last))
    out: dict[str, list[float]] = {"ok": [0] * bins, "throttled": [0] * bins, "error": [0] * bins}
    for t, code in attempts:
        i = int(float(t))
        if 0 <= i < bins:
            out[code][i] += 1
    return out


def count_between(sorted_times: Sequence[float], start: float, end: float) -> int:
    return bisect.bisect_left(sorted_times, end) - bisect.bisect_left(sorted_times, start)


def quota_share(accepted: int, rate: float, seconds: float, burst: float = 0.0) -> float:
    """The accepted rate over the quota's rate; with `burst`, over the most the quota allows
    in `seconds` from a full bucket (the emulator's holds one second of quota)."""
    most = rate * seconds + burst
    return accepted / most if most > 0 else 0.0


def time_to_reach(
    ok_times: Sequence[float],
    start: float,
    target: float,
    *,
    until: float,
    width: float = 1.0,
    step: float = 0.1,
) -> float | None:
    """Seconds after `start` until the accepted rate over the last `width` s reaches `target`.

    The window only counts calls accepted after `start`, so a rate carried over from
    before a change does not count; None if it is never reached before `until`.
    """
    t = start + step
    while t <= until + 1e-9:
        lo = max(start, t - width)
        rate = count_between(ok_times, lo, t) / (t - lo)
        if t - lo >= min(width, 0.5) and rate >= target:
            return round(t - start, 2)
        t += step
    return None


def phase_figures(
    attempts: Attempts, phases: Sequence[tuple[float, float, float]]
) -> list[dict[str, Any]]:
    """For each (start, end, available rate): share of the available rate used, throttles,
    and time until the accepted rate is back at ≥90% of the available rate."""
    ok = times(attempts, "ok")
    throttled = times(attempts, "throttled")
    out = []
    for start, end, rate in phases:
        accepted = count_between(ok, start, end)
        thr = count_between(throttled, start, end)
        out.append(
            {
                "start_s": start,
                "end_s": end,
                "available_per_s": rate,
                "accepted": accepted,
                "throttled": thr,
                "accepted_per_s": accepted / (end - start),
                "share_of_available": quota_share(accepted, rate, end - start),
                "throttled_share": thr / (accepted + thr) if accepted + thr else 0.0,
                "time_to_90_s": time_to_reach(ok, start, 0.9 * rate, until=end),
                "throttled_first_10_s": count_between(throttled, start, min(end, start + 10)),
            }
        )
    return out
