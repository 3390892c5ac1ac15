"""No credential leaves a job: sentinels from every source, every command, every output."""

from __future__ import annotations

import json
import os
import secrets
import signal
import stat
import string
import sys
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
import structlog
from moto.server import ThreadedMotoServer

from bulkops.emulator import FaultConfig, QuotaConfig, RunningEmulator, run_emulator
from tests.cli_support import Run, cli_env, rows_for, write_manifest

pytestmark = pytest.mark.slow

FAULTS = FaultConfig(latency_ms=2, error_rate=0.1, lost_rate=0.05, conflict_rate=0.05)
QUICK = ("--concurrency", "4", "--grace-period", "5", "--call-timeout", "5")
JOB = ("--domain", "acme", "--repository", "main")
MIN_LEAK = 12  # no substring of a sentinel this long may appear anywhere
B64 = string.ascii_letters + string.digits + "+/"


def _random(alphabet: str, n: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def sentinel_keys(token_prefix: str) -> tuple[str, str, str]:
    """A key id, a secret with '/' and '+' (URL-encoded differently), a session token."""
    key_id = "AKIA" + _random(string.ascii_uppercase + string.digits, 16)
    secret = _random(B64, 18) + "/+" + _random(B64, 20)
    token = token_prefix + _random(B64, 40) + "/" + _random(B64, 60) + "=="
    return key_id, secret, token


def leaks(text: str, sentinels: set[str]) -> list[str]:
    """Each sentinel of which `text` holds any substring of MIN_LEAK characters."""
    found = []
    for value in sentinels:
        if any(value[i : i + MIN_LEAK] in text for i in range(len(value) - MIN_LEAK + 1)):
            found.append(value)
    return found


CREDENTIAL_PROCESS = """\
import json, sys, time, datetime, secrets, string
issued, counter = sys.argv[1], sys.argv[2]
try:
    n = int(open(counter).read()) + 1
except FileNotFoundError:
    n = 1
open(counter, "w").write(str(n))
alphabet = string.ascii_letters + string.digits + "+/"
rand = lambda k: "".join(secrets.choice(alphabet) for _ in range(k))
creds = {
    "AccessKeyId": "AKIA" + "".join(secrets.choice(string.ascii_uppercase) for _ in range(16)),
    "SecretAccessKey": rand(20) + "/" + rand(19),
    "SessionToken": "IQoJb3JpZ2lu" + rand(90),
}
with open(issued, "a") as f:
    for value in creds.values():
        f.write(value + "\\n")
# 11 minutes left: inside botocore's 15-minute advisory window, so every call refreshes
expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=11)
print(json.dumps({"Version": 1, **creds, "Expiration": expires.isoformat()}))
"""


@dataclass
class Sources:
    """The credential sources under test and every sentinel value they hand out."""

    aws_dir: Path
    env_keys: tuple[str, str, str]
    base_keys: tuple[str, str, str]
    sts_url: str
    url_password: str
    extra: set[str] = field(default_factory=set)

    def env(self, emu: RunningEmulator, source: str) -> dict[str, str]:
        env = cli_env(emu)
        env["AWS_CONFIG_FILE"] = str(self.aws_dir / "config")
        env["AWS_SHARED_CREDENTIALS_FILE"] = str(self.aws_dir / "credentials")
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            env.pop(name, None)
        if source == "env":
            key_id, secret, token = self.env_keys
            env.update(
                AWS_ACCESS_KEY_ID=key_id, AWS_SECRET_ACCESS_KEY=secret, AWS_SESSION_TOKEN=token
            )
        elif source == "process":
            env["AWS_PROFILE"] = "process"
        else:
            env["AWS_PROFILE"] = "chain"
            env["AWS_ENDPOINT_URL_STS"] = self.sts_url
        return env

    def assumed_roles(self) -> list[tuple[str, str, str]]:
        """The credentials moto's STS handed out, as (key id, secret, token)."""
        from moto.sts.models import sts_backends

        return [
            (role.access_key_id, role.secret_access_key, role.session_token)
            for regions in sts_backends.values()
            for backend in regions.values()
            for role in backend.assumed_roles
        ]

    def issued(self) -> set[str]:
        """Every value a source handed out so far: ours, credential_process's and moto's."""
        values = {*self.env_keys, *self.base_keys, self.url_password, *self.extra}
        issued = self.aws_dir / "issued"
        if issued.exists():
            values |= set(issued.read_text().split())
        for keys in self.assumed_roles():
            values |= set(keys)
        return values


@pytest.fixture
def moto_sts() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def sources(tmp_path: Path, moto_sts: str) -> Sources:
    aws_dir = tmp_path / "aws"
    aws_dir.mkdir(mode=0o700)
    script = aws_dir / "credential_process.py"
    script.write_text(CREDENTIAL_PROCESS)
    base = sentinel_keys("")
    process = f"{sys.executable} {script} {aws_dir / 'issued'} {aws_dir / 'counter'}"
    (aws_dir / "config").write_text(
        "[default]\nregion = us-east-1\n"
        f"[profile process]\nregion = us-east-1\ncredential_process = {process}\n"
        "[profile chain]\nregion = us-east-1\n"
        "role_arn = arn:aws:iam::123456789012:role/bulkops-job\n"
        "role_session_name = bulkops-leak-test\nsource_profile = base\n"
        f"[profile base]\nregion = us-east-1\naws_access_key_id = {base[0]}\n"
        f"aws_secret_access_key = {base[1]}\naws_session_token = {base[2]}\n"
    )
    (aws_dir / "credentials").write_text("")
    return Sources(aws_dir, sentinel_keys("FQoGZXIvYXdz"), base, moto_sts, "pw" + _random(B64, 22))


class Transcript:
    """Every command run, its output kept to be searched for sentinels."""

    def __init__(self, emu: RunningEmulator, sources: Sources, work: Path) -> None:
        self.emu, self.sources, self.work = emu, sources, work
        self.outputs: list[tuple[str, str]] = []

    async def run(
        self, source: str, fmt: str, *args: str | Path, wrapper: list[str] | None = None
    ) -> Run:
        argv = [*map(str, args), "--log-level", "debug", "--log-format", fmt]
        if args[0] == "report":
            argv = [*map(str, args)]  # report has no log options: its output is the report
        elif args[0] == "pipe":
            argv = ["pipe", *argv[1:]]  # `sh -c SCRIPT pipe OPTIONS`: $* is the options
        command = [*(wrapper or [sys.executable, "-m", "bulkops"]), *argv]
        result = await anyio.run_process(
            command, env=self.sources.env(self.emu, source), check=False, cwd=self.work
        )
        run = Run(result.returncode, result.stdout.decode(), result.stderr.decode())
        self.check(f"{source}: {' '.join(argv)}", run.stdout + run.stderr)
        return run

    def check(self, name: str, output: str) -> None:
        """Fail at once, naming the command, when its output holds a sentinel."""
        found = leaks(output, self.sources.issued())
        assert not found, f"{name} printed {found}"
        self.outputs.append((name, output))

    def assert_no_leak(self) -> None:
        sentinels = self.sources.issued()
        for name, text in self.outputs:
            assert not leaks(text, sentinels), f"a credential in the output of {name}"
        files = [p for p in self.work.rglob("*") if p.is_file()]
        assert len(files) >= 10  # plans, journals, chunk lists, undo manifests
        for path in files:
            text = path.read_bytes().decode("utf-8", "replace")
            assert not leaks(text, sentinels), f"a credential in {path}"


CRASH = """\
import os, sys
import bulkops.aws.adapter
from bulkops.cli import main

async def run_chunk(self, spec, chunk):
    secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    token = os.environ["AWS_SESSION_TOKEN"]
    raise RuntimeError(f"bug while holding {secret} and {token!r} and {token.encode()!r}")

bulkops.aws.adapter.AwsRegistry.run_chunk = run_chunk
sys.argv[0] = "bulkops"
main()
"""


def journal_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


async def sigterm_drain(t: Transcript, fmt: str, manifest: Path, cp: Path) -> int:
    """A set-status run stopped by SIGTERM once it journaled something; its exit code."""
    argv = ["set-status", *JOB, "--manifest", str(manifest), "--target-status", "Unlisted"]
    argv += ["--checkpoint", str(cp), "--execute", "--rate", "4", *QUICK]
    argv += ["--log-level", "debug", "--log-format", fmt]
    env = t.sources.env(t.emu, "env")
    async with await anyio.open_process(
        [sys.executable, "-m", "bulkops", *argv], env=env, cwd=t.work
    ) as proc:
        with anyio.fail_after(30):
            while journal_lines(cp) < 3 and proc.returncode is None:
                await anyio.sleep(0.02)
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        out, err = b"", b""
        assert proc.stdout is not None and proc.stderr is not None
        async with anyio.create_task_group() as tg:

            async def read_out() -> None:
                nonlocal out
                async for chunk in proc.stdout:  # type: ignore[union-attr]
                    out += chunk

            async def read_err() -> None:
                nonlocal err
                async for chunk in proc.stderr:  # type: ignore[union-attr]
                    err += chunk

            tg.start_soon(read_out)
            tg.start_soon(read_err)
        code = await proc.wait()
    t.check("env: sigterm drain " + " ".join(argv), out.decode() + err.decode())
    return code


@pytest.mark.asyncio
async def test_no_credential_from_any_source_leaves_any_command_at_debug(
    tmp_path: Path, sources: Sources
) -> None:
    quotas = QuotaConfig.from_dict({"write": 40})
    async with run_emulator(generate=(20, 6), quotas=quotas, faults=FAULTS, seed=3) as emu:
        work = tmp_path / "job"
        work.mkdir(mode=0o700)
        t = Transcript(emu, sources, work)
        keys = sorted(emu.versions("main"))
        ok = (0, 3, 75)  # done, permanent failures, or resumable: never a crash

        # plan, from each credential source, in each log format
        run = await t.run("env", "json", "plan", *JOB, "--out", "p.jsonl", "--status", "Published")
        assert run.code == 0, run.stderr
        assert '"aws_answer"' in run.stderr  # debug was on and botocore was asked
        for source, fmt in (("process", "console"), ("role", "json")):
            run = await t.run(
                source, fmt, "plan", *JOB, "--out", f"p-{source}.jsonl", "--status", "Published"
            )
            assert run.code == 0, run.stderr

        parts = [write_manifest(work / f"m{i}.jsonl", rows_for(keys[i::5])) for i in range(5)]
        copies = write_manifest(work / "copies.jsonl", rows_for(keys[2::5][:6]))
        first = keys[0][0]
        packages = write_manifest(
            work / "packages.jsonl",
            [{"format": first.format, "namespace": first.namespace, "package": first.package}],
        )
        operations = [
            ("set-status", parts[0], ("--target-status", "Archived")),
            ("dispose", parts[1], ()),
            ("copy", copies, ("--destination-repository", "release")),
            ("delete", parts[3], ()),
            ("delete-packages", packages, ()),
        ]
        for i, (op, manifest, extra) in enumerate(operations):
            fmt = ("console", "json")[i % 2]
            args = [op, *JOB, "--manifest", manifest, *extra]
            if op == "copy":
                args = [op, "--domain", "acme", "--source-repository", "main", "--manifest"]
                args += [manifest, *extra]
            run = await t.run("env", fmt, *args)  # dry run
            assert run.code == 0, run.stderr
            run = await t.run(
                "env",
                ("json", "console")[i % 2],
                *args,
                "--checkpoint",
                f"state/{op}.journal",
                "--execute",
                *QUICK,
            )
            assert run.code in ok, run.stderr

        # refreshed credentials from credential_process and an assume-role chain, both formats
        for source in ("process", "role"):
            for fmt in ("console", "json"):
                cp = f"state/{source}-{fmt}.journal"
                args = ["set-status", *JOB, "--manifest", parts[4], "--target-status"]
                run = await t.run(
                    source, fmt, *args, "Archived", "--checkpoint", cp, "--execute", *QUICK
                )
                assert run.code in ok, run.stderr
        assert int((sources.aws_dir / "counter").read_text()) > 2  # refreshed during runs
        assert len(sources.assumed_roles()) >= 3  # each role run assumed the role at moto

        # a SIGTERM drain, then its resume
        drain = write_manifest(work / "drain.jsonl", rows_for(keys[::2]))
        code = await sigterm_drain(t, "json", drain, work / "state" / "drain.journal")
        assert code in (0, 75)
        run = await t.run("env", "console", "resume", "state/drain.journal", *QUICK)
        assert run.code in ok, run.stderr

        # reports in every format, undo manifests, a JSON log piped through a pipe
        for fmt in ("table", "json", "jsonl", "csv"):
            run = await t.run("env", "json", "report", "state/set-status.journal", "--format", fmt)
            assert run.code == 0, run.stderr
        run = await t.run(
            "env", "json", "report", "state/set-status.journal", "--failed-only", "--format", "csv"
        )
        run = await t.run("env", "json", "report", "state/set-status.journal", "--undo")
        assert run.code == 0, run.stderr
        piped = f"{sys.executable} -m bulkops resume state/set-status.journal"
        run = await t.run("env", "json", "pipe", wrapper=["sh", "-c", f"{piped} $* 2>&1 | cat"])
        assert run.code == 0 and '"level": "debug"' in run.stdout, run.stdout

        # a crash with a traceback whose message carries the secret and the token
        run = await t.run(
            "env",
            "console",
            "set-status",
            *JOB,
            "--manifest",
            parts[4],
            "--target-status",
            "Unlisted",
            "--checkpoint",
            "state/crash.journal",
            "--execute",
            *QUICK,
            wrapper=[sys.executable, "-c", CRASH],
        )
        assert run.code == 1 and "Traceback" in run.stderr, run.stderr
        assert "RuntimeError: bug while holding [redacted]" in run.stderr

        # a password in --endpoint-url (aiohttp refuses it: every chunk fails and is journaled)
        password = urllib.parse.quote(sources.url_password, safe="")  # '/' and '+' encoded
        url = f"http://bulkops:{password}@{emu.endpoint_url.removeprefix('http://')}"
        run = await t.run(
            "env",
            "json",
            "dispose",
            *JOB,
            "--manifest",
            parts[4],
            "--checkpoint",
            "state/url.journal",
            "--execute",
            "--endpoint-url",
            url,
            "--max-attempts",
            "1",
            *QUICK,
        )
        assert run.code == 75, run.stderr
        assert "http://[redacted]@127.0.0.1" in run.stderr

        # the demo runs its own emulator with its own keys: nothing of ours may leak there either
        run = await t.run(
            "env",
            "json",
            "demo",
            "--packages",
            "10",
            "--versions",
            "5",
            "--no-faults",
            "--workdir",
            "demo",
        )
        assert run.code == 0, run.stderr

        t.assert_no_leak()
        assert os.environ.get("AWS_SESSION_TOKEN") is None  # the test's own env stayed clean


@pytest.mark.asyncio
async def test_every_job_state_file_is_0600_in_a_0700_directory(tmp_path: Path) -> None:
    async with run_emulator(generate=(4, 5), quotas=QuotaConfig.off()) as emu:
        manifest = write_manifest(tmp_path / "m.jsonl", rows_for(sorted(emu.versions("main"))))
        state = tmp_path / "new" / "state"
        env = cli_env(emu)
        args = ["set-status", *JOB, "--manifest", str(manifest), "--target-status", "Archived"]
        args += ["--checkpoint", str(state / "cp.journal"), "--execute"]
        for argv in (args, ["report", str(state / "cp.journal"), "--undo"]):
            done = await anyio.run_process(
                [sys.executable, "-m", "bulkops", *argv], env=env, check=False
            )
            assert done.returncode == 0, done.stderr.decode()
    files = sorted(state.rglob("*"))
    assert {p.name for p in files} >= {"cp.journal", "cp.journal.chunks"}
    assert any("undo" in p.name for p in files)
    for path in [state, *files]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {oct(mode)}"


def test_a_shared_checkpoint_directory_gets_a_warning_naming_it(tmp_path: Path) -> None:
    from structlog.testing import capture_logs

    from bulkops.journal.journal import LocalFileStore

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o750)
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    structlog.reset_defaults()  # an earlier test may have configured a level above warning
    with capture_logs() as logs:
        for directory in (shared, private):
            store = LocalFileStore(directory / "cp.journal")
            anyio.run(store.create, b'{"header": true}\n')
            anyio.run(store.release)
    warnings = [e for e in logs if e["event"] == "checkpoint_dir_shared"]
    assert len(warnings) == 1
    assert warnings[0]["directory"] == str(shared.resolve())
    assert warnings[0]["log_level"] == "warning"


