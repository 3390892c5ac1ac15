"""The README's commands work: CI runs its test command, and each bulkops example runs here."""

from __future__ import annotations

import csv
import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bulkops.emulator import QuotaConfig, run_emulator
from bulkops.model import PackageRef
from tests.cli_support import bulkops, rows_for
from tests.s3_support import moto_s3, s3_admin

__all__ = ["moto_s3"]  # the session fixture, used by name

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def example_lines() -> list[list[str]]:
    """Every `bulkops …` command in the README's code blocks, as argv."""
    blocks = re.findall(r"```sh\n(.*?)```", README, re.S)
    return [
        shlex.split(line)
        for block in blocks
        for line in block.splitlines()
        if line.startswith("bulkops ")
    ]


def option_names(help_text: str) -> set[str]:
    """The long options a command's --help lists, as whole tokens (`--copy-rate` is no `--rate`)."""
    return set(re.findall(r"(?<![\w-])(--[a-z0-9][a-z0-9-]*)", help_text))


def test_an_option_is_found_only_as_a_whole_token_of_the_help() -> None:
    help_text = "  --copy-rate FLOAT  Copy calls/s.\n  --execute / --dry-run  Send calls.\n"
    assert option_names(help_text) == {"--copy-rate", "--execute", "--dry-run"}
    assert "--rate" not in option_names(help_text)


@pytest.mark.slow
def test_ci_runs_exactly_the_readme_test_command() -> None:
    indented = re.findall(r"^    (python3 -m venv .*)$", README, re.M)
    assert len(indented) == 2, "the README has its two set-up commands"
    demo, tests = indented
    assert demo.endswith("bulkops demo")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci


@pytest.mark.slow
@pytest.mark.parametrize("argv", example_lines(), ids=lambda a: " ".join(a[:2]))
def test_every_readme_example_uses_only_options_its_command_has(argv: list[str]) -> None:
    help_text = subprocess.run(
        [sys.executable, "-m", "bulkops", argv[1], "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    options = option_names(help_text)
    for word in argv[2:]:
        if word.startswith("--"):
            assert word.split("=")[0] in options, f"{argv[1]} has no {word}"


def _stub(path: Path, keys: list[tuple[PackageRef, str]]) -> None:
    with path.open("w", newline="") as f:
        if path.suffix == ".jsonl":
            for row in rows_for(keys):
                f.write(json.dumps(row) + "\n")
            return
        writer = csv.DictWriter(f, ["format", "namespace", "package", "version"])
        writer.writeheader()
        for row in rows_for(keys):
            writer.writerow({**row, "namespace": row["namespace"] or ""})


@pytest.mark.slow
@pytest.mark.asyncio
async def test_the_readme_workflow_runs_against_the_emulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moto_s3: str
) -> None:
    monkeypatch.chdir(tmp_path)
    s3_admin(moto_s3).create_bucket(Bucket="ckpt")  # the S3 checkpoint examples' bucket
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_s3)
    async with run_emulator(generate=(12, 10), quotas=QuotaConfig.off()) as emu:
        emu.add_repository("sandbox")
        keys = sorted(k for k, v in emu.versions("main").items() if v.status == "Published")
        _stub(tmp_path / "old.csv", keys[:30])
        _stub(tmp_path / "prereleases.jsonl", keys[30:40])
        _stub(tmp_path / "release-2x.csv", keys[40:45])
        _stub(tmp_path / "m.jsonl", keys[45:50])
        rules = re.search(r"cat > old-1x.toml <<'EOF'\n(.*?\n)EOF\n", README, re.S)
        assert rules is not None, "recipe 3 writes its rules file"
        (tmp_path / "old-1x.toml").write_text(rules.group(1))
        emu.add_version("sandbox", "pypi", None, "acme-scratch", "0.1.0")
        (tmp_path / "abandoned.csv").write_text("format,namespace,package\npypi,,acme-scratch\n")
        # what the selection recipes look for: scoped npm packages with 1.x, 2.x and
        # pre-release lines, published long ago
        long_ago = time.time() - 400 * 86400
        for name in ("legacy-ui", "legacy-forms", "widgets"):
            for i, version in enumerate(
                ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "2.0.0-rc.1", "2.0.0", "2.1.0", "3.0.0"]
            ):
                emu.add_version(
                    "main", "npm", "acme-web", name, version, published_time=long_ago + i
                )
        ran = 0
        for argv in example_lines():
            command = argv[1]
            if command in ("emulator",) or "--config" in argv:
                continue  # the emulator's CLI and the job files have tests of their own
            args = argv[1:]
            if command in ("delete", "dispose", "copy", "delete-packages"):
                args = [a for a in args if a != "--execute"]  # plan only: the workflow executes
            run = await bulkops(emu, *args)
            assert run.code == 0, (argv, run.stderr)
            ran += 1
        assert ran >= 19
        assert (tmp_path / "archive.journal").exists()
        assert {v.status for k, v in emu.versions("main").items() if k in set(keys[:30])} == {
            "Archived"
        }
