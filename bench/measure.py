"""Running one bench client (a subprocess, or in-process for smoke runs) and reading its figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import clients
from bench.clients import ClientSpec

REPO = Path(__file__).resolve().parent.parent


def isolate_aws(home: Path) -> None:
    """Dummy credentials and config for this process and every client it starts.

    The bench talks to the emulator only; nothing may ever reach a real AWS account.
    """
    home.mkdir(parents=True, exist_ok=True)
    (home / "config").write_text(f"[default]\nregion = {clients.REGION}\n")
    (home / "credentials").write_text("")
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_CODEARTIFACT",
        "AWS_ENDPOINT_URL_S3",  # the S3 scenario points it at its own moto server
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": clients.REGION,
            "AWS_CONFIG_FILE": str(home / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )


def run_client(
    spec: ClientSpec,
    *,
    inprocess: bool = False,
    on_ready: Callable[[], None] | None = None,
    timeout: float = 3600.0,
) -> dict[str, Any]:
    """Run one client to its end and return its figures.

    A subprocess by default, so that its CPU time (wait4) and peak RSS (its own VmHWM)
    are its own; `on_ready` runs in the caller the moment the client announces its first call.
    """
    ready = on_ready or (lambda: None)
    if inprocess:
        return clients.run(spec, ready)
    workdir = Path(spec.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    spec_path = workdir / f"{spec.client}.spec.json"
    result_path = workdir / f"{spec.client}.result.json"
    spec_path.write_text(json.dumps(asdict(spec)))
    result_path.unlink(missing_ok=True)
    with open(workdir / f"{spec.client}.stderr", "w+") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.clients", str(spec_path), str(result_path)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            cwd=REPO,
        )
        assert proc.stdout is not None
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            line = proc.stdout.readline()
            if line.strip() == "READY":
                ready()
            proc.stdout.read()
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        finally:
            timer.cancel()
        if proc.returncode != 0 or not result_path.exists():
            err.seek(0)
            tail = err.read()[-3000:]
            raise RuntimeError(f"client {spec.client} failed ({proc.returncode}):\n{tail}")
    result: dict[str, Any] = json.loads(result_path.read_text())
    result["ru_maxrss_mb"] = usage.ru_maxrss / 1024  # may be the parent's: see peak_rss_mb
    result["process_cpu_s"] = usage.ru_utime + usage.ru_stime
    return result


def new_workdir(base: Path | None, name: str) -> Path:
    """A fresh directory for one client run's manifest, journal and logs."""
    root = base or Path(tempfile.gettempdir())
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=root))
