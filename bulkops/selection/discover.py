"""Discovery: every package and version of a repository, every page, paced and retried, in order.

    ListPackages pages ──► bounded stream ──► N workers ──► reorder ──► on_package(package)
    (one producer)                      ListPackageVersions pages of one package,
                                        DescribePackageVersion only for publish times

ListPackageVersions gives version, revision, status and origin but no publish time, so
versions are listed with sortBy=PUBLISHED_TIME and a version's position is its publish
rank; where a rule needs times, `bulkops.selection.publish_times` places the cutoffs in that order
with a binary search of DescribePackageVersion calls instead of describing every version.

Each list operation and the reads have their own pace (`AdaptiveRate`) under the account's
quotas (200/s per list operation, 800/s reads, shared with every build pulling packages),
and the retries follow the engine's rules: throttles honour Retry-After and slow the
scope down, 5xx, 409 and network errors back off with jitter, and a call that exhausts
its budget stops discovery (a plan missing a page would be wrong, not partial).
Packages reach `on_package` in listing order, one package's versions at a time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TypeVar

import anyio
import structlog
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from bulkops.engine.limits import READ_RATE, AdaptiveRate, RateTuning, RetryPolicy
from bulkops.engine.retry import CallRunner, GaveUp
from bulkops.errors import (
    CallFailed,
    FatalCall,
    Throttled,
    first_error,
)
from bulkops.model import PackageRef
from bulkops.registry import Catalog, Location, PackageQuery, VersionSummary
from bulkops.selection.publish_times import UNKNOWN_BAND, Placement, PublishTimes

log = structlog.get_logger("bulkops.selection.discover")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DiscoverySettings:
    """Knobs of discovery; the rates stay under half the quotas by default."""

    concurrency: int = 8  # packages listed at once
    list_rate: float = 100.0  # calls/s per list operation (quota 200/s each, shared)
    read_rate: float = READ_RATE  # DescribePackageVersion calls/s (quota 800/s reads, shared)
    page_size: int = 1000  # maxResults (the API allows 1..1000)
    call_timeout: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    tuning: RateTuning = field(default_factory=RateTuning)
    seed: int | None = None


def _every(_: PackageRef) -> bool:
    return True


def _never(_: PackageRef) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class Listing:
    """What to list: server-side filters, the client-side package test, what needs times."""

    query: PackageQuery = field(default_factory=PackageQuery)
    wants: Callable[[PackageRef], bool] = _every
    status: str | None = None  # ListPackageVersions' status filter
    origin_type: str | None = None
    cutoffs: tuple[datetime, ...] = ()  # ascending, timezone-aware
    needs_times: Callable[[PackageRef], bool] = _never


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One listed version; `band` counts the cutoffs at or before its publish time."""

    version: str
    revision: str | None
    status: str
    origin_type: str | None
    rank: int  # 0 = published first
    band: int = 0  # UNKNOWN_BAND when its time is unknown; 0 when no cutoff was asked

    def published_before(self, cutoff_index: int) -> bool:
        """Published before cutoff number `cutoff_index` (0-based, of `Listing.cutoffs`)."""
        return self.band != UNKNOWN_BAND and self.band <= cutoff_index


@dataclass(slots=True)
class PackageVersions:
    """A package and all its listed versions, in the order the service listed them."""

    ref: PackageRef
    default_display_version: str | None
    versions: list[VersionInfo]
    publish_order: Placement = "listed"


@dataclass(slots=True)
class DiscoveryStats:
    """Calls and counts of one discovery, for the plan's summary."""

    calls: Counter[str] = field(default_factory=Counter)
    throttled: int = 0
    retries: int = 0
    packages: int = 0  # listed and wanted
    packages_listed: int = 0  # every package ListPackages returned
    versions: int = 0


