"""A job checkpointed to S3 (moto's server) end to end from the command line, against the
emulator: killed with SIGKILL, resumed from another directory, reported exactly once."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import anyio
import pytest

from bulkops.emulator import FaultConfig, QuotaConfig, RunningEmulator, run_emulator
from tests.cli_support import cli_env, log_events, report_lines, rows_for, write_manifest
from tests.s3_support import keys, moto_s3, new_bucket

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]
__all__ = ["moto_s3"]  # the session fixture, used by name

FAULTS = FaultConfig(latency_ms=5, jitter=0.5, error_rate=0.03, lost_rate=0.03)
QUICK = ("--concurrency", "4", "--grace-period", "3", "--call-timeout", "3", "--lease-ttl", "12")


def s3_env(emu: RunningEmulator, s3: str) -> dict[str, str]:
    env = cli_env(emu)
    env["AWS_ENDPOINT_URL_S3"] = s3
    return env


async def run(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    done = await anyio.run_process(
        [sys.executable, "-m", "bulkops", *args], env=env, cwd=cwd, check=False
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def kill_after_records(
    args: list[str], env: dict[str, str], cwd: Path, s3: str, bucket: str, records: int
) -> int:
    """Start bulkops; SIGKILL it once S3 holds `records` record objects of its journal."""
    proc = await anyio.open_process([sys.executable, "-m", "bulkops", *args], env=env, cwd=cwd)
    async with proc:
        with anyio.fail_after(90):
            while proc.returncode is None:
                found = [k for k in keys(s3, bucket) if "/journal/records/" in k]
                if len(found) >= records:
                    proc.send_signal(signal.SIGKILL)
                    break
                await anyio.sleep(0.05)
        return await proc.wait()


async def test_an_s3_checkpoint_survives_sigkill_and_resumes_from_anywhere_exactly_once(
    tmp_path: Path, moto_s3: str
) -> None:
    bucket = new_bucket(moto_s3)
    job = f"s3://{bucket}/jobs/archive"
    first_dir, other_dir = tmp_path / "machine-a", tmp_path / "machine-b"
    first_dir.mkdir()
    other_dir.mkdir()
    quotas = QuotaConfig.from_dict({"write": 40})
    async with run_emulator(generate=(20, 30), quotas=quotas, faults=FAULTS, seed=3) as emu:
        before = emu.versions("main")
        chosen = sorted(k for k, v in before.items() if v.status == "Published")
        manifest = write_manifest(first_dir / "m.jsonl", rows_for(chosen))
        env = s3_env(emu, moto_s3)
        start = ["set-status", "--domain", "acme", "--repository", "main", "--manifest",
                 str(manifest), "--target-status", "Archived", "--checkpoint", job,
                 "--execute", *QUICK]  # fmt: skip
        code = await kill_after_records(start, env, first_dir, moto_s3, bucket, records=2)
        assert code == -signal.SIGKILL
        assert not list(first_dir.glob("*.journal*"))  # nothing of the job is kept locally
        manifest.unlink()  # the other machine has no manifest: the chunk list is the input

        # the dead run's lease holds the job until it expires: a resume now is refused (75)
        # and names the holder; once it has expired, the next resume takes the job over
        code, _, err = await run(["resume", job, *QUICK], env, other_dir)
        assert code == 75, err
        assert "pid" in err
        for _ in range(20):
            await anyio.sleep(1.0)
            code, _, err = await run(["resume", job, *QUICK], env, other_dir)
            if code != 75:
                break
        assert code == 0, err
        assert any(e["event"] == "lease_taken_over" for e in log_events(err)), err

        after = emu.versions("main")
        assert {after[k].status for k in chosen} == {"Archived"}
        assert all(after[k] == before[k] for k in after if k not in set(chosen))
        code, out, err = await run(["report", job, "--format", "jsonl"], env, other_dir)
        assert code == 0, err
        seen = [
            (line["package"], line["namespace"], v)
            for line in report_lines(out)
            for v in [*line["successfulVersions"], *line["failedVersions"]]
        ]
        assert len(seen) == len(chosen)  # every version exactly once
        assert set(seen) == {(r.package, r.namespace, v) for r, v in chosen}
        assert not list(other_dir.iterdir())  # and nothing was written there either


async def test_a_second_run_on_a_live_s3_checkpoint_refuses_with_75_naming_the_holder(
    tmp_path: Path, moto_s3: str
) -> None:
    bucket = new_bucket(moto_s3)
    job = f"s3://{bucket}/jobs/dispose"
    quotas = QuotaConfig.from_dict({"write": 5})  # slow enough to still be running
    async with run_emulator(generate=(10, 20), quotas=quotas, seed=5) as emu:
        chosen = sorted(emu.versions("main"))
        manifest = write_manifest(tmp_path / "m.jsonl", rows_for(chosen))
        env = s3_env(emu, moto_s3)
        args = ["dispose", "--domain", "acme", "--repository", "main", "--manifest",
                str(manifest), "--checkpoint", job, "--execute", *QUICK]  # fmt: skip
        proc = await anyio.open_process([sys.executable, "-m", "bulkops", *args], env=env)
        async with proc:
            with anyio.fail_after(60):
                while not [k for k in keys(moto_s3, bucket) if k.endswith("journal/lease")]:
                    await anyio.sleep(0.05)
            code, _, err = await run(["resume", job, *QUICK], env, tmp_path)
            proc.send_signal(signal.SIGTERM)
            assert await proc.wait() == 75  # drained, resumable
        assert code == 75, err
        assert "pid" in err and "since" in err
