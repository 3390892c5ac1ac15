"""`bulkops plan`, plan execution, `delete --safe-delete` and `report --undo` end to end."""

from __future__ import annotations

import csv
import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from bulkops.emulator import QuotaConfig, run_emulator
from bulkops.model import PackageRef
from tests.cli_support import bulkops, report_lines, rows_for, write_manifest

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

JOB = ("--domain", "acme", "--repository", "main")
FAST = ("--list-rate", "2000", "--read-rate", "2000")

# Per format: published in this order, so neither publish order nor string order finds the
# highest version; "10..." is the highest and the last one is a pre-release of it.
LADDERS = {
    "npm": ["10.0.0", "9.0.0", "2.0.0", "10.0.0-rc.1"],
    "cargo": ["10.0.0", "9.0.0", "2.0.0", "10.0.0-alpha.1"],
    "swift": ["10.0.0", "9.0.0", "2.0.0", "10.0.0-beta.1"],
    "generic": ["10.0.0", "9.0.0", "2.0.0", "10.0.0-rc1"],
    "pypi": ["10.0", "9.0", "2.0", "10.0rc1"],
    "maven": ["10.0", "9.0", "2.0", "10.0-RC1"],
    "nuget": ["10.0.0", "9.0.0", "2.0.0", "10.0.0-preview.1"],
    "ruby": ["10.0.0", "9.0.0", "2.0.0", "10.0.0.rc1"],
}
NAMESPACES = {"maven": "com.acme", "swift": "acme", "generic": "tools", "npm": "acme"}


def rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".csv":
        with path.open() as f:
            return list(csv.DictReader(f))
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def key(row: dict[str, Any]) -> tuple[PackageRef, str]:
    return PackageRef(row["format"], row.get("namespace") or None, row["package"]), row["version"]


async def test_plan_keeps_the_highest_version_of_every_format_by_its_own_order(
    tmp_path: Path,
) -> None:
    async with run_emulator(quotas=QuotaConfig.off()) as emu:
        for fmt, ladder in LADDERS.items():
            for i, version in enumerate(ladder):
                emu.add_version(
                    "main", fmt, NAMESPACES.get(fmt), "lib", version, published_time=1e9 + i
                )
        plan, kept = tmp_path / "plan.jsonl", tmp_path / "kept.jsonl"
        run = await bulkops(
            emu, "plan", *JOB, *FAST, "--out", plan, "--kept", kept, "--status", "Published",
            "--keep-latest", "1", "--no-keep-default", "--page-size", "3",
        )  # fmt: skip
        assert run.code == 0, run.stderr
        assert "plan: 24 versions of 8 packages selected" in run.stdout
        assert {row["format"]: row["version"] for row in rows(kept)} == {
            fmt: ladder[0] for fmt, ladder in LADDERS.items()
        }
        assert all(row["kept"] == "latest 1" for row in rows(kept))
        planned = {(row["format"], row["version"]) for row in rows(plan)}
        assert planned == {(f, v) for f, ladder in LADDERS.items() for v in ladder[1:]}
        assert "kept:      8 selected versions: latest 1 8" in run.stdout
        calls = {op for op, n in emu.counters()["calls"].items() if n}
        assert calls <= {"ListPackages", "ListPackageVersions"}


async def test_a_version_republished_after_planning_is_left_alone_and_reported(
    tmp_path: Path,
) -> None:
    async with run_emulator(generate=(12, 20), quotas=QuotaConfig.off()) as emu:
        plan = tmp_path / "plan.csv"
        run = await bulkops(
            emu, "plan", *JOB, *FAST, "--out", plan, "--status", "Published", "--format", "npm",
        )  # fmt: skip
        assert run.code == 0, run.stderr
        planned = [key(r) for r in rows(plan)]
        assert planned
        (ref, version) = planned[0]
        emu.add_version("main", ref.format, ref.namespace, ref.package, version)  # republished
        republished = emu.versions("main")[(ref, version)]
        cp = tmp_path / "cp.journal"
        run = await bulkops(
            emu, "dispose", *JOB, "--manifest", plan, "--checkpoint", cp, "--execute"
        )
        assert run.code == 3, run.stderr
        after = emu.versions("main")
        assert after[(ref, version)] == republished
        assert all(after[k].status == "Disposed" for k in planned[1:])
        report = report_lines((await bulkops(emu, "report", cp, "--format", "jsonl")).stdout)
        drift = {
            (line["package"], v): f["errorCode"]
            for line in report
            for v, f in line["failedVersions"].items()
        }
        assert drift == {(ref.package, version): "MISMATCHED_REVISION"}