class _Pacer:
    """Paced calls with the engine's retry rules (`CallRunner`), one pace per API operation."""

    def __init__(
        self,
        settings: DiscoverySettings,
        stats: DiscoveryStats,
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self.stats = stats
        t = settings.tuning
        self.scopes = {
            "ListPackages": AdaptiveRate("list_packages", settings.list_rate, tuning=t),
            "ListPackageVersions": AdaptiveRate("list_versions", settings.list_rate, tuning=t),
            "DescribePackageVersion": AdaptiveRate("read", settings.read_rate, tuning=t),
        }
        self._calls = CallRunner(
            settings.retry,
            settings.call_timeout,
            stopping=lambda: False,  # discovery writes nothing: an interrupt just ends it
            sleep=sleep,
            seed=settings.seed,
            on_retry=self._retried,
        )

    def _retried(self, failure: CallFailed) -> None:
        self.stats.retries += 1
        self.stats.throttled += isinstance(failure, Throttled)

    async def call(self, operation: str, fn: Callable[[], Awaitable[T]]) -> T:
        async def counted() -> T:
            self.stats.calls[operation] += 1
            return await fn()

        try:
            return await self._calls.call(self.scopes[operation], counted)
        except GaveUp as exc:
            raise FatalCall(f"{operation} kept failing: {exc.last}") from exc.last


class Discovery:
    """Lists a repository for a `Listing` and hands each package to `on_package`, in order."""

    def __init__(
        self,
        catalog: Catalog,
        where: Location,
        listing: Listing,
        settings: DiscoverySettings | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.catalog, self.where, self.listing = catalog, where, listing
        self.settings = settings or DiscoverySettings()
        self.stats = DiscoveryStats()
        self._pacer = _Pacer(self.settings, self.stats, sleep)
        self._results: dict[int, PackageVersions] = {}
        self._next = 0  # the next package `on_package` gets
        self._advanced = anyio.Event()

    async def run(
        self,
        on_package: Callable[[PackageVersions], None],
        refs: Iterable[PackageRef] | None = None,
    ) -> DiscoveryStats:
        """List everything (or only the packages `refs` names); return once every package
        went to `on_package`."""
        n = max(1, self.settings.concurrency)
        send, receive = anyio.create_memory_object_stream[tuple[int, PackageRef]](n)
        try:
            async with anyio.create_task_group() as tg:
                if refs is None:
                    tg.start_soon(self._produce, send)
                else:
                    tg.start_soon(self._feed, refs, send)
                async with receive:
                    for _ in range(n):
                        tg.start_soon(self._work, receive.clone(), on_package)
        except BaseExceptionGroup as group:  # one failure cancels the rest: report that one
            raise first_error(group) from None
        return self.stats

    async def _produce(self, send: ObjectSendStream[tuple[int, PackageRef]]) -> None:
        size = self.settings.page_size
        seq, token = 0, None
        async with send:
            while True:
                refs, token = await self._pacer.call(
                    "ListPackages",
                    partial(
                        self.catalog.list_packages_page, self.where, self.listing.query, token, size
                    ),
                )
                self.stats.packages_listed += len(refs)
                for ref in refs:
                    if self.listing.wants(ref):
                        await send.send((seq, ref))
                        seq += 1
                if not token:
                    return

    async def _feed(
        self, refs: Iterable[PackageRef], send: ObjectSendStream[tuple[int, PackageRef]]
    ) -> None:
        async with send:
            for seq, ref in enumerate(refs):
                await send.send((seq, ref))

    async def _work(
        self,
        receive: ObjectReceiveStream[tuple[int, PackageRef]],
        on_package: Callable[[PackageVersions], None],
    ) -> None:
        window = 4 * max(1, self.settings.concurrency)
        async with receive:
            async for seq, ref in receive:
                while seq >= self._next + window:  # bound what waits for a slow package
                    await self._advanced.wait()
                self._results[seq] = await self.package(ref)
                while self._next in self._results:
                    package = self._results.pop(self._next)
                    self._next += 1
                    self.stats.packages += 1
                    self.stats.versions += len(package.versions)
                    on_package(package)
                self._advanced.set()
                self._advanced = anyio.Event()

    async def package(self, ref: PackageRef) -> PackageVersions:
        """One package's versions (every page), with ranks and, where needed, time bands."""
        listed: list[VersionSummary] = []
        default: str | None = None
        token: str | None = None
        while True:
            page = await self._pacer.call(
                "ListPackageVersions",
                partial(
                    self.catalog.list_versions_page,
                    self.where,
                    ref,
                    status=self.listing.status,
                    origin_type=self.listing.origin_type,
                    token=token,
                    page_size=self.settings.page_size,
                ),
            )
            listed.extend(page.versions)
            default = default or page.default_display_version
            token = page.next_token
            if not token:
                break
        need_times = bool(self.listing.cutoffs) and self.listing.needs_times(ref)
        timing = PublishTimes(ref, listed, self.listing.cutoffs, partial(self.describe, ref))
        ranks, bands, how = await timing.placed(need_times)
        versions = [
            VersionInfo(s.version, s.revision, s.status, s.origin_type, ranks[i], bands[i])
            for i, s in enumerate(listed)
        ]
        return PackageVersions(ref, default, versions, how)

    async def describe(self, ref: PackageRef, version: str) -> datetime | None:
        return await self._pacer.call(
            "DescribePackageVersion",
            partial(self.catalog.describe_published, self.where, ref, version),
        )