def test_a_url_password_is_masked_in_every_message() -> None:
    from bulkops import log

    assert log.redact_text("to http://me:pass@host:8080/v1") == "to http://[redacted]@host:8080/v1"
    long = "s3cret/pa+ss-word-of-twenty"
    log.register_url_password(f"http://me:{long.replace('/', '%2F')}@host")
    text = f"{long} {json.dumps(long)} {long.replace('/', '%2F')} {long.encode()!r}"
    assert "s3cret" not in log.redact_text(text)


def test_the_emulator_binds_loopback_by_default_and_warns_when_bound_elsewhere() -> None:
    from click.testing import CliRunner

    from bulkops.cli.emulator import emulator, exposure_warning
    from bulkops.emulator.runner import EmulatorConfig

    assert EmulatorConfig().host == "127.0.0.1"
    assert next(p for p in emulator.params if p.name == "host").default == "127.0.0.1"
    for quiet in ("127.0.0.1", "::1", "[::1]", "localhost", "127.0.0.2"):
        assert exposure_warning(quiet) is None
    for loud in ("0.0.0.0", "::", "192.0.2.10", "build-host.example"):
        warning = exposure_warning(loud)
        assert warning is not None and loud in warning and "checks no signature" in warning
    # 192.0.2.10 (TEST-NET) is not ours: the bind fails after the warning, nothing listens
    result = CliRunner().invoke(emulator, ["--host", "192.0.2.10", "--port", "0"])
    assert result.exit_code == 1
    assert "warning: the emulator listens on 192.0.2.10" in result.output


@pytest.mark.asyncio
async def test_credentials_a_refresh_brings_are_masked_before_a_request_uses_them() -> None:
    from aiobotocore.credentials import AioRefreshableCredentials

    from bulkops.aws.session import watch_credentials
    from bulkops.log import redact_text

    handed_out: list[tuple[str, str, str]] = []

    def fetch() -> dict[str, str]:
        keys = sentinel_keys("")
        handed_out.append(keys)
        expires = datetime.now(UTC) + timedelta(minutes=5)  # always due for a refresh
        return {
            "access_key": keys[0],
            "secret_key": keys[1],
            "token": keys[2],
            "expiry_time": expires.isoformat(),
        }

    credentials = AioRefreshableCredentials.create_from_metadata(fetch(), fetch, "test")
    await watch_credentials(credentials)
    for _ in range(2):  # what the signer does before each request
        frozen = await credentials.get_frozen_credentials()
        assert frozen.token == handed_out[-1][2]
    assert len(handed_out) >= 3  # refreshed on each request
    for keys in handed_out[1:]:  # the first set was never handed to a request
        for value in keys:
            assert redact_text(f"x {value} y") == "x [redacted] y"
