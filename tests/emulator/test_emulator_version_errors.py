"""Every per-version error code, each where the service gives it, with the state left alone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from emulator_helpers import client_for, ref_args, where

from bulkops.emulator import FaultConfig, QuotaConfig, RunningEmulator, run_emulator
from bulkops.model import PackageRef

MAVEN = PackageRef("maven", "com.acme.platform", "core")
COPY = {"domain": "acme", "sourceRepository": "main", "destinationRepository": "release"}


@pytest_asyncio.fixture
async def setup() -> AsyncIterator[tuple[RunningEmulator, Any, dict[str, str]]]:
    """Versions in every status of one maven package; 2.0.0 also exists in release."""
    async with run_emulator(quotas=QuotaConfig.off()) as emu, client_for(emu.endpoint_url) as c:
        revs = {
            status: emu.add_version("main", "maven", MAVEN.namespace, "core", version, status)
            for version, status in [
                ("1.0.0", "Published"),
                ("1.1.0-SNAPSHOT", "Unlisted"),
                ("1.2.0.Final", "Archived"),
                ("2.0.0-RC1", "Disposed"),
                ("2.0.0", "Published"),
            ]
        }
        emu.add_version("release", "maven", MAVEN.namespace, "core", "2.0.0")
        yield emu, c, revs


def _code(answer: dict[str, Any], version: str) -> str:
    assert version not in answer["successfulVersions"]
    code: str = answer["failedVersions"][version]["errorCode"]
    assert answer["failedVersions"][version]["errorMessage"]
    return code


@pytest.mark.asyncio
async def test_not_found_for_an_absent_version_in_every_batch_operation(setup: Any) -> None:
    _, c, _ = setup
    args = {**where(), **ref_args(MAVEN), "versions": ["9.9.9"]}
    for call, extra in [
        (c.delete_package_versions, {}),
        (c.dispose_package_versions, {}),
        (c.update_package_versions_status, {"targetStatus": "Archived"}),
    ]:
        assert _code(await call(**args, **extra), "9.9.9") == "NOT_FOUND"
    copied = await c.copy_package_versions(**COPY, **ref_args(MAVEN), versions=["9.9.9"])
    assert _code(copied, "9.9.9") == "NOT_FOUND"


@pytest.mark.asyncio
async def test_mismatched_status_when_expected_status_differs(setup: Any) -> None:
    emu, c, _ = setup
    answer = await c.delete_package_versions(
        **where(), **ref_args(MAVEN), versions=["1.0.0"], expectedStatus="Archived"
    )
    assert _code(answer, "1.0.0") == "MISMATCHED_STATUS"
    assert emu.version("main", "maven", MAVEN.namespace, "core", "1.0.0").status == "Published"


@pytest.mark.asyncio
async def test_mismatched_revision_when_the_pinned_revision_differs(setup: Any) -> None:
    emu, c, revs = setup
    wrong = {"1.0.0": revs["Archived"]}
    disposed = await c.dispose_package_versions(
        **where(), **ref_args(MAVEN), versions=["1.0.0"], versionRevisions=wrong
    )
    updated = await c.update_package_versions_status(
        **where(), **ref_args(MAVEN), versions=["1.0.0"], versionRevisions=wrong,
        targetStatus="Archived",
    )  # fmt: skip
    copied = await c.copy_package_versions(**COPY, **ref_args(MAVEN), versionRevisions=wrong)
    for answer in (disposed, updated, copied):
        assert _code(answer, "1.0.0") == "MISMATCHED_REVISION"
    assert emu.version("main", "maven", MAVEN.namespace, "core", "1.0.0").status == "Published"
    assert emu.version("release", "maven", MAVEN.namespace, "core", "1.0.0") is None


@pytest.mark.asyncio
async def test_already_exists_when_the_copy_target_exists(setup: Any) -> None:
    emu, c, _ = setup
    before = emu.version("release", "maven", MAVEN.namespace, "core", "2.0.0")
    answer = await c.copy_package_versions(**COPY, **ref_args(MAVEN), versions=["2.0.0"])
    assert _code(answer, "2.0.0") == "ALREADY_EXISTS"
    assert emu.version("release", "maven", MAVEN.namespace, "core", "2.0.0") == before


@pytest.mark.asyncio
async def test_not_allowed_to_revive_or_copy_a_disposed_version(setup: Any) -> None:
    emu, c, _ = setup
    for target in ("Published", "Unlisted", "Archived"):
        answer = await c.update_package_versions_status(
            **where(), **ref_args(MAVEN), versions=["2.0.0-RC1"], targetStatus=target
        )
        assert _code(answer, "2.0.0-RC1") == "NOT_ALLOWED"
    copied = await c.copy_package_versions(**COPY, **ref_args(MAVEN), versions=["2.0.0-RC1"])
    assert _code(copied, "2.0.0-RC1") == "NOT_ALLOWED"
    assert emu.version("main", "maven", MAVEN.namespace, "core", "2.0.0-RC1").status == "Disposed"


@pytest.mark.asyncio
async def test_skipped_versions_come_only_from_fault_injection_and_are_not_acted_on(
    setup: Any,
) -> None:
    emu, c, _ = setup
    before = emu.versions("main")
    emu.set_faults(FaultConfig(skip_rate=1.0))
    answer = await c.delete_package_versions(
        **where(), **ref_args(MAVEN), versions=["1.0.0", "2.0.0"]
    )
    assert {_code(answer, v) for v in ("1.0.0", "2.0.0")} == {"SKIPPED"}
    assert emu.versions("main") == before
    assert emu.counters()["faults"]["skipped_versions"] == 2


@pytest.mark.asyncio
async def test_one_call_mixes_successes_and_failures(setup: Any) -> None:
    _, c, revs = setup
    answer = await c.update_package_versions_status(
        **where(), **ref_args(MAVEN), versions=["1.1.0-SNAPSHOT", "1.2.0.Final", "2.0.0-RC1", "x"],
        targetStatus="Published",
    )  # fmt: skip
    assert answer["successfulVersions"] == {
        "1.1.0-SNAPSHOT": {"revision": revs["Unlisted"], "status": "Published"},
        "1.2.0.Final": {"revision": revs["Archived"], "status": "Published"},
    }
    assert {v: f["errorCode"] for v, f in answer["failedVersions"].items()} == {
        "2.0.0-RC1": "NOT_ALLOWED",
        "x": "NOT_FOUND",
    }
