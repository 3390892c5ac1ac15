"""What a new user trips on, end to end: each mistake ends in a clear line and its exit code."""

from __future__ import annotations

import io
import json
import os
import re
import socket
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest
from rich.console import Console

from bulkops.emulator import QuotaConfig, run_emulator
from bulkops.engine.types import Stats
from bulkops.jobs import progress
from bulkops.journal.journal import LocalFileStore
from tests.cli_support import bulkops, log_events, rows_for, write_manifest

pytestmark = pytest.mark.slow

JOB = ("--domain", "acme", "--repository", "main")


def _manifest(tmp_path: Path, emu_versions: dict[object, object], n: int = 5) -> Path:
    keys = sorted(emu_versions)[:n]  # type: ignore[type-var]
    return write_manifest(tmp_path / "m.jsonl", rows_for(keys))  # type: ignore[arg-type]


@pytest.mark.asyncio
@pytest.mark.parametrize("execute", [False, True], ids=["dry-run", "execute"])
async def test_an_unknown_aws_profile_in_the_environment_exits_2_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, execute: bool
) -> None:
    async with run_emulator(generate=(2, 3), quotas=QuotaConfig.off()) as emu:
        manifest = _manifest(tmp_path, emu.versions("main"))
        monkeypatch.setenv("AWS_PROFILE", "nonexistent")
        cp = tmp_path / "cp.journal"
        args = ["set-status", *JOB, "--manifest", manifest, "--target-status", "Archived"]
        run = await bulkops(emu, *args, *(["--execute", "--checkpoint", cp] if execute else []))
        assert run.code == 2, run.stderr
        assert "nonexistent" in run.stderr
        assert "Traceback" not in run.stderr
        assert not list(tmp_path.glob("cp.journal*"))
        for command in (["report", cp], ["resume", cp]):
            other = await bulkops(emu, *command)
            assert "Traceback" not in other.stderr
            assert other.code == 2, other.stderr


@pytest.mark.asyncio
async def test_aws_region_alone_is_enough_as_with_the_aws_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with run_emulator(generate=(2, 3), quotas=QuotaConfig.off()) as emu:
        manifest = _manifest(tmp_path, emu.versions("main"))
        monkeypatch.delenv("AWS_DEFAULT_REGION")
        cfg = tmp_path / "config"
        cfg.write_text("[default]\n")  # no region in the profile either
        monkeypatch.setenv("AWS_CONFIG_FILE", str(cfg))
        args = ["set-status", *JOB, "--manifest", manifest, "--target-status", "Archived"]
        without = await bulkops(emu, *args)
        assert without.code == 2
        assert "no AWS region" in without.stderr
        monkeypatch.setenv("AWS_REGION", "eu-west-1")
        dry = await bulkops(emu, *args)
        assert dry.code == 0, dry.stderr
        run = await bulkops(emu, *args, "--execute", "--checkpoint", tmp_path / "cp.journal")
        assert run.code == 0, run.stderr
        assert {v.status for v in emu.versions("main").values()} >= {"Archived"}


def test_the_progress_bars_last_frame_shows_the_final_count() -> None:
    out = io.StringIO()
    stats = Stats(versions_total=409)

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(progress.show_progress, stats, "bar", 10.0)
            await anyio.wait_all_tasks_blocked()  # the first frame is drawn: 0/409
            stats.versions_ok = 400
            stats.versions_failed = 9
            tg.cancel_scope.cancel()  # the run ends before the next frame

    console = Console(file=out, force_terminal=True, width=200)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(progress, "Console", lambda file: console)
        anyio.run(main)
    last = out.getvalue().rsplit("\r", 1)[-1]
    assert "409/409" in last, json.dumps(out.getvalue()[-300:])
    assert "100%" in last


