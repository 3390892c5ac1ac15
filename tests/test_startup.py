"""Start-up: `--help`, `--version` and completion load no AWS or HTTP library."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bulkops.cli import LAZY_COMMANDS, cli

HEAVY = ("aioboto3", "aiobotocore", "botocore", "boto3", "aiohttp", "rich", "pydantic")


def imported_modules(*argv: str, env: dict[str, str] | None = None) -> set[str]:
    """The modules `python -X importtime -m bulkops ARGV` imports, from its stderr."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bulkops", *argv],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    assert "bulkops.cli" in names  # the parse found the import lines at all
    return names


def heavy_in(names: set[str]) -> list[str]:
    return sorted(n for n in names if n.split(".")[0] in HEAVY)


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["-h"]])
def test_help_and_version_import_no_aws_http_or_rich_module(argv: list[str]) -> None:
    assert heavy_in(imported_modules(*argv)) == []


def test_completing_a_command_name_imports_no_aws_module() -> None:
    env = {"_BULKOPS_COMPLETE": "bash_complete", "COMP_WORDS": "bulkops d", "COMP_CWORD": "1"}
    assert heavy_in(imported_modules(env=env)) == []


def test_running_a_command_still_loads_it_on_demand() -> None:
    assert "botocore" in imported_modules("set-status", "--help")


def test_each_listed_summary_is_the_commands_own_first_help_paragraph() -> None:
    for name, (_, _, summary) in LAZY_COMMANDS.items():
        command = cli.get_command(None, name)  # type: ignore[arg-type]
        assert command is not None and command.name == name
        assert command.get_short_help_str(limit=1000) == summary


def test_group_help_lists_every_command_sorted() -> None:
    out = CliRunner().invoke(cli, ["--help"]).output
    listed = [
        line.split()[0]
        for line in out.split("Commands:")[1].splitlines()
        if line.startswith("  ") and not line.startswith("    ")
    ]
    assert listed[: len(LAZY_COMMANDS)] == sorted(LAZY_COMMANDS)


def test_the_fast_exit_still_runs_atexit_handlers_and_flushes_output(tmp_path: Path) -> None:
    marker = tmp_path / "atexit-ran"
    script = (
        "import atexit, sys\n"
        f"atexit.register(lambda: open({str(marker)!r}, 'w').write('yes'))\n"
        "sys.argv = ['bulkops', '--version']\n"
        "sys.stdout.write('before ')\n"
        "from bulkops.cli import main\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("before bulkops, version ")
    assert marker.read_text() == "yes"