async def test_safe_delete_never_deletes_a_changed_version_and_resumes_after_a_stop(
    tmp_path: Path,
) -> None:
    async with run_emulator(generate=(8, 25), quotas=QuotaConfig.off()) as emu:
        plan = tmp_path / "plan.jsonl"
        run = await bulkops(
            emu, "plan", *JOB, *FAST, "--out", plan, "--status", "Published", "--format",
            "maven", "--format", "npm", "--keep-latest", "2",
        )  # fmt: skip
        assert run.code == 0, run.stderr
        planned = [key(r) for r in rows(plan)]
        (ref, version) = planned[-1]
        emu.add_version("main", ref.format, ref.namespace, ref.package, version)  # republished
        emu.set_faults({"latency_ms": 150})
        cp = tmp_path / "cp.journal"
        args = ("delete", *JOB, "--manifest", plan, "--safe-delete", "--checkpoint", cp)
        stopped = await bulkops(
            emu, *args, "--execute", "--concurrency", "1", "--chunk-size", "5",
            "--max-duration", "0.4",
        )  # fmt: skip
        assert stopped.code == 75, stopped.stderr
        assert "--resume-existing" in stopped.stderr
        again = await bulkops(emu, *args, "--execute")
        assert again.code == 2  # a started safe delete is not silently restarted
        emu.set_faults({"latency_ms": 0})
        done = await bulkops(emu, *args, "--execute", "--resume-existing")
        assert done.code == 3, done.stderr  # the republished version failed, on purpose
        after = emu.versions("main")
        assert after[(ref, version)].status == "Published"
        assert not set(planned[:-1]) & set(after)
        phase1 = tmp_path / "cp.journal.archive.journal"
        report = report_lines((await bulkops(emu, "report", phase1, "--format", "jsonl")).stdout)
        assert [f["errorCode"] for line in report for f in line["failedVersions"].values()] == [
            "MISMATCHED_REVISION"
        ]


async def test_safe_delete_resume_existing_refuses_another_manifest_in_either_phase(
    tmp_path: Path,
) -> None:
    async with run_emulator(generate=(4, 10), quotas=QuotaConfig.off()) as emu:
        versions = emu.versions("main")
        keys = sorted(k for k, v in versions.items() if v.status == "Published")
        revisions = {k: versions[k].revision for k in keys}
        first = write_manifest(tmp_path / "a.jsonl", rows_for(keys[:5], revisions))
        other = write_manifest(tmp_path / "b.jsonl", rows_for(keys[5:10], revisions))
        cp = tmp_path / "cp.journal"
        args = ("delete", *JOB, "--safe-delete", "--checkpoint", cp, "--execute")
        done = await bulkops(emu, *args, "--manifest", first)
        assert done.code == 0, done.stderr
        assert cp.exists()  # phase 2 ran: a resume would go straight to it
        phase2_manifest = tmp_path / "cp.journal.delete.jsonl"
        assert phase2_manifest.stat().st_mode & 0o777 == 0o600  # like the journals
        run = await bulkops(emu, *args, "--manifest", other, "--resume-existing")
        assert run.code == 2, run.stderr
        assert "another safe delete" in run.stderr
        assert all(k in emu.versions("main") for k in keys[5:10])


