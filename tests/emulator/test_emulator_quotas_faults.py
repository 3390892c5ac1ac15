"""Quotas answer 429 with Retry-After; injected faults are seeded and hit the state as promised."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError
from emulator_helpers import client_for, ref_args, where

from bulkops.emulator import FaultConfig, Quota, QuotaConfig, RunningEmulator, run_emulator
from bulkops.emulator.faults import FaultInjector
from bulkops.emulator.quota import Quotas
from bulkops.model import PackageRef

NPM = PackageRef("npm", "acme", "ui-kit")
VERSIONS = [f"1.0.{i}" for i in range(10)]


async def _seeded(emu: RunningEmulator) -> None:
    for v in VERSIONS:
        emu.add_version("main", "npm", "acme", "ui-kit", v)


@pytest.mark.asyncio
async def test_a_throttled_call_gets_retry_after_seconds_and_leaves_state_alone() -> None:
    quotas = QuotaConfig(write=Quota(0.01, burst=1))
    async with run_emulator(quotas=quotas) as emu, client_for(emu.endpoint_url) as c:
        await _seeded(emu)
        await c.delete_package_versions(**where(), **ref_args(NPM), versions=["1.0.0"])
        with pytest.raises(c.exceptions.ThrottlingException) as err:
            await c.delete_package_versions(**where(), **ref_args(NPM), versions=["1.0.1"])
        response = err.value.response
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 429
        # one token at 0.01/s takes 100 s, less the moment between the two calls
        assert response["retryAfterSeconds"] in (99, 100)
        assert emu.version("main", "npm", "acme", "ui-kit", "1.0.1") is not None
        counters = emu.counters()
        assert counters["throttled"]["DeletePackageVersions"] == 1
        assert counters["calls"]["DeletePackageVersions"] == 2


@pytest.mark.asyncio
async def test_copy_has_its_own_quota_on_top_of_the_write_quota() -> None:
    quotas = QuotaConfig(copy=Quota(0.001, burst=1))
    async with run_emulator(quotas=quotas) as emu, client_for(emu.endpoint_url) as c:
        await _seeded(emu)
        args = {"domain": "acme", "sourceRepository": "main", "destinationRepository": "release"}
        await c.copy_package_versions(**args, **ref_args(NPM), versions=["1.0.0"])
        with pytest.raises(c.exceptions.ThrottlingException) as err:
            await c.copy_package_versions(**args, **ref_args(NPM), versions=["1.0.1"])
        assert err.value.response["retryAfterSeconds"] >= 1
        await c.dispose_package_versions(**where(), **ref_args(NPM), versions=["1.0.1"])
        assert emu.version("release", "npm", "acme", "ui-kit", "1.0.1") is None


@pytest.mark.asyncio
async def test_quotas_change_while_serving() -> None:
    async with run_emulator() as emu, client_for(emu.endpoint_url) as c:
        await _seeded(emu)
        await c.list_packages(**where())
        emu.set_quotas({"list_packages": {"rate": 0.001, "burst": 1}})
        await c.list_packages(**where())
        with pytest.raises(c.exceptions.ThrottlingException):
            await c.list_packages(**where())
        emu.set_quotas(QuotaConfig.off())
        await c.list_packages(**where())


def test_token_buckets_refill_at_the_rate_and_keep_tokens_across_a_cut() -> None:
    now = [0.0]
    quotas = Quotas(QuotaConfig(write=Quota(10, burst=2)), clock=lambda: now[0])
    assert quotas.acquire("DeletePackage") is None
    assert quotas.acquire("DisposePackageVersions") is None
    assert quotas.acquire("DeletePackageVersions") == (1, "write")
    now[0] += 0.1
    assert quotas.acquire("DeletePackageVersions") is None
    assert quotas.acquire("DescribePackageVersion") is None  # read: its own full bucket
    now[0] += 10.0
    quotas.configure(QuotaConfig().scaled(0.6))  # 40% of every quota taken away
    assert quotas.config.write == Quota(60.0)
    assert quotas.config.copy == Quota(3.0)
    taken = sum(quotas.acquire("UpdatePackageVersionsStatus") is None for _ in range(10))
    assert taken == 2  # the two tokens carried over, no fresh burst


def test_latency_varies_within_the_jitter_and_repeats_for_a_seed() -> None:
    config = FaultConfig(latency_ms=100, jitter=0.2)
    plans = [FaultInjector(config, 3) for _ in range(2)]
    delays = [[p.plan("DeletePackage", 0).delay for _ in range(50)] for p in plans]
    assert delays[0] == delays[1]
    assert all(0.08 <= d <= 0.12 for d in delays[0])
    assert len(set(delays[0])) > 40


async def _outcomes(seed: int) -> tuple[list[str], dict[str, int]]:
    faults = FaultConfig(
        error_rate=0.15, conflict_rate=0.15, drop_rate=0.1, lost_rate=0.1, skip_rate=0.3,
        seed=seed,
    )  # fmt: skip
    async with (
        run_emulator(quotas=QuotaConfig.off(), faults=faults) as emu,
        client_for(emu.endpoint_url) as c,
    ):
        await _seeded(emu)
        seen = []
        for _ in range(40):
            try:
                answer = await c.dispose_package_versions(
                    **where(), **ref_args(NPM), versions=VERSIONS[:4]
                )
                seen.append(f"ok:{sorted(answer['failedVersions'])}")
            except ClientError as exc:
                seen.append(exc.response["Error"]["Code"])
            except BotoCoreError as exc:
                seen.append(type(exc).__name__)
        return seen, emu.counters()["faults"]


@pytest.mark.asyncio
async def test_the_same_seed_gives_the_same_fault_sequence() -> None:
    first, counts = await _outcomes(11)
    again, _ = await _outcomes(11)
    other, _ = await _outcomes(12)
    assert first == again
    assert first != other
    assert {"InternalServerException", "ConflictException"} <= set(first)
    assert counts["error"] == first.count("InternalServerException")
    assert counts["drop"] + counts["lost"] == sum(
        not s.startswith("ok") and not s.endswith("Exception") for s in first
    )
    assert any("1.0." in s for s in first if s.startswith("ok"))  # some SKIPPED versions


@pytest.mark.asyncio
@pytest.mark.parametrize(("kind", "applied"), [("drop", False), ("lost", True)])
async def test_dropped_connections_apply_the_change_only_when_the_answer_is_lost(
    kind: str, applied: bool
) -> None:
    faults = FaultConfig(**{f"{kind}_rate": 1.0})
    async with (
        run_emulator(quotas=QuotaConfig.off(), faults=faults) as emu,
        client_for(emu.endpoint_url) as c,
    ):
        await _seeded(emu)
        with pytest.raises(BotoCoreError):
            await c.delete_package_versions(**where(), **ref_args(NPM), versions=["1.0.0"])
        gone = emu.version("main", "npm", "acme", "ui-kit", "1.0.0") is None
        assert gone is applied
        assert emu.counters()["faults"][kind] == 1


@pytest.mark.asyncio
async def test_a_slow_answer_outlasts_the_client_timeout_after_applying_the_change() -> None:
    faults = FaultConfig(slow_rate=1.0, slow_seconds=60)
    async with (
        run_emulator(quotas=QuotaConfig.off(), faults=faults) as emu,
        client_for(emu.endpoint_url, read_timeout=0.3) as c,
    ):
        await _seeded(emu)
        with pytest.raises(BotoCoreError, match="timeout"):
            await c.dispose_package_versions(**where(), **ref_args(NPM), versions=["1.0.0"])
        assert emu.version("main", "npm", "acme", "ui-kit", "1.0.0").status == "Disposed"
    # leaving the block did not wait out the 60 s answer


@pytest.mark.asyncio
async def test_faults_spare_reads_unless_asked(emu: RunningEmulator, client: Any) -> None:
    emu.set_faults(FaultConfig(error_rate=1.0))
    await client.list_packages(**where())
    emu.set_faults({"include_reads": True})
    with pytest.raises(client.exceptions.InternalServerException):
        await client.list_packages(**where())


@pytest.mark.asyncio
async def test_counters_record_the_most_requests_in_flight() -> None:
    faults = FaultConfig(latency_ms=150)  # holds each call long enough to overlap
    async with (
        run_emulator(quotas=QuotaConfig.off(), faults=faults) as emu,
        client_for(emu.endpoint_url) as c,
    ):
        await _seeded(emu)
        async with asyncio.TaskGroup() as tg:
            for v in VERSIONS[:6]:
                tg.create_task(c.dispose_package_versions(**where(), **ref_args(NPM), versions=[v]))
        counters = emu.counters()
        assert counters["max_in_flight"] == 6
        assert counters["in_flight"] == 0
        assert counters["calls"]["DisposePackageVersions"] == 6
