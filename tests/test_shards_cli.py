"""A sharded job from the command line: N worker processes, each with its
JOB_COMPLETION_INDEX as a Kubernetes Indexed Job gives it, against the emulator and moto."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import anyio
import pytest

from bulkops.emulator import QuotaConfig, RunningEmulator, run_emulator
from tests.cli_support import cli_env, log_events, report_lines, rows_for, sent, write_manifest
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


async def test_a_worker_with_another_manifest_exits_2_and_sends_nothing(
    tmp_path: Path, moto_s3: str
) -> None:
    bucket = new_bucket(moto_s3)
    job = f"s3://{bucket}/jobs/d"
    async with run_emulator(generate=(6, 10), seed=8) as emu:
        chosen = sorted(emu.versions("main"))
        first = write_manifest(tmp_path / "a.jsonl", rows_for(chosen[:20]))
        other = write_manifest(tmp_path / "b.jsonl", rows_for(chosen[20:40]))
        code, _, err = await run(dispose(first, job, 2), worker_env(emu, moto_s3, 0))
        assert code == 0, err
        before = sent(emu)
        code, _, err = await run(dispose(other, job, 2), worker_env(emu, moto_s3, 1))
        assert code == 2, err
        assert "started with another manifest" in err
        assert sent(emu) == before  # not one call
        assert not keys(moto_s3, bucket, "jobs/d/shard-1-of-2/")
        code, _, err = await run(dispose(first, job, 3), worker_env(emu, moto_s3, 1))
        assert code == 2 and "--shards 2, not 3" in err, err

        # shard 1 never ran: the job is unfinished until it is resumed, from anywhere
        reader = worker_env(emu, moto_s3, None)
        code, out, _ = await run(["status", job, "--format", "json"], reader)
        assert code == 75
        assert [s["state"] for s in json.loads(out)["shards"]] == ["done", "not started"]
        code, _, err = await run(["resume", job, "--shard-index", "1", *QUICK], reader)
        assert code == 0, err
        code, out, err = await run(["status", job], reader)
        assert code == 0, err
        assert "shard" in out and "done" in out
        code, out, err = await run(["report", job, "--format", "jsonl", "--exit-code"], reader)
        assert code == 0, err
        assert sorted(reported(out)) == sorted((r.package, r.namespace, v) for r, v in chosen[:20])


async def test_two_workers_for_one_index_one_works_and_the_other_waits_sending_nothing(
    tmp_path: Path, moto_s3: str
) -> None:
    bucket = new_bucket(moto_s3)
    job = f"s3://{bucket}/jobs/d"
    quotas = QuotaConfig.from_dict({"write": 10})  # slow enough for the second to find it busy
    async with run_emulator(generate=(8, 12), quotas=quotas, seed=9) as emu:
        chosen = sorted(emu.versions("main"))
        manifest = write_manifest(tmp_path / "m.jsonl", rows_for(chosen))
        args = dispose(manifest, job, 1)  # one shard: the job runs exactly as unsharded
        env = worker_env(emu, moto_s3, 0)
        proc = await anyio.open_process([sys.executable, "-m", "bulkops", *args], env=env)
        async with proc:
            with anyio.fail_after(30):
                while not keys(moto_s3, bucket, "jobs/d/shard-0-of-1/journal/records/"):
                    await anyio.sleep(0.05)
            code, _, err = await run(args, env)
            assert await proc.wait() == 0
        assert code == 0, err
        events = [e["event"] for e in log_events(err)]
        assert "shard_busy_waiting" in events and "shard_ended_elsewhere" in events
        assert "run_started" not in events and "resuming" not in events  # it sent nothing
        assert {emu.versions("main")[k].status for k in chosen} == {"Disposed"}
        code, out, err = await run(
            ["report", job, "--format", "jsonl"], worker_env(emu, moto_s3, None)
        )
        assert code == 0, err
        assert sorted(reported(out)) == sorted((r.package, r.namespace, v) for r, v in chosen)


@pytest.mark.parametrize(
    ("extra", "env", "says"),
    [
        (["--shards", "4", "--shard-index", "4"], {}, "out of range"),
        (["--shard-index", "1"], {}, "no --shards"),
        (["--shards", "2"], {"AWS_BATCH_JOB_ARRAY_INDEX": "1"}, "s3://"),
    ],
)
async def test_inconsistent_shard_options_exit_2_before_any_call(
    tmp_path: Path, extra: list[str], env: dict[str, str], says: str
) -> None:
    manifest = write_manifest(
        tmp_path / "m.jsonl", [{"format": "npm", "package": "a", "version": "1"}]
    )
    args = ["dispose", "--domain", "acme", "--repository", "main", "--manifest", str(manifest),
            "--execute", *extra]  # fmt: skip
    if "s3://" not in says:
        args += ["--checkpoint", "s3://nowhere-bucket/jobs/d"]
    full = {**os.environ, "AWS_ENDPOINT_URL_CODEARTIFACT": "http://127.0.0.1:9", **env}
    full["AWS_ENDPOINT_URL_S3"] = "http://127.0.0.1:9"  # nothing listens: no call is made
    code, _, err = await run(args, full)
    assert code == 2, err
    assert says in err
