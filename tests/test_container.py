"""The image's install steps in a fresh virtual environment, and bulkops as PID 1 under SIGTERM.

No Docker engine runs where CI runs, so this follows the Dockerfile by hand: build every
wheel (`pip wheel`), install bulkops from those wheels only (`--no-index`), then run it the
way the image does: exec form, as PID 1 of its own PID namespace when the machine allows.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from bulkops.emulator import QuotaConfig, run_emulator
from tests.cli_support import cli_env, rows_for, write_manifest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment holding bulkops installed as the Dockerfile installs it."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip wheel --no-cache-dir --wheel-dir /wheels ." in dockerfile
    assert "pip install --no-index --find-links=/wheels bulkops" in dockerfile
    base = tmp_path_factory.mktemp("image")
    wheels, venv = base / "wheels", base / "venv"
    src = base / "src"  # the build context: what the Dockerfile COPYs
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "bulkops", src / "bulkops", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-cache-dir", "--wheel-dir", wheels, src], check=True)
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    vpip = [venv / "bin" / "python", "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*vpip, "install", "--no-index", f"--find-links={wheels}", "bulkops"], check=True
    )
    return venv


def can_unshare_pid() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, check=False
    )
    return probe.returncode == 0


def child_of(pid: int) -> int:
    """The first child of `pid`: the process `unshare --fork` started as PID 1."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    for _ in range(500):
        text = children.read_text().split() if children.exists() else []
        if text:
            return int(text[0])
        subprocess.run(["sleep", "0.01"], check=True)
    raise AssertionError("unshare started no child")


def test_the_installed_console_script_runs(image_venv: Path) -> None:
    run = subprocess.run(
        [image_venv / "bin" / "bulkops", "--version"], capture_output=True, text=True, check=True
    )
    assert "bulkops, version" in run.stdout


@pytest.mark.asyncio
async def test_sigterm_to_bulkops_as_pid_1_exits_75_flushed_and_the_same_command_resumes(
    image_venv: Path, tmp_path: Path
) -> None:
    quotas = QuotaConfig.from_dict({"write": 10})
    async with run_emulator(generate=(40, 40), quotas=quotas) as emu:
        manifest = write_manifest(tmp_path / "m.jsonl", rows_for(sorted(emu.versions("main"))))
        checkpoints = tmp_path / "checkpoints"
        checkpoint = checkpoints / "job.journal"
        command = [
            str(image_venv / "bin" / "bulkops"), "set-status", "--domain", "acme",
            "--repository", "main", "--manifest", str(manifest), "--target-status", "Archived",
            "--checkpoint", str(checkpoint), "--resume-existing", "--execute", "--rate", "10",
            "--grace-period", "10",
        ]  # fmt: skip
        pid1 = can_unshare_pid()
        argv = ["unshare", "--pid", "--fork", "--mount-proc", *command] if pid1 else command
        env = {**cli_env(emu), "BULKOPS_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"}
        async with await anyio.open_process(argv, env=env) as proc:
            with anyio.fail_after(60):
                while not checkpoint.exists() or checkpoint.read_bytes().count(b"\n") < 4:
                    await anyio.sleep(0.02)
            target = child_of(proc.pid) if pid1 else proc.pid
            os.kill(target, signal.SIGTERM)
            with anyio.fail_after(15):  # within the grace period and then some
                code = await proc.wait()
        assert code == 75
        lines = checkpoint.read_bytes().splitlines()
        assert b'"kind":"run_ended"' in lines[-1]  # flushed to the last record
        assert oct(checkpoint.stat().st_mode & 0o777) == "0o600"
        again = await anyio.run_process(argv, env=env, check=False)
        assert again.returncode == 3, again.stderr.decode()[-2000:]  # Disposed can't be archived
        statuses = {v.status for v in emu.versions("main").values()}
        assert statuses == {"Archived", "Disposed"}
