"""Every example in configs/ runs against the emulator as shipped (`--generate 50x300`)."""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

import anyio
import pytest

from bulkops.cli.config import default_map, load_job_file
from bulkops.emulator import QuotaConfig, RunningEmulator, run_emulator
from bulkops.manifest.files import read_targets
from bulkops.model import Operation
from tests.cli_support import Run, cli_env
from tests.test_readme import example_lines

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
SHIPPED = (50, 300)  # what the configs' comments tell a user to start: --generate 50x300
JOB_ORDER = ("set-status", "dispose", "delete", "copy", "delete-packages")  # disjoint rows


async def _run(emu: RunningEmulator, cwd: Path, argv: list[str]) -> Run:
    """`bulkops ARGV` in `cwd`, its checkpoints in cwd (not the repository's own directory)."""
    env = {**cli_env(emu), "BULKOPS_CHECKPOINT_DIR": str(cwd / "checkpoints")}
    result = await anyio.run_process(
        [sys.executable, "-m", "bulkops", *argv[1:]], env=env, cwd=cwd, check=False
    )
    return Run(result.returncode, result.stdout.decode(), result.stderr.decode())


def _commented_commands(path: Path) -> list[list[str]]:
    """The `bulkops …` commands a file's comments give, continuation lines joined."""
    text = "\n".join(line[1:].strip() for line in path.read_text().splitlines() if line[:1] == "#")
    joined = re.sub(r"\\\n\s*", " ", text)
    return [shlex.split(line) for line in joined.splitlines() if line.startswith("bulkops ")]


def _check_rows_against_the_ground_truth(emu: RunningEmulator, path: Path) -> int:
    """Every row of a job file's manifest exists in the emulator, in the status it expects."""
    job = load_job_file(path)
    operation = Operation(job.operation)
    defaults = default_map(job, path.parent, job.operation)
    versions = emu.versions(defaults.get("repository") or defaults["source_repository"])
    packages = {ref for ref, _ in versions}
    targets = list(read_targets(Path(defaults["manifest"]), operation=operation))
    for target in targets:
        if not operation.per_version:
            assert target.ref in packages, target
            continue
        view = versions.get((target.ref, target.version))
        assert view is not None, f"{path.name}: {target} is not in the emulator"
        if expected := defaults.get("expected_status"):
            assert view.status == expected, (path.name, target, view.status)
        if target.revision is not None:
            assert view.revision == target.revision, (path.name, target)
    return len(targets)


@pytest.mark.asyncio
async def test_every_job_file_plans_a_nonzero_selection_and_runs_against_the_emulator(
    tmp_path: Path,
) -> None:
    (tmp_path / "configs").symlink_to(CONFIGS)
    jobs = {load_job_file(p).operation: p for p in CONFIGS.glob("*.toml")}
    assert set(jobs) == {*JOB_ORDER, "resume"}
    async with run_emulator(generate=SHIPPED, quotas=QuotaConfig.off()) as emu:
        for operation in JOB_ORDER:
            path = Path("configs") / jobs[operation].name
            rows = _check_rows_against_the_ground_truth(emu, jobs[operation])
            dry = await _run(emu, tmp_path, ["bulkops", operation, "--config", str(path),
                                             "--output", "json"])  # fmt: skip
            assert dry.code == 0, (operation, dry.stderr)
            assert json.loads(dry.stdout)["targets"] == rows > 0
        readme = [argv for argv in example_lines() if "--config" in argv]
        assert ["bulkops", "delete", "--config", "configs/delete.toml", "--rate", "50",
                "--execute"] in readme  # fmt: skip
        for argv in readme:  # the README's own job-file commands, as written
            run = await _run(emu, tmp_path, argv)
            assert run.code == 0, (argv, run.stderr)
        for operation in JOB_ORDER:
            if operation == "delete":
                continue  # ran above, from the README
            argv = ["bulkops", operation, "--config", f"configs/{jobs[operation].name}"]
            run = await _run(emu, tmp_path, [*argv, "--execute"])
            assert run.code == 0, (operation, run.stderr)
        (checkpoint, *_) = sorted((tmp_path / "checkpoints").glob("delete-*.journal"))
        again = await _run(emu, tmp_path, ["bulkops", "resume", str(checkpoint), "--config",
                                           "configs/resume.toml"])  # fmt: skip
        assert again.code == 0, again.stderr
        assert len(emu.versions("release")) == _check_rows_against_the_ground_truth(
            emu, jobs["copy"]
        )


@pytest.mark.asyncio
async def test_every_rules_file_selects_versions_and_its_commands_run(tmp_path: Path) -> None:
    (tmp_path / "configs").symlink_to(CONFIGS)
    rule_files = sorted((CONFIGS / "rules").glob("*.toml"))
    assert rule_files
    async with run_emulator(generate=SHIPPED, quotas=QuotaConfig.off()) as emu:
        for path in rule_files:
            commands = [c for c in _commented_commands(path) if "CHECKPOINT" not in c]
            assert commands[0][:2] == ["bulkops", "plan"], path.name
            plan = await _run(emu, tmp_path, [*commands[0], "--output", "json"])
            assert plan.code == 0, (path.name, plan.stderr)
            selected = json.loads(plan.stdout)
            assert selected["versions"] > 0, f"{path.name} selects nothing on the emulator"
            for argv in commands[1:]:
                run = await _run(emu, tmp_path, argv)
                assert run.code == 0, (path.name, argv, run.stderr)


def test_the_shipped_size_is_the_one_the_configs_name() -> None:
    named = {
        match
        for p in CONFIGS.rglob("*.toml")
        for match in re.findall(r"--generate (\d+x\d+)", p.read_text())
    }
    assert named == {f"{SHIPPED[0]}x{SHIPPED[1]}"}
