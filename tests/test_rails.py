"""Safety rails: caps and keep-min refuse before any write; breaker and canary stop a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bulkops.aws.session import AwsSettings
from bulkops.emulator import QuotaConfig, RunningEmulator, run_emulator
from bulkops.engine.types import EngineSettings, RunResult, Stats, StopSignal
from bulkops.errors import Refused
from bulkops.jobs.guarded import run_guarded
from bulkops.jobs.job import Job
from bulkops.jobs.prepare import header_for, prepare
from bulkops.jobs.rails import Breaker, Rails, canary_verdict, check_caps
from bulkops.jobs.start import work_items
from bulkops.journal.journal import LocalFileStore, iter_records
from bulkops.model import ChunkOutcome, JobSpec, Operation, PackageRef
from tests.cli_support import bulkops, log_events, rows_for, write_manifest

WRITES = ("DeletePackageVersions", "DisposePackageVersions", "UpdatePackageVersionsStatus")
REF = PackageRef("npm", None, "lib")


def spec(op: Operation, **kw: Any) -> JobSpec:
    return JobSpec(op, domain="acme", repository="main", **kw)


async def run(
    emu: RunningEmulator,
    tmp_path: Path,
    job: JobSpec,
    rows: list[dict[str, Any]],
    rails: Rails,
    concurrency: int = 4,
) -> RunResult:
    manifest = write_manifest(tmp_path / "m.jsonl", rows)
    checkpoint = tmp_path / "cp.journal"
    prepared = await prepare(
        job, str(manifest), manifest_format=None, spool_dir=tmp_path, checkpoint=checkpoint
    )
    header = header_for(prepared)
    stats = Stats()
    settings = EngineSettings(concurrency=concurrency, rate=1000, seed=1)
    aws = AwsSettings(endpoint_url=emu.endpoint_url, region="us-east-1")
    items = work_items(header, LocalFileStore(checkpoint), None, stats)
    run = Job(job, checkpoint, settings, aws, rails)
    return await run_guarded(run, header, items, StopSignal(), stats, prepared.summary)


async def tripped_events(journal: Path) -> list[tuple[str, str]]:
    """(rail, reason) of the journal's `rails_tripped` events."""
    return [
        (r["data"]["rail"], r["data"]["reason"])
        async for r in iter_records(LocalFileStore(journal))
        if r.get("type") == "event" and r.get("kind") == "rails_tripped"
    ]


def writes(emu: RunningEmulator) -> int:
    return sum(emu.counters()["calls"].get(op, 0) for op in WRITES)


def ladder(emu: RunningEmulator, n: int, ref: PackageRef = REF) -> list[tuple[PackageRef, str]]:
    for i in range(n):
        emu.add_version("main", ref.format, ref.namespace, ref.package, f"1.0.{i}")
    return [(ref, f"1.0.{i}") for i in range(n)]


@pytest.mark.asyncio
async def test_max_versions_refuses_before_any_call_and_leaves_no_journal(tmp_path: Path) -> None:
    async with run_emulator(quotas=QuotaConfig.off()) as emu:
        keys = ladder(emu, 12)
        with pytest.raises(Refused, match="more than --max-versions 10"):
            await run(
                emu, tmp_path, spec(Operation.DISPOSE), rows_for(keys), Rails(max_versions=10)
            )
        assert sum(emu.counters()["calls"].values()) == 0
        assert not (tmp_path / "cp.journal").exists()


@pytest.mark.asyncio
async def test_max_packages_refuses_a_job_touching_too_many_packages(tmp_path: Path) -> None:
    async with run_emulator(generate=(5, 3), quotas=QuotaConfig.off()) as emu:
        keys = sorted(emu.versions("main"))
        with pytest.raises(Refused, match="5 packages, more than --max-packages 4"):
            await run(emu, tmp_path, spec(Operation.DELETE), rows_for(keys), Rails(max_packages=4))
        assert sum(emu.counters()["calls"].values()) == 0


@pytest.mark.asyncio
async def test_keep_min_refuses_a_job_that_leaves_a_package_too_few_versions(
    tmp_path: Path,
) -> None:
    async with run_emulator(quotas=QuotaConfig.off()) as emu:
        keys = ladder(emu, 5)
        other = ladder(emu, 5, PackageRef("pypi", None, "other"))
        job = rows_for(keys[:4] + other[:1])
        with pytest.raises(Refused) as info:
            await run(emu, tmp_path, spec(Operation.DELETE), job, Rails(keep_min=2))
        assert "npm:lib (5 → 1)" in str(info.value)
        assert "pypi:other" not in str(info.value)
        assert writes(emu) == 0
        assert emu.counters()["calls"]["ListPackageVersions"] == 2
        assert not (tmp_path / "cp.journal").exists()


