"""Each operation end to end: the CLI as a subprocess, checked against the emulator's truth."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from bulkops.emulator import QuotaConfig, RunningEmulator, run_emulator
from bulkops.manifest.scan import scan_manifest
from bulkops.model import Operation
from tests.cli_support import bulkops, log_events, report_lines, rows_for, sent, write_manifest

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

JOB = ("--domain", "acme")


async def test_delete_removes_exactly_the_manifest_versions_and_reports_each_once(
    tmp_path: Path,
) -> None:
    async with run_emulator(generate=(16, 40), quotas=QuotaConfig.off()) as emu:
        before = emu.versions("main")
        chosen = sorted(k for k, v in before.items() if v.status == "Published")[::3]
        manifest = write_manifest(tmp_path / "m.jsonl", rows_for(chosen))
        cp = tmp_path / "cp.journal"
        run = await bulkops(
            emu,
            "delete",
            *JOB,
            "--repository",
            "main",
            "--manifest",
            manifest,
            "--checkpoint",
            cp,
            "--execute",
        )
        assert run.code == 0, run.stderr
        after = emu.versions("main")
        assert set(after) == set(before) - set(chosen)
        assert all(after[k] == before[k] for k in after)  # nothing else touched
        assert oct(cp.stat().st_mode & 0o777) == "0o600"

        report = await bulkops(emu, "report", cp, "--format", "jsonl")
        assert report.code == 0
        seen = [
            (line["format"], line["namespace"], line["package"], v)
            for line in report_lines(report.stdout)
            for v in [*line["successfulVersions"], *line["failedVersions"]]
        ]
        assert len(seen) == len(chosen)
        assert set(seen) == {(r.format, r.namespace, r.package, v) for r, v in chosen}
        assert all(not line["failedVersions"] for line in report_lines(report.stdout))


async def test_without_execute_nothing_is_sent_and_the_plan_is_printed(tmp_path: Path) -> None:
    async with run_emulator(generate=(4, 10), quotas=QuotaConfig.off()) as emu:
        manifest = write_manifest(tmp_path / "m.jsonl", rows_for(sorted(emu.versions("main"))))
        run = await bulkops(emu, "delete", *JOB, "--repository", "main", "--manifest", manifest)
        assert run.code == 0
        assert "40 versions of 4 packages" in run.stdout
        assert "Nothing was sent" in run.stdout
        assert sent(emu) == 0


async def test_dispose_with_expected_status_fails_the_others_and_exits_3(tmp_path: Path) -> None:
    async with run_emulator(generate=(10, 30), quotas=QuotaConfig.off()) as emu:
        before = emu.versions("main")
        manifest = write_manifest(tmp_path / "m.jsonl", rows_for(sorted(before)))
        cp = tmp_path / "cp.journal"
        run = await bulkops(
            emu,
            "dispose",
            *JOB,
            "--repository",
            "main",
            "--manifest",
            manifest,
            "--expected-status",
            "Published",
            "--checkpoint",
            cp,
            "--execute",
        )
        assert run.code == 3, run.stderr
        after = emu.versions("main")
        published = {k for k, v in before.items() if v.status == "Published"}
        assert 0 < len(published) < len(before)
        assert {k for k, v in after.items() if v.status == "Disposed"} == published | {
            k for k, v in before.items() if v.status == "Disposed"
        }
        failed = await bulkops(emu, "report", cp, "--failed-only", "--format", "csv")
        assert failed.code == 0
        rows = list(csv.DictReader(io.StringIO(failed.stdout)))
        assert {(r["package"], r["version"]) for r in rows} == {
            (ref.package, v) for (ref, v) in set(before) - published
        }
        retry = tmp_path / "retry.csv"
        retry.write_text(failed.stdout)
        summary = scan_manifest(retry, operation=Operation.DISPOSE)  # a valid manifest again
        assert summary.targets == len(before) - len(published)


async def test_set_status_with_pinned_revisions_never_touches_a_changed_version(
    tmp_path: Path,
) -> None:
    async with run_emulator(generate=(6, 20), quotas=QuotaConfig.off()) as emu:
        before = emu.versions("main")
        keys = sorted(k for k, v in before.items() if v.status == "Published")
        revisions = {k: before[k].revision for k in keys}
        manifest = write_manifest(tmp_path / "m.jsonl", rows_for(keys, revisions))
        ref, version = keys[0]
        # the version is republished after the plan was made: a new revision
        emu.add_version("main", ref.format, ref.namespace, ref.package, version)
        cp = tmp_path / "cp.journal"
        run = await bulkops(
            emu,
            "set-status",
            *JOB,
            "--repository",
            "main",
            "--manifest",
            manifest,
            "--target-status",
            "Archived",
            "--checkpoint",
            cp,
            "--execute",
        )
        assert run.code == 3, run.stderr
        after = emu.versions("main")
        assert after[(ref, version)].status == "Published"
        assert all(after[k].status == "Archived" for k in keys[1:])
        report = report_lines((await bulkops(emu, "report", cp, "--format", "jsonl")).stdout)
        failures = {v: f["errorCode"] for line in report for v, f in line["failedVersions"].items()}
        assert failures == {version: "MISMATCHED_REVISION"}


async def test_copy_copies_with_the_same_revisions_and_a_rerun_counts_identical_copies_done(
    tmp_path: Path,
) -> None:
    async with run_emulator(generate=(5, 12), quotas=QuotaConfig.off()) as emu:
        source = emu.versions("main")
        keys = sorted(
            k for k, v in source.items() if v.status in ("Published", "Unlisted", "Archived")
        )
        manifest = write_manifest(tmp_path / "m.jsonl", rows_for(keys))
        args = (
            "copy",
            *JOB,
            "--source-repository",
            "main",
            "--destination-repository",
            "release",
            "--manifest",
            manifest,
            "--execute",
        )
        first = await bulkops(emu, *args, "--checkpoint", tmp_path / "one.journal")
        assert first.code == 0, first.stderr
        dest = emu.versions("release")
        assert set(dest) == set(keys)
        assert all(dest[k].revision == source[k].revision for k in keys)
        again = await bulkops(emu, *args, "--checkpoint", tmp_path / "two.journal")
        assert again.code == 0, again.stderr
        report = report_lines(
            (await bulkops(emu, "report", tmp_path / "two.journal", "--format", "jsonl")).stdout
        )
        identical = sorted(v for line in report for v in line.get("identicalCopyVersions", []))
        assert identical == sorted(v for _, v in keys)


async def test_delete_packages_removes_packages_and_counts_an_absent_one_as_done(
    tmp_path: Path,
) -> None:
    async with run_emulator(generate=(8, 5), quotas=QuotaConfig.off()) as emu:
        packages = sorted(emu.packages("main"))
        doomed = packages[:3]
        rows = [
            {"format": r.format, "namespace": r.namespace, "package": r.package} for r in doomed
        ]
        rows.append({"format": "pypi", "namespace": None, "package": "never-existed"})
        manifest = write_manifest(tmp_path / "p.jsonl", rows)
        cp = tmp_path / "cp.journal"
        run = await bulkops(
            emu,
            "delete-packages",
            *JOB,
            "--repository",
            "main",
            "--manifest",
            manifest,
            "--checkpoint",
            cp,
            "--execute",
        )
        assert run.code == 0, run.stderr
        assert sorted(emu.packages("main")) == packages[3:]


async def test_an_invalid_manifest_exits_2_naming_line_and_field_with_nothing_sent(
    tmp_path: Path,
) -> None:
    async with run_emulator(generate=(2, 3), quotas=QuotaConfig.off()) as emu:
        manifest = tmp_path / "bad.jsonl"
        manifest.write_text(
            '{"format": "npm", "package": "ok", "version": "1.0.0"}\n'
            '{"format": "maven", "package": "core", "version": "1.0"}\n'
        )
        run = await bulkops(
            emu, "delete", *JOB, "--repository", "main", "--manifest", manifest, "--execute"
        )
        assert run.code == 2
        assert "bad.jsonl:2" in run.stderr
        assert "namespace" in run.stderr
        assert sent(emu) == 0


async def test_a_missing_repository_stops_the_run_with_exit_2(tmp_path: Path) -> None:
    async with run_emulator(generate=(2, 3), quotas=QuotaConfig.off()) as emu:
        manifest = write_manifest(tmp_path / "m.jsonl", rows_for(sorted(emu.versions("main"))))
        run = await bulkops(
            emu,
            "delete",
            *JOB,
            "--repository",
            "nope",
            "--manifest",
            manifest,
            "--checkpoint",
            tmp_path / "cp.journal",
            "--execute",
        )
        assert run.code == 2, run.stderr
        assert "ResourceNotFoundException" in run.stderr


async def test_a_stdin_manifest_is_spooled_owner_only_beside_the_checkpoint(tmp_path: Path) -> None:
    async with run_emulator(generate=(3, 10), quotas=QuotaConfig.off()) as emu:
        keys = sorted(emu.versions("main"))[:12]
        data = "".join(json.dumps(row) + "\n" for row in rows_for(keys)).encode()
        cp = tmp_path / "jobs" / "cp.journal"
        run = await bulkops(
            emu,
            "delete",
            *JOB,
            "--repository",
            "main",
            "--manifest",
            "-",
            "--checkpoint",
            cp,
            "--execute",
            stdin=data,
        )
        assert run.code == 0, run.stderr
        beside = sorted(p.name for p in cp.parent.iterdir())
        assert beside[:2] == ["cp.journal", "cp.journal.chunks"] and len(beside) == 3
        assert beside[2].startswith("stdin-")  # the spooled manifest
        for p in cp.parent.iterdir():
            assert oct(p.stat().st_mode & 0o777) == "0o600", p
        assert not set(keys) & set(emu.versions("main"))


async def interrupted(emu: RunningEmulator, tmp_path: Path, command: str) -> tuple[Path, Path]:
    """A job of every version of `main` in chunks of 5, stopped by --max-duration at a
    write quota of 5/s: its manifest and checkpoint."""
    manifest = write_manifest(tmp_path / "m.jsonl", rows_for(sorted(emu.versions("main"))))
    cp = tmp_path / "cp.journal"
    args = [command, *JOB, "--repository", "main", "--manifest", manifest]
    run = await bulkops(emu, *args, "--checkpoint", cp, "--execute", "--chunk-size", "5",
                        "--max-duration", "0.5")  # fmt: skip
    assert run.code == 75, run.stderr
    return manifest, cp


async def test_resume_reads_the_chunk_list_and_refuses_one_that_changed(tmp_path: Path) -> None:
    async with run_emulator(generate=(4, 20), quotas=QuotaConfig.from_dict({"write": 5})) as emu:
        _, cp = await interrupted(emu, tmp_path, "dispose")
        chunk_list = tmp_path / "cp.journal.chunks"
        original = chunk_list.read_bytes()
        assert original.count(b"\n") == 16  # 80 versions in chunks of 5
        chunk_list.write_bytes(original + b'["npm",null,"forged",["1.0.0"],{}]\n')
        calls = sent(emu)
        refused = await bulkops(emu, "resume", cp)
        assert refused.code == 1, refused.stderr
        assert "chunk list" in refused.stderr and "changed since the job started" in refused.stderr
        assert sent(emu) == calls
        chunk_list.write_bytes(original)
        resumed = await bulkops(emu, "resume", cp)
        assert resumed.code == 0, resumed.stderr
        assert {v.status for v in emu.versions("main").values()} == {"Disposed"}


async def test_resume_refuses_a_changed_manifest_with_exit_2(tmp_path: Path) -> None:
    async with run_emulator(generate=(4, 20), quotas=QuotaConfig.from_dict({"write": 5})) as emu:
        manifest, cp = await interrupted(emu, tmp_path, "delete")
        with manifest.open("a") as f:
            f.write('{"format": "pypi", "package": "late-addition", "version": "1.0"}\n')
        resumed = await bulkops(emu, "resume", cp)
        assert resumed.code == 2
        assert "changed since the job started" in resumed.stderr


async def test_max_versions_refuses_an_oversized_job_before_any_call(tmp_path: Path) -> None:
    async with run_emulator(generate=(4, 20), quotas=QuotaConfig.off()) as emu:
        manifest = write_manifest(tmp_path / "m.jsonl", rows_for(sorted(emu.versions("main"))))
        run = await bulkops(emu, "delete", *JOB, "--repository", "main", "--manifest", manifest,
                            "--max-versions", "50", "--execute",
                            "--checkpoint", tmp_path / "cp.journal")  # fmt: skip
        assert run.code == 2, run.stderr
        assert "50" in run.stderr
        assert sent(emu) == 0


async def test_resume_existing_refuses_another_or_a_changed_or_a_stdin_manifest(
    tmp_path: Path,
) -> None:
    async with run_emulator(generate=(6, 10), quotas=QuotaConfig.off()) as emu:
        before = emu.versions("main")
        keys = sorted(k for k, v in before.items() if v.status == "Published")
        first = write_manifest(tmp_path / "first.jsonl", rows_for(keys[:10]))
        other = write_manifest(tmp_path / "other.jsonl", rows_for(keys[10:20]))
        cp = tmp_path / "cp.journal"
        job = ["set-status", *JOB, "--repository", "main", "--target-status", "Archived"]
        again = [*job, "--checkpoint", cp, "--execute", "--resume-existing"]
        assert (await bulkops(emu, *job, "--manifest", first, "--checkpoint", cp,
                              "--execute")).code == 0  # fmt: skip
        calls = sent(emu)

        run = await bulkops(emu, *again, "--manifest", other)
        assert run.code == 2, run.stderr
        assert "holds a job of manifest" in run.stderr and "first.jsonl" in run.stderr
        piped = await bulkops(emu, *again, "--manifest", "-", stdin=other.read_bytes())
        assert piped.code == 2, piped.stderr
        assert "stdin" in piped.stderr
        with first.open("a") as f:
            f.write(json.dumps(rows_for(keys[20:21])[0]) + "\n")
        changed = await bulkops(emu, *again, "--manifest", first)
        assert changed.code == 2, changed.stderr
        assert "changed since" in changed.stderr
        assert sent(emu) == calls  # nothing was sent
        assert all(emu.versions("main")[k].status == "Published" for k in keys[10:])


async def test_resume_existing_with_the_same_manifest_resumes(tmp_path: Path) -> None:
    async with run_emulator(generate=(4, 10), quotas=QuotaConfig.off()) as emu:
        published = sorted(k for k, v in emu.versions("main").items() if v.status == "Published")
        manifest = write_manifest(tmp_path / "m.jsonl", rows_for(published))
        cp = tmp_path / "cp.journal"
        job = ["set-status", *JOB, "--repository", "main", "--target-status", "Archived",
               "--manifest", manifest, "--checkpoint", cp, "--execute"]  # fmt: skip
        assert (await bulkops(emu, *job)).code == 0
        run = await bulkops(emu, *job, "--resume-existing")
        assert run.code == 0, run.stderr
        assert [
            e["checkpoint"] for e in log_events(run.stderr) if e["event"] == "resuming_existing"
        ] == [str(cp)]


async def test_a_dry_run_refuses_what_the_caps_refuse_as_the_execution_does(
    tmp_path: Path,
) -> None:
    async with run_emulator(generate=(10, 30), quotas=QuotaConfig.off()) as emu:
        manifest = write_manifest(tmp_path / "m.jsonl", rows_for(sorted(emu.versions("main"))))
        job = ["dispose", *JOB, "--repository", "main", "--manifest", manifest]
        for extra in ([], ["--execute", "--checkpoint", tmp_path / "cp.journal"]):
            run = await bulkops(emu, *job, "--max-versions", "10", *extra)
            assert run.code == 2, run.stderr
            assert "300 versions, more than --max-versions 10" in run.stderr
            assert "Nothing was sent. Add --execute" not in run.stdout
        packages = await bulkops(emu, *job, "--max-packages", "9")
        assert packages.code == 2, packages.stderr
        assert sent(emu) == 0
        assert sorted(p.name for p in tmp_path.iterdir()) == ["m.jsonl"]  # no chunk list


@pytest.mark.parametrize("safe", [False, True], ids=["delete", "safe-delete"])
async def test_a_stdin_manifest_leaves_no_spooled_file_unless_a_job_runs_from_it(
    tmp_path: Path, safe: bool
) -> None:
    async with run_emulator(generate=(3, 10), quotas=QuotaConfig.off()) as emu:
        versions = emu.versions("main")
        keys = sorted(versions)[:12]
        rows = rows_for(keys, {k: versions[k].revision for k in keys} if safe else None)
        data = "".join(json.dumps(row) + "\n" for row in rows).encode()
        jobs = tmp_path / "jobs"
        job = ["delete", *JOB, "--repository", "main", "--manifest", "-"]
        job += ["--checkpoint-dir", jobs, *(["--safe-delete"] if safe else [])]
        dry = await bulkops(emu, *job, stdin=data)
        assert dry.code == 0, dry.stderr
        assert "12 versions" in dry.stdout
        assert not jobs.exists() or not list(jobs.iterdir())
        refused = await bulkops(emu, *job, "--max-versions", "5", stdin=data)
        assert refused.code == 2, refused.stderr
        capped = await bulkops(emu, *job, "--max-versions", "5", "--execute", stdin=data)
        assert capped.code == 2, capped.stderr
        assert not jobs.exists() or not list(jobs.iterdir())
        assert sent(emu) == 0
