"""The CLI as a scripting tool: JSON-only stderr, --output json, report --exit-code, help text."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from bulkops.emulator import QuotaConfig, RunningEmulator, run_emulator
from bulkops.model import PackageRef
from tests.cli_support import bulkops, log_events, rows_for, write_manifest

pytestmark = pytest.mark.slow

JOB = ("--domain", "acme", "--repository", "main")


def _published(emu: RunningEmulator) -> list[tuple[PackageRef, str]]:
    return sorted(k for k, v in emu.versions("main").items() if v.status == "Published")


def _events(stderr: str, name: str) -> list[dict[str, object]]:
    return [e for e in log_events(stderr) if e["event"] == name]


@pytest.mark.asyncio
async def test_a_piped_interrupted_run_writes_only_json_with_checkpoint_and_resume_fields(
    tmp_path: Path,
) -> None:
    async with run_emulator(generate=(4, 30), quotas=QuotaConfig.off()) as emu:
        manifest = write_manifest(tmp_path / "m.jsonl", rows_for(_published(emu)))
        cp = tmp_path / "cp.journal"
        job = ["set-status", *JOB, "--manifest", manifest, "--target-status", "Archived",
               "--chunk-size", "1", "--rate", "4", "--checkpoint", cp, "--execute"]  # fmt: skip
        run = await bulkops(emu, *job, "--max-duration", "0.3")
        assert run.code == 75, run.stderr
        events = log_events(run.stderr)  # every line of stderr parses as JSON
        assert [e["checkpoint"] for e in events if e["event"] == "checkpoint_created"] == [str(cp)]
        (stop,) = [e for e in events if e["event"] == "run_interrupted"]
        assert stop["resume_command"] == f"bulkops resume {cp}"
        assert stop["checkpoint"] == str(cp)
        assert stop["exit_code"] == 75
        assert "Continue with" not in run.stderr
        assert "bulkops report job" in run.stdout  # the human report stays on stdout

        again = await bulkops(emu, *job)  # an error line is an event too
        assert again.code == 2
        (failed,) = _events(again.stderr, "command_failed")
        assert failed["exit_code"] == 2
        assert f"checkpoint {cp} exists" in str(failed["error"])
        assert "bulkops: error" not in again.stderr


@pytest.mark.asyncio
async def test_on_a_console_the_same_notices_are_lines_for_people(tmp_path: Path) -> None:
    async with run_emulator(generate=(4, 30), quotas=QuotaConfig.off()) as emu:
        manifest = write_manifest(tmp_path / "m.jsonl", rows_for(_published(emu)))
        cp = tmp_path / "cp.journal"
        run = await bulkops(emu, "set-status", *JOB, "--manifest", manifest,
                            "--target-status", "Archived", "--chunk-size", "1", "--rate", "4",
                            "--checkpoint", cp, "--execute", "--max-duration", "0.3",
                            "--log-format", "console")  # fmt: skip
        assert run.code == 75, run.stderr
        assert "Interrupted (max-duration). Continue with: bulkops resume" in run.stderr
        assert f"Continue with: bulkops resume {cp}" in run.stderr
        gone = await bulkops(emu, "resume", tmp_path / "nope.journal", "--log-format", "console")
        assert gone.code == 2
        assert (
            gone.stderr.strip()
            == f"bulkops: error: checkpoint {tmp_path / 'nope.journal'} does not exist"
        )


@pytest.mark.asyncio
async def test_output_json_gives_the_dry_run_estimate_and_the_closing_summary(
    tmp_path: Path,
) -> None:
    async with run_emulator(generate=(4, 30), quotas=QuotaConfig.off()) as emu:
        keys = _published(emu)
        manifest = write_manifest(tmp_path / "m.jsonl", rows_for(keys))
        packages = len({ref for ref, _ in keys})
        dry = await bulkops(emu, "dispose", *JOB, "--manifest", manifest, "--output", "json")
        assert dry.code == 0, dry.stderr
        plan = json.loads(dry.stdout)  # the whole of stdout is one document
        assert plan["operation"] == "dispose"
        assert plan["unit"] == "version"
        assert plan["targets"] == len(keys)
        assert plan["packages"] == packages
        assert plan["calls"] == packages  # fewer than 100 versions a package: one call each
        assert plan["sent"] is False
        assert emu.counters()["calls"].get("DisposePackageVersions", 0) == 0

        cp = tmp_path / "cp.journal"
        done = await bulkops(emu, "dispose", *JOB, "--manifest", manifest, "--output", "json",
                             "--checkpoint", cp, "--execute")  # fmt: skip
        assert done.code == 0, done.stderr
        summary = json.loads(done.stdout)
        assert summary["exit_code"] == 0
        assert summary["checkpoint"] == str(cp)
        assert summary["resume_command"] is None
        assert summary["totals"]["succeeded"] == len(keys)
        assert summary["calls"] == packages


@pytest.mark.asyncio
async def test_report_exit_code_exits_3_when_versions_failed_and_0_when_none_did(
    tmp_path: Path,
) -> None:
    async with run_emulator(generate=(4, 30), quotas=QuotaConfig.off()) as emu:
        keys = sorted(emu.versions("main"))
        statuses = {v.status for v in emu.versions("main").values()}
        assert statuses - {"Archived"}, "some versions are not Archived"
        manifest = write_manifest(tmp_path / "m.jsonl", rows_for(keys))
        cp = tmp_path / "cp.journal"
        run = await bulkops(emu, "dispose", *JOB, "--manifest", manifest, "--expected-status",
                            "Archived", "--checkpoint", cp, "--execute")  # fmt: skip
        assert run.code == 3, run.stderr
        assert (await bulkops(emu, "report", cp)).code == 0
        gated = await bulkops(emu, "report", cp, "--format", "json", "--exit-code")
        assert gated.code == 3
        assert json.loads(gated.stdout)["totals"]["hasPermanentFailures"] is True
        (said,) = _events(gated.stderr, "run_finished_with_failures")
        assert said["report_command"] == f"bulkops report {cp} --failed-only"

        clean = write_manifest(tmp_path / "ok.jsonl", rows_for(_published(emu)[:5]))
        ok_cp = tmp_path / "ok.journal"
        assert (await bulkops(emu, "dispose", *JOB, "--manifest", clean,
                              "--checkpoint", ok_cp, "--execute")).code == 0  # fmt: skip
        assert (await bulkops(emu, "report", ok_cp, "--exit-code")).code == 0


@pytest.mark.asyncio
async def test_a_copy_names_its_destination_and_the_plan_line_counts_in_words(
    tmp_path: Path,
) -> None:
    async with run_emulator(generate=(4, 30), quotas=QuotaConfig.off()) as emu:
        (ref, version), *_ = _published(emu)
        manifest = write_manifest(tmp_path / "one.jsonl", rows_for([(ref, version)]))
        cp = tmp_path / "copy.journal"
        run = await bulkops(emu, "copy", "--domain", "acme", "--source-repository", "main",
                            "--destination-repository", "release", "--manifest", manifest,
                            "--checkpoint", cp, "--execute")  # fmt: skip
        assert run.code == 0, run.stderr
        first = run.stdout.splitlines()[0]
        assert first == (
            "copy: 1 version of 1 package in 'main' → 'release' (acme), 1 call, "
            "under a second at 5 calls/s"
        )
        assert "copy on acme/main → release" in run.stdout  # the report's heading

        packages = tmp_path / "packages.csv"
        packages.write_text(
            f"format,namespace,package\n{ref.format},{ref.namespace or ''},{ref.package}\n"
        )
        dry = await bulkops(emu, "delete-packages", *JOB, "--manifest", packages)
        assert dry.code == 0, dry.stderr
        assert dry.stdout.splitlines()[0] == (
            "delete-packages: 1 package in 'main' (acme), 1 call, under a second at 100 calls/s"
        )


@pytest.mark.asyncio
async def test_a_safe_delete_interrupted_prints_a_command_that_goes_on(tmp_path: Path) -> None:
    async with run_emulator(generate=(4, 30), quotas=QuotaConfig.off()) as emu:
        keys = _published(emu)
        revisions = {k: emu.versions("main")[k].revision for k in keys}
        manifest = write_manifest(tmp_path / "m.jsonl", rows_for(keys, revisions))
        cp = tmp_path / "cp.journal"
        run = await bulkops(emu, "delete", *JOB, "--manifest", manifest, "--safe-delete",
                            "--chunk-size", "1", "--rate", "4", "--checkpoint", cp,
                            "--execute", "--max-duration", "0.3")  # fmt: skip
        assert run.code == 75, run.stderr
        (stop,) = _events(run.stderr, "run_interrupted")
        argv = shlex.split(str(stop["resume_command"]))
        assert argv[:2] == ["bulkops", "delete"]
        assert {"--safe-delete", "--resume-existing", "--execute"} <= set(argv)
        finished = await bulkops(emu, *argv[1:])
        assert finished.code == 0, finished.stderr
        assert not set(keys) & set(emu.versions("main"))


@pytest.mark.asyncio
async def test_a_job_refused_in_pre_flight_names_no_checkpoint(tmp_path: Path) -> None:
    async with run_emulator(generate=(4, 30), quotas=QuotaConfig.off()) as emu:
        manifest = write_manifest(tmp_path / "m.jsonl", rows_for(sorted(emu.versions("main"))))
        cp = tmp_path / "cp.journal"
        run = await bulkops(emu, "dispose", *JOB, "--manifest", manifest, "--keep-min", "1000",
                            "--checkpoint", cp, "--execute")  # fmt: skip
        assert run.code == 2, run.stderr
        assert not cp.exists()
        assert not _events(run.stderr, "checkpoint_created")
        assert str(cp) not in run.stderr + run.stdout


@pytest.mark.asyncio
async def test_plan_suggests_every_operation_it_can_run_with(tmp_path: Path) -> None:
    async with run_emulator(generate=(4, 30), quotas=QuotaConfig.off()) as emu:
        out = tmp_path / "plan.jsonl"
        run = await bulkops(emu, "plan", *JOB, "--out", out, "--status", "Published",
                            "--output", "json")  # fmt: skip
        assert run.code == 0, run.stderr
        plan = json.loads(run.stdout)
        assert plan["versions"] == len(_published(emu)) - sum(plan["kept"].values())
        assert plan["versions"] == len(out.read_text().splitlines())
        commands = plan["next_commands"]
        assert [shlex.split(c)[1] for c in commands] == ["set-status", "dispose", "copy", "delete"]
        for command in commands:  # each one parses and, without --execute, sends nothing
            argv = shlex.split(command.replace("DESTINATION", "release"))
            dry = await bulkops(emu, *argv[1:])
            assert dry.code == 0, (command, dry.stderr)
            assert "Nothing was sent" in dry.stdout
        text = await bulkops(
            emu, "plan", *JOB, "--out", out, "--overwrite", "--status", "Published"
        )
        assert text.code == 0, text.stderr
        assert "Run it with e.g.: bulkops dispose" not in text.stdout
        for command in commands:
            assert f"  {command}" in text.stdout.splitlines()


@pytest.mark.asyncio
async def test_quiet_shows_no_info_events_and_verbose_shows_debug_ones(tmp_path: Path) -> None:
    async with run_emulator(generate=(4, 30), quotas=QuotaConfig.off()) as emu:
        manifest = write_manifest(tmp_path / "m.jsonl", rows_for(_published(emu)[:10]))
        runs = {}
        for flag in ("-q", "-v"):
            cp = tmp_path / f"{flag}.journal"
            runs[flag] = await bulkops(emu, "dispose", *JOB, "--manifest", manifest, flag,
                                       "--checkpoint", cp, "--execute")  # fmt: skip
            assert runs[flag].code == 0, runs[flag].stderr
            manifest = write_manifest(tmp_path / "m2.jsonl", rows_for(_published(emu)[:10]))
        assert {e["level"] for e in log_events(runs["-q"].stderr)} <= {"warning", "error"}
        assert "debug" in {e["level"] for e in log_events(runs["-v"].stderr)}
        both = await bulkops(emu, "dispose", *JOB, "--manifest", manifest, "-q", "-v")
        assert both.code == 2


def _help(*command: str, columns: int = 60) -> str:
    env = {**os.environ, "COLUMNS": str(columns)}
    return subprocess.run(
        [sys.executable, "-m", "bulkops", *command, "--help"],
        capture_output=True, text=True, check=True, env=env,
    ).stdout  # fmt: skip


def _option_help(help_text: str, option: str) -> str:
    """The whole help entry of exactly `option` (not of an option whose name contains it)."""
    lines = help_text.splitlines()
    for i, line in enumerate(lines):
        if re.match(rf"^\s+(-\w, )?{re.escape(option)}( [A-Z\[]|$|\s)", line):
            entry = [line]
            for more in lines[i + 1 :]:
                if re.match(r"^\s+-", more) or not more.strip():
                    break
                entry.append(more)
            return " ".join(" ".join(entry).split())
    raise AssertionError(f"no {option} in the help")


def test_delete_packages_manifest_help_names_packages_only() -> None:
    entry = _option_help(_help("delete-packages"), "--manifest")
    assert "file of packages (fields: format, namespace, package; no versions)" in entry
    assert "revision" not in entry
    versions = _option_help(_help("delete"), "--manifest")
    assert "file of versions (fields: format, namespace, package, version, revision)" in versions


@pytest.mark.parametrize(
    ("command", "line"),
    [
        ("copy", "--destination-repository release --manifest release-2x.csv --execute"),
        ("delete", "--expected-status Archived --execute"),
        ("plan", "--rules configs/rules/prerelease-cleanup.toml --keep-min 3"),
        ("resume", "bulkops resume bulkops-checkpoints/delete-20261121T130000Z-1a2b3c.journal"),
    ],
)
def test_examples_in_help_are_never_wrapped_mid_command(command: str, line: str) -> None:
    assert line in _help(command, columns=50)


def test_quiet_and_verbose_are_options_of_every_command_that_logs() -> None:
    for command in ("delete", "dispose", "set-status", "copy", "delete-packages", "resume",
                    "plan", "demo"):  # fmt: skip
        text = _help(command, columns=100)
        assert _option_help(text, "--quiet").startswith("-q, --quiet Only warnings and errors")
        assert _option_help(text, "--verbose").startswith("-v, --verbose Debug log events")
    report = _help("report", columns=100)
    assert _option_help(report, "--exit-code").startswith("--exit-code Exit 3 when versions")


@pytest.mark.asyncio
async def test_the_demo_prints_its_faults_and_commands_that_replay_it(tmp_path: Path) -> None:
    demo = subprocess.run(
        [sys.executable, "-m", "bulkops", "demo", "--packages", "20", "--versions", "10",
         "--seed", "3", "--no-faults", "--workdir", tmp_path / "demo", "--progress", "off"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stderr
    assert "Faults: none (--no-faults)." in demo.stdout
    (serve,) = [line.split() for line in demo.stdout.splitlines() if "bulkops emulator" in line]
    assert serve[:7] == ["bulkops", "emulator", "--port", "8911", "--generate", "20x10", "--seed"]
    commands = [shlex.split(line[2:]) for line in demo.stdout.splitlines() if line.startswith("$ ")]
    assert [argv[1] for argv in commands] == ["set-status", "dispose", "copy"]
    async with run_emulator(generate=(20, 10), seed=int(serve[7]), quotas=QuotaConfig.off()) as emu:
        for argv in commands:
            run = await bulkops(emu, *argv[1:])
            assert run.code == 0, (argv, run.stderr)
        assert emu.versions("release"), "the replayed copy filled the release repository"


def test_the_demo_says_which_faults_it_injects() -> None:
    from bulkops.emulator import FaultConfig
    from bulkops.jobs.demo_steps import fault_words

    words = fault_words(FaultConfig(latency_ms=20, jitter=0.5, error_rate=0.01, skip_rate=0.002))
    assert words.startswith("Faults injected, as a real service has them: 20 ms latency (±50%)")
    assert "500 InternalServerException on 1% of calls" in words
    assert "SKIPPED for 0.2% of versions" in words


def test_a_usage_error_is_an_event_in_json_logs_and_clicks_message_on_a_console() -> None:
    argv = [sys.executable, "-m", "bulkops", "delete", "--repository", "main", "--manifest", "m"]
    piped = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert piped.returncode == 2
    (event,) = log_events(piped.stderr)
    assert event["event"] == "command_failed"
    assert event["error"] == "Missing option '--domain'."
    assert event["exit_code"] == 2
    env = {**os.environ, "BULKOPS_LOG_FORMAT": "console"}
    console = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    assert console.returncode == 2
    assert console.stderr.splitlines()[-1] == "Error: Missing option '--domain'."
    bare = subprocess.run(argv[:3], capture_output=True, text=True, check=False)
    assert bare.stderr.startswith("Usage: bulkops [OPTIONS] COMMAND")  # help, not an event