@pytest.mark.asyncio
async def test_keep_min_does_not_count_versions_already_disposed_as_removed(
    tmp_path: Path,
) -> None:
    async with run_emulator(quotas=QuotaConfig.off()) as emu:
        keys = ladder(emu, 5)
        for _, v in keys[:2]:
            emu.add_version("main", "npm", None, "lib", v, "Disposed")
        # removes 1.0.0 and 1.0.1 (Disposed already) and 1.0.2: 1.0.3 and 1.0.4 stay
        result = await run(
            emu, tmp_path, spec(Operation.DELETE), rows_for(keys[:3]), Rails(keep_min=2)
        )
        assert result.stopped is None
        assert sorted(v for _, v in emu.versions("main")) == ["1.0.3", "1.0.4"]


@pytest.mark.asyncio
async def test_keep_min_for_archiving_counts_the_published_versions_left(tmp_path: Path) -> None:
    async with run_emulator(quotas=QuotaConfig.off()) as emu:
        keys = ladder(emu, 4)
        emu.add_version("main", "npm", None, "lib", "1.0.3", "Unlisted")
        job = spec(Operation.SET_STATUS, target_status="Archived")
        with pytest.raises(Refused, match=r"npm:lib \(3 → 1\)"):
            await run(emu, tmp_path, job, rows_for(keys[:2]), Rails(keep_min=2))


@pytest.mark.asyncio
async def test_the_breaker_stops_a_run_whose_first_chunks_mostly_fail(tmp_path: Path) -> None:
    async with run_emulator(quotas=QuotaConfig.off()) as emu:
        real = ladder(emu, 6)
        ghosts = [(REF, f"9.9.{i}") for i in range(20)]  # never published: NOT_FOUND
        job = spec(Operation.DISPOSE, chunk_size=2)
        rails = Rails(breaker=0.5, breaker_window=3)
        result = await run(emu, tmp_path, job, rows_for(ghosts + real), rails, concurrency=1)
        assert result.stopped is not None
        assert result.stopped.startswith("breaker: ")
        assert result.tripped
        assert writes(emu) < 10  # of 13 chunks: the watched 3, and those already on their way
        assert all(emu.versions("main")[k].status == "Published" for k in real)
        assert await tripped_events(tmp_path / "cp.journal") == [("breaker", result.stopped)]


@pytest.mark.asyncio
async def test_the_breaker_lets_a_run_with_few_failures_finish(tmp_path: Path) -> None:
    async with run_emulator(quotas=QuotaConfig.off()) as emu:
        real = ladder(emu, 18)
        job = spec(Operation.DISPOSE, chunk_size=3)
        rails = Rails(breaker=0.5, breaker_window=3)
        result = await run(emu, tmp_path, job, rows_for([(REF, "9.9.9"), *real]), rails)
        assert result.stopped is None
        assert all(emu.versions("main")[k].status == "Disposed" for k in real)


@pytest.mark.asyncio
async def test_a_failing_canary_chunk_stops_the_run_after_one_call(tmp_path: Path) -> None:
    async with run_emulator(quotas=QuotaConfig.off()) as emu:
        keys = ladder(emu, 30)
        revisions = {k: emu.versions("main")[k].revision for k in keys} | {
            k: "c3RhbGU=" for k in keys[:10]
        }
        job = spec(Operation.SET_STATUS, target_status="Archived", chunk_size=10)
        result = await run(emu, tmp_path, job, rows_for(keys, revisions), Rails(canary=True))
        assert result.stopped is not None
        assert result.stopped.startswith("canary: 10 versions of the first chunk failed")
        assert "MISMATCHED_REVISION" in result.stopped
        assert result.tripped
        assert await tripped_events(tmp_path / "cp.journal") == [("canary", result.stopped)]
        assert writes(emu) == 1
        assert all(v.status == "Published" for v in emu.versions("main").values())


@pytest.mark.asyncio
async def test_a_successful_canary_fans_out_to_the_rest(tmp_path: Path) -> None:
    async with run_emulator(quotas=QuotaConfig.off()) as emu:
        keys = ladder(emu, 30)
        job = spec(Operation.SET_STATUS, target_status="Archived", chunk_size=10)
        result = await run(emu, tmp_path, job, rows_for(keys), Rails(canary=True))
        assert result.stopped is None
        assert writes(emu) == 3
        assert all(v.status == "Archived" for v in emu.versions("main").values())


def outcome(cid: str, ok: int, failed: int, **kw: Any) -> ChunkOutcome:
    return ChunkOutcome(
        cid,
        REF,
        1,
        successful={f"ok{i}": {"status": "Disposed"} for i in range(ok)},
        failed={f"bad{i}": {"errorCode": "NOT_FOUND"} for i in range(failed)},
        **kw,
    )


def test_the_breaker_watches_only_its_window_and_waits_for_enough_chunks() -> None:
    breaker = Breaker(0.5, window=3, min_chunks=2)
    assert breaker.observe(outcome("a", 0, 10)) is None  # one chunk is no verdict
    assert breaker.observe(outcome("b", 10, 0)) is None  # 10 of 20: not more than half
    assert breaker.observe(outcome("c", 0, 1)) is not None
    late = Breaker(0.5, window=1, min_chunks=1)
    assert late.observe(outcome("a", 10, 0)) is None
    assert late.observe(outcome("b", 0, 100)) is None  # past the window