@pytest.mark.asyncio
async def test_a_wrong_repository_fails_the_dry_run_and_a_run_leaves_nothing_to_resume(
    tmp_path: Path,
) -> None:
    async with run_emulator(generate=(2, 3), quotas=QuotaConfig.off()) as emu:
        manifest = _manifest(tmp_path, emu.versions("main"))
        cp = tmp_path / "cp.journal"
        job = ["--domain", "acme", "--manifest", manifest]
        wrong = ["set-status", *job, "--repository", "mian", "--target-status", "Archived"]
        dry = await bulkops(emu, *wrong)
        assert dry.code == 2, dry.stderr
        assert "acme/mian (--repository) does not exist" in dry.stderr
        run = await bulkops(emu, *wrong, "--execute", "--checkpoint", cp)
        assert run.code == 2, run.stderr
        assert "does not exist" in run.stderr
        assert "resume" not in run.stderr
        assert not list(tmp_path.glob("cp.journal*"))
        copy = ["copy", *job, "--source-repository", "main", "--destination-repository", "nope"]
        for args in (copy, [*copy, "--execute", "--checkpoint", cp]):
            failed = await bulkops(emu, *args)
            assert failed.code == 2, failed.stderr
            assert "acme/nope (--destination-repository) does not exist" in failed.stderr
        assert not list(tmp_path.glob("cp.journal*"))
        calls = emu.counters()["calls"]
        assert calls["DescribeRepository"] == 6  # 1 + 1 + 2 + 2: copy checks both
        assert sum(calls.values()) == calls["DescribeRepository"]  # nothing else was sent
        good = await bulkops(emu, *copy[:-1], "release")
        assert good.code == 0, good.stderr
        assert "acme/main and acme/release exist" in good.stdout


@pytest.mark.asyncio
async def test_an_empty_manifest_is_nothing_to_do_and_exits_0(tmp_path: Path) -> None:
    async with run_emulator(generate=(2, 3), quotas=QuotaConfig.off()) as emu:
        empty = tmp_path / "empty.csv"
        empty.write_text("format,namespace,package,version,revision\n")  # a plan that chose none
        jobs = tmp_path / "jobs"
        for args in (
            ["dispose", *JOB],
            ["dispose", *JOB, "--execute", "--checkpoint-dir", jobs],
            ["delete", *JOB, "--safe-delete", "--execute", "--checkpoint-dir", jobs],
            ["delete-packages", *JOB, "--execute", "--checkpoint-dir", jobs],
        ):
            run = await bulkops(emu, *args, "--manifest", empty)
            assert run.code == 0, run.stderr
            assert "Nothing to do: manifest" in run.stdout
            assert "error" not in run.stderr
        assert not jobs.exists() or not list(jobs.iterdir())
        assert sum(emu.counters()["calls"].values()) == 0


@pytest.mark.asyncio
async def test_a_file_that_is_no_journal_is_a_usage_error_and_a_damaged_one_is_corrupt(
    tmp_path: Path,
) -> None:
    async with run_emulator(generate=(2, 3), quotas=QuotaConfig.off()) as emu:
        manifest = _manifest(tmp_path, emu.versions("main"))
        for command in ("report", "resume"):
            run = await bulkops(emu, command, manifest)
            assert run.code == 2, run.stderr
            assert f"{manifest} is not a bulkops journal" in run.stderr
        cp = tmp_path / "cp.journal"
        job = ["dispose", *JOB, "--manifest", manifest, "--checkpoint", cp, "--chunk-size", "1"]
        assert (await bulkops(emu, *job, "--execute")).code == 0
        lines = cp.read_bytes().splitlines(keepends=True)
        lines[2] = b"{damaged\n"
        cp.write_bytes(b"".join(lines))
        damaged = await bulkops(emu, "report", cp)
        assert damaged.code == 1, damaged.stderr
        assert "is corrupt at line 3" in damaged.stderr


@pytest.mark.asyncio
async def test_a_checkpoint_and_its_chunk_list_moved_together_resume_without_the_manifest(
    tmp_path: Path,
) -> None:
    quotas = QuotaConfig.from_dict({"write": 5})
    async with run_emulator(generate=(4, 20), quotas=quotas) as emu:
        before = emu.versions("main")
        chosen = sorted(k for k, v in before.items() if v.status == "Published")
        manifest = write_manifest(tmp_path / "m.jsonl", rows_for(chosen))
        old = tmp_path / "old"
        old.mkdir()
        cp = old / "cp.journal"
        job = ["set-status", *JOB, "--target-status", "Archived", "--manifest", manifest]
        run = await bulkops(emu, *job, "--checkpoint", cp, "--execute", "--chunk-size", "5",
                            "--max-duration", "0.5")  # fmt: skip
        assert run.code == 75, run.stderr
        new = tmp_path / "elsewhere"
        new.mkdir()
        for name in ("cp.journal", "cp.journal.chunks"):
            (old / name).rename(new / name)
        manifest.unlink()
        emu.set_quotas(QuotaConfig.off())
        resumed = await bulkops(emu, "resume", new / "cp.journal")
        assert resumed.code == 0, resumed.stderr
        after = emu.versions("main")
        assert {after[k].status for k in chosen} == {"Archived"}


