"""What an operator sees: the demo, JSON logs when piped, a live bar on a terminal, no secrets."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
import structlog

from bulkops import log as logsetup

pytestmark = pytest.mark.slow

SMALL_DEMO = ["demo", "--packages", "20", "--versions", "10", "--seed", "3"]


def test_demo_exits_0_and_every_report_agrees_with_the_ground_truth(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bulkops", *SMALL_DEMO, "--workdir", tmp_path / "demo"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("ground truth agrees") == 3
    assert "DISAGREES" not in run.stdout
    journals = sorted(p.name for p in (tmp_path / "demo").glob("*.journal"))
    assert journals == ["1-set-status.journal", "2-dispose.journal", "3-copy.journal"]


def test_piped_logs_are_json_lines_with_job_id_and_progress_events_and_no_animation(
    tmp_path: Path,
) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bulkops",
            *SMALL_DEMO,
            "--workdir",
            tmp_path / "demo",
            "--progress-interval",
            "0.2",
            "--no-faults",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stderr.splitlines() if line.strip()]
    assert lines, "expected log lines on stderr"
    assert all("\r" not in line and "\x1b[" not in line for line in run.stderr.splitlines())
    progress = [e for e in lines if e["event"] == "progress"]
    assert progress
    assert all(
        {"job_id", "operation", "done", "total", "calls_per_s", "eta_s"} <= e.keys()
        for e in progress
    )


def test_on_a_terminal_the_demo_shows_a_live_progress_bar(tmp_path: Path) -> None:
    pid, fd = pty.fork()
    if pid == 0:  # the child: bulkops on a pseudo-terminal
        os.execv(
            sys.executable,
            [sys.executable, "-m", "bulkops", *SMALL_DEMO, "--workdir", str(tmp_path / "demo")],
        )
    chunks = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            data = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    screen = b"".join(chunks).decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, screen[-2000:]
    assert re.search(r"versions.*\d+%", screen)
    assert "calls/s" in screen
    assert "Totals" in screen


def test_credentials_and_signatures_are_redacted_from_our_logs_and_botocore_s() -> None:
    out = io.StringIO()
    logsetup.configure(level="debug", fmt="json", stream=out)
    try:
        structlog.get_logger("t").info(
            "call", aws_secret_access_key="wJalrXUtnFEMI/K7MDENG", session_token="FwoGZX"
        )
        logging.getLogger("botocore.utils").debug(
            "Request: {'headers': {'Authorization': b'AWS4-HMAC-SHA256 "
            "Credential=AKIAIOSFODNN7EXAMPLE/20261121/us-east-1/codeartifact/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=0123456789abcdef0123', "
            "'X-Amz-Security-Token': 'IQoJb3JpZ2luX2VjEXAMPLETOKEN'}}"
        )
    finally:
        logsetup.configure(level="info", fmt="json", stream=io.StringIO())
    text = out.getvalue()
    for secret in (
        "wJalrXUtnFEMI",
        "FwoGZX",
        "AKIAIOSFODNN7EXAMPLE",
        "0123456789abcdef0123",
        "IQoJb3JpZ2luX2VjEXAMPLETOKEN",
    ):
        assert secret not in text
    assert text.count("redacted") >= 4


SECRETS_IN_AN_ERROR = (
    "Authorization: AWS4-HMAC-SHA256 "
    "Credential=AKIAIOSFODNN7EXAMPLE/20261121/us-east-1/codeartifact/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=fedcba9876543210fedcba98, "
    "x-amz-security-token: IQoJb3JpZ2luX2VjSESSIONTOKEN"
)


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_tracebacks_are_redacted_from_our_logs_and_stdlib_ones(fmt: logsetup.LogFormat) -> None:
    out = io.StringIO()
    logsetup.configure(level="debug", fmt=fmt, stream=out)
    try:
        try:
            raise RuntimeError(SECRETS_IN_AN_ERROR)
        except RuntimeError:
            structlog.get_logger("t").exception("call_failed")
            logging.getLogger("aiobotocore.t").exception("stdlib saw it too")
    finally:
        logsetup.configure(level="info", fmt="json", stream=io.StringIO())
    text = out.getvalue()
    assert text.count("RuntimeError: Authorization") == 2  # both tracebacks, redacted
    for secret in ("AKIAIOSFODNN7EXAMPLE", "fedcba9876543210fedcba98", "SESSIONTOKEN"):
        assert secret not in text


def test_a_fatal_error_message_is_redacted_where_it_is_printed(tmp_path: Path) -> None:
    from bulkops.cli.exits import finish
    from bulkops.engine.types import RunResult, Stats
    from bulkops.errors import AccessDenied
    from bulkops.journal.journal import JournalHeader, LocalFileStore, create_journal
    from bulkops.model import JobSpec, Operation

    checkpoint = tmp_path / "cp.journal"
    header = JournalHeader.new(JobSpec(Operation.DELETE, domain="acme", repository="main"))

    async def make() -> None:
        async with await create_journal(LocalFileStore(checkpoint), header):
            pass

    anyio.run(make)
    result = RunResult(Stats(), "fatal", AccessDenied(f"X: {SECRETS_IN_AN_ERROR}"))
    for fmt in ("console", "json"):
        err, logs = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            logsetup.configure(level="error", fmt=fmt, stream=logs)
            assert finish(checkpoint, result) == 77
        if fmt == "console":  # the human line
            shown = err.getvalue()
            assert "bulkops: error: X: Authorization" in shown
        else:  # the same as an event, and nothing but JSON
            shown = logs.getvalue()
            assert err.getvalue() == ""
            events = [json.loads(line) for line in shown.splitlines()]
            (failed,) = [e for e in events if e["event"] == "run_failed"]
            assert failed["error"].startswith("X: Authorization")
            assert failed["exit_code"] == 77
            assert failed["resume_command"] == f"bulkops resume {checkpoint}"
        for secret in ("AKIAIOSFODNN7EXAMPLE", "fedcba9876543210fedcba98", "SESSIONTOKEN"):
            assert secret not in shown