def test_the_breaker_counts_settled_and_retried_versions_as_not_failed() -> None:
    breaker = Breaker(0.1, window=5, min_chunks=1)
    o = outcome("a", 1, 3, settled={"bad0": "already_absent"}, retry=("bad1", "bad2"))
    assert breaker.observe(o) is None
    assert (breaker.versions, breaker.failed) == (2, 0)


def test_the_canary_verdict_needs_every_version_done() -> None:
    assert canary_verdict([outcome("a", 5, 0)]) is None
    assert canary_verdict([outcome("a", 4, 1, settled={"bad0": "already_absent"})]) is None
    assert "1 NOT_FOUND" in (canary_verdict([outcome("a", 4, 1)]) or "")
    pending = outcome("a", 4, 1, retry=("bad0",))
    assert "did not finish" in (canary_verdict([pending]) or "")
    assert canary_verdict([pending, outcome("a", 1, 0)]) is not None  # bad0 still pending


def test_caps_name_packages_for_package_jobs() -> None:
    with pytest.raises(Refused, match="3 packages, more than --max-versions 2"):
        check_caps(Rails(max_versions=2), versions=3, packages=3, unit="packages")
    check_caps(Rails(max_versions=3, max_packages=3), versions=3, packages=3)


def test_a_refusal_inside_a_supervised_run_surfaces_as_itself_not_a_group() -> None:
    from bulkops.jobs.supervisor import supervise

    async def refuse(stop: StopSignal, stats: Stats) -> RunResult:
        raise Refused("--keep-min 3: no")

    with pytest.raises(Refused, match="keep-min"):
        supervise(refuse)


# ---- a tripped rail ends the command with 3, which batch systems do not retry ---------


@pytest.mark.asyncio
async def test_a_breaker_trip_exits_3_and_says_how_to_go_on(tmp_path: Path) -> None:
    async with run_emulator(quotas=QuotaConfig.off()) as emu:
        real = ladder(emu, 6)
        ghosts = [(REF, f"9.9.{i}") for i in range(20)]
        manifest = write_manifest(tmp_path / "m.jsonl", rows_for(ghosts + real))
        cp = tmp_path / "cp.journal"
        run = await bulkops(emu, "dispose", "--domain", "acme", "--repository", "main",
                            "--manifest", manifest, "--chunk-size", "2", "--concurrency", "1",
                            "--breaker", "0.5", "--breaker-window", "3",
                            "--checkpoint", cp, "--execute", "--log-format", "console")  # fmt: skip
        assert run.code == 3, run.stderr
        assert "A safety rail stopped the job (breaker: " in run.stderr
        assert f"bulkops report {cp} --failed-only" in run.stderr
        assert f"bulkops resume {cp}" in run.stderr
        assert all(emu.versions("main")[k].status == "Published" for k in real)
        # the operator decided: resume runs the rest without the rail
        resumed = await bulkops(emu, "resume", cp)
        assert resumed.code == 3, resumed.stderr  # the ghosts stay NOT_FOUND
        assert "safety rail" not in resumed.stderr
        assert all(emu.versions("main")[k].status == "Disposed" for k in real)


@pytest.mark.asyncio
async def test_a_failing_canary_in_a_safe_delete_exits_3(tmp_path: Path) -> None:
    async with run_emulator(quotas=QuotaConfig.off()) as emu:
        keys = ladder(emu, 20)
        revisions = {k: emu.versions("main")[k].revision for k in keys} | {keys[0]: "c3RhbGU="}
        manifest = write_manifest(tmp_path / "m.jsonl", rows_for(keys, revisions))
        cp = tmp_path / "cp.journal"
        run = await bulkops(emu, "delete", "--domain", "acme", "--repository", "main",
                            "--manifest", manifest, "--safe-delete", "--canary",
                            "--chunk-size", "10", "--checkpoint", cp, "--execute")  # fmt: skip
        assert run.code == 3, run.stderr
        (stop,) = [e for e in log_events(run.stderr) if e["event"] == "run_stopped_by_rail"]
        assert stop["reason"].startswith("canary: ")
        assert stop["exit_code"] == 3
        assert stop["report_command"] == f"bulkops report {cp}.archive.journal --failed-only"
        assert stop["resume_command"].startswith("bulkops delete --domain acme")
        assert len(emu.versions("main")) == 20


def test_a_breaker_window_narrower_than_its_minimum_still_trips() -> None:
    breaker = Breaker(0.2, window=2)
    ref = PackageRef("npm", None, "x")
    bad = {"1": {"errorCode": "NOT_FOUND", "errorMessage": "absent"}}
    verdicts = [breaker.observe(ChunkOutcome(f"c{i}", ref, 1, failed=bad), 20) for i in range(4)]
    assert verdicts[1] is not None
