"""Discovery against the emulator over real HTTP (pages, filters, retries) and a fake catalog."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from bulkops.aws.adapter import AwsRegistry
from bulkops.aws.session import AwsSettings, open_codeartifact
from bulkops.emulator import FaultConfig, Quota, QuotaConfig, RunningEmulator, run_emulator
from bulkops.engine.limits import RateTuning
from bulkops.model import PackageRef
from bulkops.registry import Location, PackageQuery, VersionPage, VersionSummary
from bulkops.selection.discover import Discovery, DiscoverySettings, Listing, PackageVersions

pytestmark = pytest.mark.asyncio

MAIN = Location("acme", "main")
FAST = DiscoverySettings(list_rate=2000, read_rate=2000, concurrency=8, seed=1)


@asynccontextmanager
async def registry(emu: RunningEmulator) -> AsyncIterator[AwsRegistry]:
    async with open_codeartifact(
        AwsSettings(endpoint_url=emu.endpoint_url, region="us-east-1")
    ) as reg:
        yield reg


async def collect(discovery: Discovery) -> list[PackageVersions]:
    found: list[PackageVersions] = []
    await discovery.run(found.append)
    return found


def flat(found: list[PackageVersions]) -> dict[tuple[PackageRef, str], tuple[str | None, str]]:
    return {(p.ref, v.version): (v.revision, v.status) for p in found for v in p.versions}


async def test_every_page_of_packages_and_versions_is_read() -> None:
    async with (
        run_emulator(generate=(40, 30), quotas=QuotaConfig.off()) as emu,
        registry(emu) as reg,
    ):
        settings = DiscoverySettings(page_size=7, list_rate=2000, read_rate=2000)
        discovery = Discovery(reg, MAIN, Listing(), settings)
        found = await collect(discovery)
        truth = emu.versions("main")
        assert flat(found) == {k: (v.revision, v.status) for k, v in truth.items()}
        assert len({p.ref for p in found}) == 40
        assert discovery.stats.calls["ListPackages"] == 6  # ceil(40 / 7)
        assert discovery.stats.calls["ListPackageVersions"] == 40 * 5  # ceil(30 / 7) each
        assert "DescribePackageVersion" not in discovery.stats.calls


async def test_packages_of_more_than_a_thousand_versions_are_read_to_the_last_page() -> None:
    async with (
        run_emulator(generate=(2, 1100), quotas=QuotaConfig.off()) as emu,
        registry(emu) as reg,
    ):
        discovery = Discovery(reg, MAIN, Listing(), FAST)
        found = await collect(discovery)
        assert [len(p.versions) for p in found] == [1100, 1100]
        assert discovery.stats.calls["ListPackageVersions"] == 4  # two pages of 1000 each
        assert flat(found).keys() == emu.versions("main").keys()


async def test_packages_arrive_in_listing_order_whatever_order_workers_finish() -> None:
    async with (
        run_emulator(generate=(30, 12), quotas=QuotaConfig.off()) as emu,
        registry(emu) as reg,
    ):
        found = await collect(Discovery(reg, MAIN, Listing(), FAST))
        assert [p.ref for p in found] == emu.packages("main")


async def test_the_namespace_filter_is_a_prefix_on_the_server_and_exact_on_the_client() -> None:
    async with run_emulator(quotas=QuotaConfig.off()) as emu, registry(emu) as reg:
        for ns in ("acme", "acme-web", "acme-platform"):
            emu.add_version("main", "npm", ns, "ui", "1.0.0")
        emu.add_version("main", "pypi", None, "acme", "1.0")
        listing = Listing(
            query=PackageQuery(format="npm", namespace="acme"),
            wants=lambda ref: ref.namespace == "acme",
        )
        discovery = Discovery(reg, MAIN, listing, FAST)
        found = await collect(discovery)
        assert [p.ref for p in found] == [PackageRef("npm", "acme", "ui")]
        assert discovery.stats.packages_listed == 3  # the server matched the prefix


async def test_status_and_origin_filters_are_sent_to_the_server() -> None:
    async with (
        run_emulator(generate=(10, 40), quotas=QuotaConfig.off()) as emu,
        registry(emu) as reg,
    ):
        listing = Listing(status="Archived")
        found = await collect(Discovery(reg, MAIN, listing, FAST))
        want = {k for k, v in emu.versions("main").items() if v.status == "Archived"}
        assert set(flat(found)) == want


async def test_publish_time_bands_come_from_a_binary_search_and_match_the_truth() -> None:
    async with (
        run_emulator(generate=(16, 60), quotas=QuotaConfig.off()) as emu,
        registry(emu) as reg,
    ):
        now = datetime.now(UTC)
        cutoffs = (now - timedelta(days=500), now - timedelta(days=90))
        listing = Listing(cutoffs=cutoffs, needs_times=lambda ref: True)
        discovery = Discovery(reg, MAIN, listing, FAST)
        found = await collect(discovery)
        truth = emu.versions("main")
        for p in found:
            assert p.publish_order == "probed"
            for v in p.versions:
                t = datetime.fromtimestamp(truth[(p.ref, v.version)].published_time, UTC)
                assert v.band == sum(c <= t for c in cutoffs), (p.ref, v.version)
        describes = discovery.stats.calls["DescribePackageVersion"]
        assert describes <= 16 * (2 + 2 * 7)  # 2 + k·log2(60) per package, not 60
        assert describes < len(truth) / 3


async def test_only_packages_whose_rules_need_times_are_described() -> None:
    async with (
        run_emulator(generate=(16, 20), quotas=QuotaConfig.off()) as emu,
        registry(emu) as reg,
    ):
        listing = Listing(
            cutoffs=(datetime.now(UTC),), needs_times=lambda ref: ref.format == "cargo"
        )
        discovery = Discovery(reg, MAIN, listing, FAST)
        await collect(discovery)
        cargo = sum(1 for r in emu.packages("main") if r.format == "cargo")
        assert 0 < discovery.stats.calls["DescribePackageVersion"] <= cargo * 7


async def quick(seconds: float) -> None:
    """Retry-After is whole seconds on the wire: tests wait a little instead."""
    await anyio.sleep(min(seconds, 0.01))


async def test_server_errors_on_every_read_operation_are_retried_to_an_exact_result() -> None:
    faults = FaultConfig(error_rate=0.25, include_reads=True, seed=3)
    async with (
        run_emulator(generate=(10, 25), quotas=QuotaConfig.off(), faults=faults) as emu,
        registry(emu) as reg,
    ):
        listing = Listing(
            cutoffs=(datetime.now(UTC) - timedelta(days=200),), needs_times=lambda r: True
        )
        settings = DiscoverySettings(page_size=10, list_rate=2000, read_rate=2000, seed=2)
        discovery = Discovery(reg, MAIN, listing, settings, sleep=quick)
        found = await collect(discovery)
        assert flat(found) == {k: (v.revision, v.status) for k, v in emu.versions("main").items()}
        assert discovery.stats.retries > 10
        assert sum(emu.counters()["faults"].values()) == discovery.stats.retries


async def test_throttled_list_calls_slow_down_and_are_retried_to_an_exact_result() -> None:
    quotas = replace(QuotaConfig.off(), list_versions=Quota(20, 1), list_packages=Quota(20, 1))
    async with run_emulator(generate=(6, 12), quotas=quotas) as emu, registry(emu) as reg:
        # a high floor keeps the paced rate from dropping to a crawl in a short test
        settings = DiscoverySettings(
            page_size=5, list_rate=1000, tuning=RateTuning(floor=40.0, window=0.25), seed=1
        )
        discovery = Discovery(reg, MAIN, Listing(), settings, sleep=quick)
        found = await collect(discovery)
        assert flat(found) == {k: (v.revision, v.status) for k, v in emu.versions("main").items()}
        assert discovery.stats.throttled > 0
        calls = discovery.stats.calls
        # 2 pages of packages, 3 of versions for each of 6, and one resend per throttle
        assert (
            calls["ListPackages"] + calls["ListPackageVersions"]
            == 2 + 18 + discovery.stats.throttled
        )


@dataclass
class FakeCatalog:
    """One package whose versions come back in a chosen order, with chosen publish times."""

    ref: PackageRef
    listed: list[tuple[str, datetime | None]]
    describes: list[str] = field(default_factory=list)

    async def list_packages_page(
        self, where: Location, query: PackageQuery, token: str | None, page_size: int
    ) -> tuple[list[PackageRef], str | None]:
        return [self.ref], None

    async def list_versions_page(
        self,
        where: Location,
        ref: PackageRef,
        *,
        status: str | None,
        origin_type: str | None,
        token: str | None,
        page_size: int,
    ) -> VersionPage:
        versions = tuple(
            VersionSummary(v, f"r-{v}", "Published", "INTERNAL") for v, _ in self.listed
        )
        return VersionPage(versions, None, None)

    async def describe_published(
        self, where: Location, ref: PackageRef, version: str
    ) -> datetime | None:
        self.describes.append(version)
        return dict(self.listed)[version]


DAY0 = datetime(2025, 1, 1, tzinfo=UTC)


def day(n: int) -> datetime:
    return DAY0 + timedelta(days=n)


async def test_a_newest_first_listing_is_detected_and_ranks_follow_publish_time() -> None:
    ref = PackageRef("generic", "tools", "fw")  # unreadable versions: order needs the times
    listed = [(f"build-{n}", day(n)) for n in range(20, 0, -1)]
    catalog = FakeCatalog(ref, listed)
    listing = Listing(cutoffs=(day(5) + timedelta(hours=1),), needs_times=lambda r: True)
    [pkg] = await collect(Discovery(catalog, MAIN, listing, FAST))
    ranks = {v.version: v.rank for v in pkg.versions}
    assert ranks["build-1"] == 0
    assert ranks["build-20"] == 19
    assert {v.version for v in pkg.versions if v.published_before(0)} == {
        f"build-{n}" for n in range(1, 6)
    }
    assert pkg.publish_order == "probed"
    assert len(catalog.describes) < 12


async def test_an_unsorted_listing_is_caught_and_every_version_described() -> None:
    ref = PackageRef("npm", None, "odd")
    order = [3, 9, 1, 7, 2, 8, 4, 6, 5, 10]
    catalog = FakeCatalog(ref, [(f"1.0.{n}", day(n)) for n in order])
    listing = Listing(cutoffs=(day(5) + timedelta(hours=1),), needs_times=lambda r: True)
    [pkg] = await collect(Discovery(catalog, MAIN, listing, FAST))
    assert pkg.publish_order == "described"
    assert {v.version for v in pkg.versions if v.published_before(0)} == {
        f"1.0.{n}" for n in range(1, 6)
    }
    assert sorted(v.rank for v in pkg.versions) == list(range(10))
    assert {v.version: v.rank for v in pkg.versions}["1.0.1"] == 0


async def test_a_version_without_a_publish_time_matches_no_time_filter() -> None:
    ref = PackageRef("npm", None, "gap")
    catalog = FakeCatalog(ref, [("1.0.0", day(1)), ("1.0.1", None), ("1.0.2", day(9))])
    listing = Listing(cutoffs=(day(5),), needs_times=lambda r: True)
    [pkg] = await collect(Discovery(catalog, MAIN, listing, FAST))
    before = {v.version: v.published_before(0) for v in pkg.versions}
    assert before == {"1.0.0": True, "1.0.1": False, "1.0.2": False}
