"""Ground truth over the admin path, export → load round trips, and the data generator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from emulator_helpers import client_for, ref_args, where

from bulkops.aws.shapes import violation
from bulkops.emulator import QuotaConfig, RunningEmulator, run_emulator
from bulkops.emulator.generate import generate
from bulkops.emulator.snapshot import export_state, load_state
from bulkops.emulator.state import State, check_ref
from bulkops.model import FORMATS


@pytest.mark.asyncio
async def test_admin_paths_serve_state_counters_and_live_config(
    emu: RunningEmulator, client: Any
) -> None:
    ref = emu.packages("main")[0]
    await client.list_package_versions(**where(), **ref_args(ref))
    async with aiohttp.ClientSession(emu.endpoint_url) as http:
        async with http.get("/_emulator/state") as resp:
            assert await resp.json() == emu.export_state()
        async with http.get("/_emulator/counters") as resp:
            counters = await resp.json()
        assert counters["calls"]["ListPackageVersions"] == 1
        assert counters["versions_by_status"]["acme/main"]["Published"] > 0
        assert counters["max_in_flight"] >= 1
        change = {"quotas": {"write": {"rate": 60}}, "faults": {"error_rate": 0.25}}
        async with http.post("/_emulator/config", json=change) as resp:
            config = await resp.json()
        assert config["quotas"]["write"] == {"rate": 60.0, "burst": None}
        assert config["quotas"]["copy"] is None  # the fixture runs with quotas off
        assert config["faults"]["error_rate"] == 0.25
        assert emu.faults.error_rate == 0.25 and emu.quotas.write is not None
        async with http.post("/_emulator/config", json={"faults": {"bogus": 1}}) as resp:
            assert resp.status == 400
        assert emu.faults.error_rate == 0.25
        async with http.post("/_emulator/reset-counters") as resp:
            assert (await resp.json())["calls"]["ListPackageVersions"] == 0
        async with http.get("/_emulator/nothing") as resp:
            assert resp.status == 404


@pytest.mark.asyncio
async def test_an_exported_state_loads_back_identically(tmp_path: Path) -> None:
    async with run_emulator(generate=(16, 30), quotas=QuotaConfig.off()) as emu:
        exported = emu.export_state()
        before = emu.versions("main")
    seed_file = tmp_path / "state.json"
    seed_file.write_text(json.dumps(exported))
    async with run_emulator(seed_file=seed_file, quotas=QuotaConfig.off()) as emu:
        assert emu.export_state() == exported
        assert emu.versions("main") == before


@pytest.mark.asyncio
async def test_a_hand_written_seed_file_needs_only_names(tmp_path: Path) -> None:
    seed = {
        "domains": {
            "acme": {
                "repositories": {
                    "main": {
                        "packages": [
                            {"format": "pypi", "package": "acme-utils", "versions": ["1.0"]},
                        ]
                    },
                    "release": {},
                }
            }
        }
    }
    seed_file = tmp_path / "seed.json"
    seed_file.write_text(json.dumps(seed))
    async with (
        run_emulator(seed_file=seed_file) as emu,
        client_for(emu.endpoint_url) as c,
    ):
        got = await c.describe_package_version(
            **where(), format="pypi", package="acme-utils", packageVersion="1.0"
        )
        assert got["packageVersion"]["status"] == "Published"
        assert len(got["packageVersion"]["revision"]) == 44


def test_a_seed_breaking_the_namespace_rules_is_refused() -> None:
    bad = {"domains": {"acme": {"repositories": {"main": {"packages": [
        {"format": "maven", "package": "core", "versions": ["1.0"]}]}}}}}  # fmt: skip
    with pytest.raises(ValueError, match="namespace"):
        load_state(bad)


def test_generated_data_is_deterministic_realistic_and_valid() -> None:
    def make(seed: int) -> State:
        state = State(seed=seed)
        generate(state, 40, 60, now=1_700_000_000.0)
        return state

    state = make(4)
    assert export_state(state) == export_state(make(4))
    assert export_state(state) != export_state(make(5))
    truth = state.versions("main")
    refs = {ref for ref, _ in truth}
    assert {ref.format for ref in refs} == set(FORMATS)
    assert len(truth) == 40 * 60
    for ref in refs:
        check_ref(ref)
    for (_, name), v in truth.items():
        assert violation("PackageVersion", name) is None
        assert len(v.revision) == 44
        assert 1_700_000_000 - 3.1 * 365 * 86400 <= v.published_time <= 1_700_000_000
    names = {name for _, name in truth}
    assert any("-rc." in n or "-beta." in n for n in names)  # semver pre-releases
    assert any(n.endswith(("rc1", "a1", "b1")) or ".post" in n for n in names)  # PEP 440
    assert any(n.endswith("-SNAPSHOT") for n in names)  # Maven
    assert {v.status for v in truth.values()} >= {"Published", "Unlisted", "Archived", "Disposed"}
    assert any(ref.format == "maven" and "." in (ref.namespace or "") for ref in refs)