async def test_safe_delete_refuses_a_manifest_that_pins_no_revisions(tmp_path: Path) -> None:
    async with run_emulator(generate=(2, 4), quotas=QuotaConfig.off()) as emu:
        ref, version = sorted(emu.versions("main"))[0]
        manifest = tmp_path / "m.jsonl"
        row = {"format": ref.format, "namespace": ref.namespace, "package": ref.package}
        manifest.write_text(json.dumps({**row, "version": version}) + "\n")
        run = await bulkops(
            emu, "delete", *JOB, "--manifest", manifest, "--safe-delete", "--execute"
        )
        assert run.code == 2
        assert "pin" in run.stderr
        assert sum(emu.counters()["calls"].values()) == 0


async def test_plan_refuses_more_than_max_versions_and_writes_nothing(tmp_path: Path) -> None:
    async with run_emulator(generate=(10, 20), quotas=QuotaConfig.off()) as emu:
        plan = tmp_path / "plan.jsonl"
        run = await bulkops(
            emu, "plan", *JOB, *FAST, "--out", plan, "--older-than", "1d",
            "--max-versions", "15",
        )  # fmt: skip
        assert run.code == 2
        assert "more than --max-versions 15" in run.stderr
        assert not plan.exists()
        assert list(tmp_path.iterdir()) == []


async def test_plan_keep_min_refuses_a_plan_that_would_empty_packages(tmp_path: Path) -> None:
    async with run_emulator(generate=(6, 10), quotas=QuotaConfig.off()) as emu:
        plan = tmp_path / "plan.jsonl"
        args = ("plan", *JOB, *FAST, "--out", plan, "--format", "npm", "--no-keep-default")
        refused = await bulkops(emu, *args, "--older-than", "1d", "--keep-min", "2")
        assert refused.code == 2
        assert "--keep-min 2" in refused.stderr
        assert "npm:" in refused.stderr
        assert not plan.exists()


async def test_a_bad_rules_file_exits_2_naming_file_key_and_reason(tmp_path: Path) -> None:
    async with run_emulator(generate=(2, 3), quotas=QuotaConfig.off()) as emu:
        rules = tmp_path / "rules.toml"
        rules.write_text('[[select]]\nprerelease = true\nolder_then = "90d"\n')
        run = await bulkops(emu, "plan", *JOB, "--out", tmp_path / "p.jsonl", "--rules", rules)
        assert run.code == 2
        assert f"{rules}: select[0].older_then: unknown key" in run.stderr
        assert sum(emu.counters()["calls"].values()) == 0


async def test_undo_restores_the_statuses_a_set_status_job_changed(tmp_path: Path) -> None:
    async with run_emulator(generate=(8, 30), quotas=QuotaConfig.off()) as emu:
        before = emu.versions("main")
        plan = tmp_path / "plan.csv"
        run = await bulkops(
            emu, "plan", *JOB, *FAST, "--out", plan, "--status", "Published", "--status",
            "Unlisted", "--format", "pypi", "--format", "maven", "--no-keep-default",
        )  # fmt: skip
        assert run.code == 0, run.stderr
        planned = [key(r) for r in rows(plan)]
        assert {before[k].status for k in planned} == {"Published", "Unlisted"}
        cp = tmp_path / "cp.journal"
        run = await bulkops(
            emu, "set-status", *JOB, "--manifest", plan, "--target-status", "Archived",
            "--checkpoint", cp, "--execute",
        )  # fmt: skip
        assert run.code == 0, run.stderr
        assert all(emu.versions("main")[k].status == "Archived" for k in planned)
        undo = await bulkops(emu, "report", cp, "--undo")
        assert undo.code == 0, undo.stderr
        commands = [
            line.strip() for line in undo.stdout.splitlines() if "bulkops set-status" in line
        ]
        assert len(commands) == 2  # one per previous status
        undo_files = sorted(tmp_path.glob("cp.journal.undo*.jsonl"))
        assert len(undo_files) == 2
        assert all(f.stat().st_mode & 0o777 == 0o600 for f in undo_files)
        for command in commands:
            argv = shlex.split(command)[1:]
            restored = await bulkops(emu, *argv)
            assert restored.code == 0, restored.stderr
        after = emu.versions("main")
        assert all(after[k].status == before[k].status for k in planned)
        refused = await bulkops(emu, "report", tmp_path / "missing.journal", "--undo")
        assert refused.code == 2


