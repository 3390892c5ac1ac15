"""Publish ranks and time bands of one package's versions, with few DescribePackageVersion calls.

ListPackageVersions (sortBy=PUBLISHED_TIME) lists versions in publish order but without
their times; a rule on publish times only needs where each cutoff falls in that order.
A binary search finds it: about 2 + k·log2(n) describes for k cutoffs and n versions.

    placed(need_times) -> (ranks, bands, how)
      rank  0 = published first (the first and last versions are described to tell
            whether the service listed oldest or newest first, when the order matters)
      band  how many cutoffs are at or before the version's publish time; UNKNOWN_BAND
            when it has none (no time rule then matches it)
      how   "listed" (no describe), "probed" (binary search), "described" (every version:
            the probed times did not rise with the listed order, or one had no time)
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Literal, TypeAlias

import structlog

from bulkops.model import PackageRef
from bulkops.registry import VersionSummary
from bulkops.selection.versions import parse

log = structlog.get_logger("bulkops.selection.publish_times")
UNKNOWN_BAND = -1
Placement: TypeAlias = Literal["listed", "probed", "described"]


Describe = Callable[[str], Awaitable[datetime | None]]


class PublishTimes:
    """Publish ranks and time bands of one package's listed versions."""

    def __init__(
        self,
        ref: PackageRef,
        listed: Sequence[VersionSummary],
        cutoffs: Sequence[datetime],
        describe: Describe,
    ) -> None:
        self.ref, self.listed, self.cutoffs, self.describe = ref, listed, cutoffs, describe
        self.times: dict[int, datetime | None] = {}  # list index -> probed time

    async def _time(self, index: int) -> datetime | None:
        if index not in self.times:
            self.times[index] = await self.describe(self.listed[index].version)
        return self.times[index]

    async def placed(self, need_times: bool) -> tuple[list[int], list[int], Placement]:
        """(ranks, bands, how) per listed version; see the module docstring."""
        n = len(self.listed)
        need_times = need_times and bool(self.cutoffs)
        unreadable = any(parse(self.ref.format, s.version) is None for s in self.listed)
        if n < 2 or not (need_times or unreadable):
            bands = [await self._band_of(i) for i in range(n)] if need_times else [0] * n
            return list(range(n)), bands, "listed"
        first, last = await self._time(0), await self._time(n - 1)
        ascending = not (first is not None and last is not None and first > last)
        ranks = list(range(n)) if ascending else list(range(n - 1, -1, -1))
        if not need_times:
            return ranks, [0] * n, "probed"
        boundaries = await self._boundaries(ascending)
        if boundaries is None:
            return await self._described()
        return ranks, [bisect.bisect_right(boundaries, ranks[i]) for i in range(n)], "probed"

    async def _band_of(self, index: int) -> int:
        t = await self._time(index)
        return UNKNOWN_BAND if t is None else bisect.bisect_right(self.cutoffs, t)

    async def _boundaries(self, ascending: bool) -> list[int] | None:
        """Per cutoff, how many versions (in publish order) come before it; None if unsure."""
        n = len(self.listed)

        def index(position: int) -> int:
            return position if ascending else n - 1 - position

        out: list[int] = []
        lo = 0
        for cutoff in self.cutoffs:
            hi = n
            while lo < hi:
                mid = (lo + hi) // 2
                t = await self._time(index(mid))
                if t is None:
                    return None
                if t >= cutoff:
                    hi = mid
                else:
                    lo = mid + 1
            out.append(lo)
        probed = sorted((index(i), t) for i, t in self.times.items())
        times = [t for _, t in probed]
        if any(t is None for t in times) or any(
            a > b  # type: ignore[operator]  # None was ruled out above
            for a, b in itertools.pairwise(times)
        ):
            log.warning("publish_order_unsorted", package=str(self.ref), note="describing all")
            return None
        return out

    async def _described(self) -> tuple[list[int], list[int], Placement]:
        times = [await self._time(i) for i in range(len(self.listed))]
        order = sorted(range(len(times)), key=lambda i: (times[i] is not None, times[i] or 0, i))
        ranks = [0] * len(times)
        for rank, i in enumerate(order):
            ranks[i] = rank
        return ranks, [await self._band_of(i) for i in range(len(times))], "described"