@pytest.mark.asyncio
async def test_a_checkpoint_held_by_a_live_run_exits_75_naming_the_holder(
    tmp_path: Path,
) -> None:
    async with run_emulator(generate=(2, 3), quotas=QuotaConfig.off()) as emu:
        manifest = _manifest(tmp_path, emu.versions("main"))
        cp = tmp_path / "cp.journal"
        job = ["dispose", *JOB, "--manifest", manifest, "--checkpoint", cp]
        assert (await bulkops(emu, *job, "--execute")).code == 0
        holder = LocalFileStore(cp)
        await holder.acquire()  # another run, alive, holds the lock
        try:
            for args in (["resume", cp], [*job, "--execute", "--resume-existing"]):
                run = await bulkops(emu, *args)
                assert run.code == 75, run.stderr
                assert f"in use by another bulkops run (pid {os.getpid()} on host " in run.stderr
                assert f"host {socket.gethostname()}, since 20" in run.stderr
        finally:
            await holder.release()
        assert (await bulkops(emu, "resume", cp)).code == 0


def test_the_kubernetes_example_bounds_retries_of_exit_75() -> None:
    job = (Path(__file__).resolve().parent.parent / "configs/kubernetes/job.yaml").read_text()
    assert re.search(r"^  activeDeadlineSeconds: \d+", job, re.M)
    assert re.search(r"^  backoffLimit: [1-9]", job, re.M)
    rule = re.search(r"- action: (\w+)\n(?:.*\n){3}\s+values: \[75\]", job)
    assert rule is not None and rule.group(1) == "Count"  # Ignore would restart forever


@pytest.mark.asyncio
async def test_a_plan_says_when_a_keep_rule_kept_nothing_inside_the_selection(
    tmp_path: Path,
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[select]]\nname = "old-line"\nstatus = ["Published"]\nversion_range = ">=1.0,<2.0"\n'
        '[[keep.rule]]\nname = "newest"\nlatest = 2\n'
        '[[keep.rule]]\nname = "newest-1x"\nversion_range = ">=1.0,<2.0"\nlatest = 1\n'
    )
    async with run_emulator(quotas=QuotaConfig.off()) as emu:
        for version in ["1.0.0", "1.1.0", "1.2.0", "2.0.0", "2.1.0"]:
            emu.add_version("main", "npm", "acme-web", "widgets", version)
        plan = ["plan", *JOB, "--status", "Published", "--keep-latest", "2"]
        ranged = await bulkops(emu, *plan, "--out", tmp_path / "a.jsonl",
                               "--version-range", ">=1.0,<2.0")  # fmt: skip
        assert ranged.code == 0, ranged.stderr
        # piped, so the warning is a JSON event with the advice in it
        (warning,) = [
            e for e in log_events(ranged.stderr) if e["event"] == "keep_rule_kept_nothing"
        ]
        assert warning["level"] == "warning"
        assert warning["criterion"] == "latest 2"
        assert "filters" in warning["advice"]
        whole = await bulkops(emu, *plan, "--out", tmp_path / "b.jsonl")
        assert whole.code == 0, whole.stderr
        assert "keep_rule_kept_nothing" not in whole.stderr
        # the same mistake in a rules file is named by its rule; the rule that keeps the
        # newest 1.x version did keep one, and is not named
        ruled = await bulkops(emu, "plan", *JOB, "--out", tmp_path / "c.jsonl", "--rules", rules)
        assert ruled.code == 0, ruled.stderr
        named = [
            e["criterion"]
            for e in log_events(ruled.stderr)
            if e["event"] == "keep_rule_kept_nothing"
        ]
        assert named == ["keep rule 'newest' (latest 2)"]


def archive_job(
    emu: Any, tmp_path: Path, settings: Any, chunk_size: int = 100
) -> tuple[list[Any], Any, Any]:
    """(keys, job, header) of a prepared set-status job archiving every Published version
    of the emulator's main repository, its journal at tmp_path/cp.journal."""
    from bulkops.aws.session import AwsSettings
    from bulkops.jobs.job import Job
    from bulkops.jobs.prepare import header_for, prepare
    from bulkops.model import JobSpec, Operation

    keys = sorted(k for k, v in emu.versions("main").items() if v.status == "Published")
    manifest = write_manifest(tmp_path / "m.jsonl", rows_for(keys))
    cp = tmp_path / "cp.journal"
    spec = JobSpec(Operation.SET_STATUS, "acme", "main", target_status="Archived",
                   chunk_size=chunk_size)  # fmt: skip
    prepared = anyio.run(partial(prepare, spec, str(manifest), manifest_format=None,
                                 spool_dir=tmp_path, checkpoint=cp))  # fmt: skip
    header = header_for(prepared)
    aws = AwsSettings(endpoint_url=emu.endpoint_url, region="us-east-1")
    return keys, Job(header.spec, cp, settings, aws), header