async def test_a_csv_plan_of_a_release_line_copies_with_pinned_revisions(tmp_path: Path) -> None:
    async with run_emulator(quotas=QuotaConfig.off()) as emu:
        for v in ("1.9.0", "2.0.0-rc.1", "2.0.0", "2.10.0", "3.0.0-rc.1", "3.0.0"):
            emu.add_version("main", "npm", None, "auth-client", v)
        plan = tmp_path / "line.csv"
        run = await bulkops(
            emu, "plan", *JOB, *FAST, "--out", plan, "--package", "auth-client",
            "--version-range", ">=2.0,<3.0", "--releases-only", "--no-keep-default",
        )  # fmt: skip
        assert run.code == 0, run.stderr
        copy = await bulkops(
            emu, "copy", "--domain", "acme", "--source-repository", "main",
            "--destination-repository", "release", "--manifest", plan, "--execute",
            "--checkpoint", tmp_path / "cp.journal",
        )  # fmt: skip
        assert copy.code == 0, copy.stderr
        assert sorted(v for _, v in emu.versions("release")) == ["2.0.0", "2.10.0"]


async def test_plan_refuses_contradictory_flags_and_unwritable_plans_before_any_call(
    tmp_path: Path,
) -> None:
    existing = tmp_path / "plan.jsonl"
    existing.write_text("")
    rules = Path(__file__).resolve().parent.parent / "configs" / "rules" / "prerelease-cleanup.toml"
    fresh = tmp_path / "new.jsonl"
    refusals = [
        (("--out", fresh, "--rules", rules, "--older-than", "9d"), "drop --older-than"),
        (("--out", fresh), "no selection"),
        (("--out", fresh, "--prereleases-only", "--releases-only"), "exclude each other"),
        (("--out", existing, "--older-than", "9d"), "exists; add --overwrite"),
        (("--out", tmp_path / "plan.txt", "--older-than", "9d"), "name it .jsonl or .csv"),
    ]
    async with run_emulator(generate=(2, 3), quotas=QuotaConfig.off()) as emu:
        for args, words in refusals:
            run = await bulkops(emu, "plan", *JOB, *args)
            assert run.code == 2, (args, run.stderr)
            assert words in run.stderr, (args, run.stderr)
        assert sum(emu.counters()["calls"].values()) == 0
    assert existing.read_text() == ""
    assert not fresh.exists()


async def test_prereleases_only_with_keep_rules_plans_the_prereleases_the_keeps_leave(
    tmp_path: Path,
) -> None:
    ladder = ["1.0.0", "2.0.0-rc.1", "2.0.0-rc.2", "2.0.0", "3.0.0-rc.1", "3.0.0-rc.2"]
    async with run_emulator(quotas=QuotaConfig.off()) as emu:
        for i, version in enumerate(ladder):
            emu.add_version("main", "npm", "acme", "lib", version, published_time=1e9 + i)
        plan, kept = tmp_path / "plan.jsonl", tmp_path / "kept.jsonl"
        run = await bulkops(
            emu, "plan", *JOB, *FAST, "--out", plan, "--kept", kept, "--prereleases-only",
            "--keep-latest", "1", "--keep-version", "2.*", "--no-keep-default",
        )  # fmt: skip
        assert run.code == 0, run.stderr
    assert sorted(row["version"] for row in rows(plan)) == ["3.0.0-rc.1"]
    assert {row["version"]: row["kept"] for row in rows(kept)} == {
        "3.0.0-rc.2": "latest 1",
        "2.0.0-rc.1": "keep rule '--keep-version'",
        "2.0.0-rc.2": "keep rule '--keep-version'",
    }
