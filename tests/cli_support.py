"""Running the bulkops command line as a subprocess against an in-process emulator."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from bulkops.emulator import RunningEmulator
from bulkops.model import PackageRef


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


def cli_env(emu: RunningEmulator) -> dict[str, str]:
    """The test's isolated AWS environment, pointed at the emulator by botocore's own variable."""
    env = dict(os.environ)
    env["AWS_ENDPOINT_URL_CODEARTIFACT"] = emu.endpoint_url
    env["PYTHONUNBUFFERED"] = "1"
    return env


async def bulkops(emu: RunningEmulator, *args: str | Path, stdin: bytes | None = None) -> Run:
    """Run `python -m bulkops ARGS` to completion while the emulator keeps serving."""
    result = await anyio.run_process(
        [sys.executable, "-m", "bulkops", *map(str, args)],
        input=stdin,
        env=cli_env(emu),
        check=False,
    )
    return Run(result.returncode, result.stdout.decode(), result.stderr.decode())


def write_manifest(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    with path.open("w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return path


def rows_for(
    keys: Iterable[tuple[PackageRef, str]], revisions: dict[Any, str] | None = None
) -> list[dict[str, Any]]:
    out = []
    for ref, version in keys:
        row: dict[str, Any] = {
            "format": ref.format,
            "namespace": ref.namespace,
            "package": ref.package,
            "version": version,
        }
        if revisions is not None:
            row["revision"] = revisions[(ref, version)]
        out.append(row)
    return out


def report_lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def log_events(stderr: str) -> list[dict[str, Any]]:
    """A piped run's stderr as its JSON log events; a line that is not JSON fails the test."""
    return [json.loads(line) for line in stderr.splitlines() if line.strip()]


def sent(emu: RunningEmulator) -> int:
    """Calls the emulator answered, besides the DescribeRepository checks before a job."""
    calls = emu.counters()["calls"]
    return sum(calls.values()) - calls.get("DescribeRepository", 0)
