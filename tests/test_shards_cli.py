"""A sharded job from the command line: N worker processes, each with its
JOB_COMPLETION_INDEX as a Kubernetes Indexed Job gives it, against the emulator and moto."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import anyio
import pytest

from bulkops.emulator import QuotaConfig, RunningEmulator, run_emulator
from tests.cli_support import cli_env, report_lines, rows_for, write_manifest
from tests.s3_support import keys, moto_s3, new_bucket

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]
__all__ = ["moto_s3"]  # the session fixture, used by name

QUICK = ("--concurrency", "4", "--grace-period", "3", "--call-timeout", "3", "--lease-ttl", "12")


def worker_env(emu: RunningEmulator, s3: str, index: int | None) -> dict[str, str]:
    env = cli_env(emu)
    env["AWS_ENDPOINT_URL_S3"] = s3
    if index is not None:
        env["JOB_COMPLETION_INDEX"] = str(index)
    return env


async def run(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    done = await anyio.run_process([sys.executable, "-m", "bulkops", *args], env=env, check=False)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def dispose(manifest: Path, job: str, shards: int) -> list[str]:
    return ["dispose", "--domain", "acme", "--repository", "main", "--manifest", str(manifest),
            "--checkpoint", job, "--shards", str(shards), "--execute", *QUICK]  # fmt: skip


def reported(out: str) -> list[tuple[str, str | None, str]]:
    return [
        (line["package"], line["namespace"], v)
        for line in report_lines(out)
        for v in [*line["successfulVersions"], *line["failedVersions"]]
    ]


async def test_four_workers_one_killed_and_restarted_report_every_version_exactly_once(
    tmp_path: Path, moto_s3: str
) -> None:
    bucket = new_bucket(moto_s3)
    job = f"s3://{bucket}/jobs/d"
    quotas = QuotaConfig.from_dict({"write": 40})
    async with run_emulator(generate=(24, 30), quotas=quotas, seed=7) as emu:
        chosen = sorted(emu.versions("main"))
        manifest = write_manifest(tmp_path / "m.jsonl", rows_for(chosen))
        args = dispose(manifest, job, 4)
        results: dict[int, tuple[int, str, str]] = {}

        async def worker(i: int) -> None:
            results[i] = await run(args, worker_env(emu, moto_s3, i))

        async def killed_then_restarted() -> None:
            env = worker_env(emu, moto_s3, 3)
            proc = await anyio.open_process([sys.executable, "-m", "bulkops", *args], env=env)
            async with proc:
                with anyio.fail_after(60):
                    while not [
                        k for k in keys(moto_s3, bucket, "jobs/d/shard-3-of-4/journal/records/")
                    ]:
                        await anyio.sleep(0.05)
                proc.send_signal(signal.SIGKILL)
                assert await proc.wait() == -signal.SIGKILL
            results[3] = await run(args, env)  # waits out its dead predecessor's lease

        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                for i in range(3):
                    tg.start_soon(worker, i)
                tg.start_soon(killed_then_restarted)
        for i, (code, _, err) in results.items():
            assert code == 0, (i, err)
        assert {emu.versions("main")[k].status for k in chosen} == {"Disposed"}
        env = worker_env(emu, moto_s3, None)
        code, out, err = await run(["report", job, "--format", "jsonl"], env)
        assert code == 0, err
        seen = reported(out)
        assert len(seen) == len(chosen)
        assert set(seen) == {(r.package, r.namespace, v) for r, v in chosen}
        code, out, err = await run(["status", job, "--format", "json"], env)
        assert code == 0, (out, err)
        status = json.loads(out)
        assert [s["state"] for s in status["shards"]] == ["done"] * 4
        assert sum(s["done"] for s in status["shards"]) == len(chosen)
        assert all(s["holder"] is None for s in status["shards"])