def test_a_journal_that_fills_its_disk_mid_run_stops_with_75_and_resumes_from_what_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from bulkops.emulator.threaded import emulator_thread
    from bulkops.engine.types import EngineSettings
    from bulkops.errors import JournalFull
    from bulkops.jobs.start import run_new, run_resume
    from bulkops.jobs.supervisor import supervise
    from bulkops.journal import local as journal_store

    with emulator_thread(generate=(4, 20), quotas=QuotaConfig.off()) as emu:
        settings = EngineSettings(concurrency=2, rate=1000, seed=1, commit_window=0)
        keys, job, header = archive_job(emu, tmp_path, settings, chunk_size=5)
        cp = job.checkpoint
        fsyncs = {"n": 0, "after_full": 0}
        real = journal_store.os.fsync

        def fsync(fd: int) -> None:
            fsyncs["n"] += 1
            if fsyncs["n"] > 4:  # the header and a few records are durable, then the disk fills
                fsyncs["after_full"] += 1
                raise OSError(errno.ENOSPC, "No space left on device")
            real(fd)

        monkeypatch.setattr(journal_store.os, "fsync", fsync)
        with pytest.raises(JournalFull, match="no space left on the journal's file system") as e:
            supervise(lambda stop, stats: run_new(job, header, stop, stats))
        assert e.value.exit_code == 75
        assert f"bulkops resume {cp}" in str(e.value)
        assert fsyncs["after_full"] == 1  # the failed fsync is never retried on the file
        monkeypatch.setattr(journal_store.os, "fsync", real)
        result = supervise(lambda stop, stats: run_resume(job, stop, stats))
        assert result.fatal is None and result.stopped is None
        after = emu.versions("main")
        assert {after[k].status for k in keys} == {"Archived"}


def test_a_disk_that_fills_on_the_journal_header_leaves_no_journal_and_nothing_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from bulkops.emulator.threaded import emulator_thread
    from bulkops.engine.types import EngineSettings
    from bulkops.errors import UsageError
    from bulkops.jobs.start import run_new
    from bulkops.jobs.supervisor import supervise
    from bulkops.journal import local as journal_store

    with emulator_thread(generate=(2, 10), quotas=QuotaConfig.off()) as emu:
        _, job, header = archive_job(emu, tmp_path, EngineSettings(rate=1000, seed=1))
        cp = job.checkpoint

        def full(fd: int, data: object) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(journal_store.os, "write", full)
        with pytest.raises(UsageError, match="no space left to create the journal") as e:
            supervise(lambda stop, stats: run_new(job, header, stop, stats))
        assert e.value.exit_code == 2 and "Nothing was sent" in str(e.value)
        assert not cp.exists()  # a retry creates the job afresh
        assert not list(tmp_path.glob("cp.journal*"))  # its chunk list went with it
        assert emu.counters()["calls"].get("UpdatePackageVersionsStatus", 0) == 0


def test_a_full_disk_before_any_call_is_a_clear_error_naming_the_chunk_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from bulkops.errors import UsageError
    from bulkops.jobs.prepare import prepare
    from bulkops.journal import atomic
    from bulkops.model import JobSpec, Operation, PackageRef

    rows = rows_for([(PackageRef("npm", None, f"p{i}"), "1.0.0") for i in range(50)])
    manifest = write_manifest(tmp_path / "m.jsonl", rows)
    cp = tmp_path / "cp.journal"

    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "write", full)
    spec = JobSpec(Operation.DISPOSE, "acme", "main")
    with pytest.raises(
        UsageError,
        match=r"no space left to write the chunk list .*cp.journal.chunks: it needs more than",
    ) as e:
        anyio.run(partial(prepare, spec, str(manifest), manifest_format=None,
                          spool_dir=tmp_path, checkpoint=cp))  # fmt: skip
    assert e.value.exit_code == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.jsonl"]  # nothing left behind
