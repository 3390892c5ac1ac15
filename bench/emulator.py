"""The emulator as a separate process (its CPU is not the client's), its admin API, manifests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bulkops.emulator.quota import OPERATION_SCOPES


class EmulatorProcess:
    """`python -m bulkops.emulator` with generated data; stopped by `close()` or `with`."""

    def __init__(self, generate: str, *args: str) -> None:
        started = time.perf_counter()
        cmd = [sys.executable, "-m", "bulkops.emulator", "--generate", generate, *args]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.proc.stdout is not None
        url = self.proc.stdout.readline().strip()
        if not url.startswith("http"):
            self.proc.kill()
            raise RuntimeError(f"emulator did not start (said {url!r})")
        self.url = url
        self.generate = generate
        self.startup_s = time.perf_counter() - started

    # ---- admin API --------------------------------------------------------------------

    def _request(self, path: str, data: Any = None) -> Any:
        body = None if data is None else json.dumps(data).encode()
        req = urllib.request.Request(self.url + "/_emulator/" + path, data=body)
        if body is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=600) as resp:
            return json.loads(resp.read())

    def configure(
        self, quotas: dict[str, Any] | str | None = None, faults: dict[str, Any] | None = None
    ) -> None:
        """Merge quotas ("off" for none) and faults over the running settings."""
        data: dict[str, Any] = {}
        if quotas is not None:
            data["quotas"] = quotas
        if faults is not None:
            data["faults"] = faults
        self._request("config", data)

    def set_quota(self, scope: str, rate: float | None) -> None:
        self.configure({scope: None if rate is None else {"rate": rate}})

    def counters(self) -> dict[str, Any]:
        return dict(self._request("counters"))

    def reset_counters(self) -> None:
        self._request("reset-counters", {})

    def state(self) -> dict[str, Any]:
        return dict(self._request("state"))

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the emulator process so far (Linux /proc)."""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float:
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def server_totals(counters: dict[str, Any], operation: str) -> dict[str, int]:
    """calls, throttled, errors (other than throttles) and accepted calls of one operation."""
    calls = int(counters["calls"].get(operation, 0))
    throttled = int(counters["throttled"].get(operation, 0))
    errors = sum(counters["errors"].values()) - sum(counters["throttled"].values())
    return {
        "calls": calls,
        "throttled": throttled,
        "errors": max(0, errors),
        "accepted": calls - throttled - max(0, errors),
    }


def quota_scope(operation: str) -> str:
    """The scope whose quota bounds `operation` (Copy: the copy quota, the tighter one)."""
    scopes = OPERATION_SCOPES[operation]
    return "copy" if "copy" in scopes else scopes[0]


def packages(state: dict[str, Any], repository: str = "main") -> list[dict[str, Any]]:
    """The packages of a repository in the exported state, in the emulator's order."""
    return list(state["domains"]["acme"]["repositories"][repository]["packages"])


def write_manifest(path: Path, pkgs: list[dict[str, Any]]) -> int:
    """A JSON Lines manifest of every version of `pkgs` (no revisions); returns its rows."""
    rows = 0
    with path.open("w") as f:
        for line in manifest_lines(pkgs):
            f.write(line)
            rows += 1
    return rows


def manifest_lines(pkgs: list[dict[str, Any]]) -> Iterator[str]:
    for p in pkgs:
        head: dict[str, str] = {"format": p["format"]}
        if p.get("namespace") is not None:
            head["namespace"] = p["namespace"]
        head["package"] = p["package"]
        for version in p["versions"]:
            yield json.dumps({**head, "version": version}, separators=(",", ":")) + "\n"
