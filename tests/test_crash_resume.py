"""Kill -9 at several points of a faulty run, resume until done: nothing lost, nothing extra."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import anyio
import pytest

from bulkops.emulator import FaultConfig, QuotaConfig, run_emulator
from tests.cli_support import bulkops, cli_env, report_lines, rows_for, write_manifest

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

FAULTS = FaultConfig(
    latency_ms=5, jitter=0.5, error_rate=0.05, lost_rate=0.05, drop_rate=0.03, skip_rate=0.02
)
QUICK = ("--concurrency", "4", "--grace-period", "5", "--call-timeout", "5")


def journal_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


async def kill_when(args: list[str], env: dict[str, str], journal: Path, lines: int) -> int:
    """Start bulkops, SIGKILL it once the journal holds `lines` lines; its exit code."""
    async with await anyio.open_process([sys.executable, "-m", "bulkops", *args], env=env) as proc:
        with anyio.fail_after(60):
            while journal_lines(journal) < lines and proc.returncode is None:
                await anyio.sleep(0.02)
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
        return await proc.wait()


async def test_sigkill_at_several_points_then_resume_ends_exactly_at_the_plan(
    tmp_path: Path,
) -> None:
    quotas = QuotaConfig.from_dict({"write": 60})
    async with run_emulator(generate=(24, 60), quotas=quotas, faults=FAULTS, seed=7) as emu:
        before = emu.versions("main")
        chosen = sorted(before)[::2]
        manifest = write_manifest(tmp_path / "m.jsonl", rows_for(chosen))
        cp = tmp_path / "cp.journal"
        env = cli_env(emu)
        first = ["delete", "--domain", "acme", "--repository", "main", "--manifest", str(manifest)]
        code = await kill_when(
            [*first, "--checkpoint", str(cp), "--execute", *QUICK], env, cp, lines=3
        )
        assert code == -signal.SIGKILL
        kills = 1
        for lines in (journal_lines(cp) + 3, journal_lines(cp) + 6):
            code = await kill_when(["resume", str(cp), *QUICK], env, cp, lines=lines)
            kills += code == -signal.SIGKILL
        assert kills >= 2  # the run was really cut more than once
        for _ in range(10):  # a chunk may give up under faults (exit 75): resume again
            run = await bulkops(emu, "resume", cp, *QUICK)
            if run.code != 75:
                break
        assert run.code == 0, run.stderr

        after = emu.versions("main")
        assert set(after) == set(before) - set(chosen)  # the plan, exactly
        assert all(after[k] == before[k] for k in after)  # nothing outside it touched
        report = await bulkops(emu, "report", cp, "--format", "jsonl")
        seen = [
            (line["package"], line["namespace"], v)
            for line in report_lines(report.stdout)
            for v in [*line["successfulVersions"], *line["failedVersions"]]
        ]
        assert len(seen) == len(chosen)  # every version exactly once
        assert set(seen) == {(r.package, r.namespace, v) for r, v in chosen}
        assert all(not line["failedVersions"] for line in report_lines(report.stdout))
        faults = emu.counters()["faults"]
        assert faults["lost"] + faults["error"] + faults["drop"] > 0  # the faults were real


async def test_sigterm_drains_exits_75_and_a_resume_finishes(tmp_path: Path) -> None:
    quotas = QuotaConfig.from_dict({"write": 10})
    async with run_emulator(generate=(40, 50), quotas=quotas) as emu:
        before = emu.versions("main")
        manifest = write_manifest(tmp_path / "m.jsonl", rows_for(sorted(before)))
        cp = tmp_path / "cp.journal"
        args = ["set-status", "--domain", "acme", "--repository", "main"]
        args += ["--manifest", str(manifest), "--target-status", "Unlisted"]
        args += ["--checkpoint", str(cp), "--execute", "--rate", "10"]
        proc = await anyio.open_process([sys.executable, "-m", "bulkops", *args], env=cli_env(emu))
        async with proc:
            with anyio.fail_after(60):
                while journal_lines(cp) < 3:
                    await anyio.sleep(0.02)
            proc.send_signal(signal.SIGTERM)
            with anyio.fail_after(30):
                code = await proc.wait()
            assert proc.stderr is not None
            stderr = (await proc.stderr.receive()).decode() if code else ""
        assert code == 75, stderr
        lines = journal_lines(cp)
        assert 3 <= lines < 12  # stopped early, with what was in flight journaled
        run = await bulkops(emu, "resume", cp)
        assert run.code == 3, run.stderr  # Disposed versions cannot be unlisted: permanent
        statuses = {k: v.status for k, v in emu.versions("main").items()}
        assert all(s in ("Unlisted", "Disposed") for s in statuses.values())


async def test_a_second_signal_cancels_calls_in_flight_and_still_exits_75(tmp_path: Path) -> None:
    slow = FaultConfig(latency_ms=3000)
    async with run_emulator(generate=(10, 20), quotas=QuotaConfig.off(), faults=slow) as emu:
        manifest = write_manifest(tmp_path / "m.jsonl", rows_for(sorted(emu.versions("main"))))
        cp = tmp_path / "cp.journal"
        args = ["set-status", "--domain", "acme", "--repository", "main", "--manifest"]
        args += [str(manifest), "--target-status", "Archived", "--checkpoint", str(cp)]
        args += ["--execute", "--progress", "off"]
        proc = await anyio.open_process([sys.executable, "-m", "bulkops", *args], env=cli_env(emu))
        async with proc:
            with anyio.fail_after(30):
                while b"run_started" not in (cp.read_bytes() if cp.exists() else b""):
                    await anyio.sleep(0.02)
                while emu.counters()["in_flight"] == 0:  # the calls are on the wire
                    await anyio.sleep(0.02)
            proc.send_signal(signal.SIGINT)
            await anyio.sleep(0.3)
            proc.send_signal(signal.SIGINT)
            with anyio.fail_after(20):
                code = await proc.wait()
            assert proc.stderr is not None
            stderr = b""
            async for chunk in proc.stderr:
                stderr += chunk
        text = stderr.decode()
        assert code == 75, text[-2000:]
        assert "Traceback" not in text
        assert f"bulkops resume {cp}" in text
        assert b'"kind":"run_ended"' in cp.read_bytes().splitlines()[-1]  # its last word kept
        run = await bulkops(emu, "resume", cp, "--progress", "off")
        assert run.code == 3, run.stderr  # Disposed versions cannot be archived


async def test_status_updates_whose_answers_were_lost_end_done_and_exit_0(tmp_path: Path) -> None:
    lossy = FaultConfig(lost_rate=0.5, seed=5)
    async with run_emulator(generate=(4, 30), quotas=QuotaConfig.off(), faults=lossy) as emu:
        published = sorted(k for k, v in emu.versions("main").items() if v.status == "Published")
        manifest = write_manifest(tmp_path / "m.jsonl", rows_for(published))
        cp = tmp_path / "cp.journal"
        run = await bulkops(
            emu, "set-status", "--domain", "acme", "--repository", "main", "--manifest",
            manifest, "--target-status", "Archived", "--expected-status", "Published",
            "--chunk-size", "5", "--checkpoint", cp, "--execute",
        )  # fmt: skip
        assert run.code == 0, run.stderr
        assert {emu.versions("main")[k].status for k in published} == {"Archived"}
        lines = report_lines((await bulkops(emu, "report", cp, "--format", "jsonl")).stdout)
        applied = [v for line in lines for v in line.get("alreadyAppliedVersions", [])]
        assert applied  # the lost answers' changes were found in place
        assert all(not line["failedVersions"] for line in lines)
        assert sum(len(line["successfulVersions"]) for line in lines) == len(published)


async def test_sigterm_at_high_latency_drains_within_the_grace_period_and_resumes_once(
    tmp_path: Path,
) -> None:
    far = FaultConfig(latency_ms=600, jitter=1 / 3)  # 400-800 ms per call
    quotas = QuotaConfig.from_dict({"write": 100})
    async with run_emulator(generate=(20, 50), quotas=quotas, faults=far) as emu:
        before = emu.versions("main")
        chosen = sorted(k for k, v in before.items() if v.status != "Disposed")
        manifest = write_manifest(tmp_path / "m.jsonl", rows_for(chosen))
        cp = tmp_path / "cp.journal"
        args = ["set-status", "--domain", "acme", "--repository", "main", "--manifest"]
        args += [str(manifest), "--target-status", "Unlisted", "--chunk-size", "5"]
        args += ["--checkpoint", str(cp), "--execute", "--grace-period", "3", "--progress", "off"]
        proc = await anyio.open_process([sys.executable, "-m", "bulkops", *args], env=cli_env(emu))
        async with proc:
            with anyio.fail_after(30):
                while emu.counters()["in_flight"] <= 16:  # auto has gone past the old fixed 16
                    await anyio.sleep(0.02)
            proc.send_signal(signal.SIGTERM)
            with anyio.fail_after(3 + 2):  # the grace period, and the exit itself
                code = await proc.wait()
        assert code == 75
        assert b'"kind":"run_ended"' in cp.read_bytes().splitlines()[-1]
        run = await bulkops(emu, "resume", cp, "--progress", "off")
        assert run.code == 0, run.stderr
        after = emu.versions("main")
        assert all(after[k].status == "Unlisted" for k in chosen)
        report = await bulkops(emu, "report", cp, "--format", "jsonl")
        seen = [
            (line["package"], line["namespace"], v)
            for line in report_lines(report.stdout)
            for v in line["successfulVersions"]
        ]
        assert sorted(seen) == sorted((r.package, r.namespace, v) for r, v in chosen)  # once each
