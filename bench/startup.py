"""Time a set-status job's start (process start to first call) and end (last answer to exit).

python -m bench.startup [--baseline DIR] [--runs 3]

Starts `bulkops emulator --generate 300x300` (90,000 versions) at the default 100/s write
quota with 25-75 ms latency, writes a manifest of every version, and runs
`bulkops set-status --execute` against it, polling /_emulator/counters every 2 ms: the first
call is when the UpdatePackageVersionsStatus count leaves 0, the last answer when it reaches
900 with nothing in flight. --baseline DIR runs an older checkout's code the same way, in turn.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CALL = "UpdatePackageVersionsStatus"


def counters(url: str) -> dict[str, object]:
    with urllib.request.urlopen(f"{url}/_emulator/counters", timeout=5) as answer:
        return json.load(answer)  # type: ignore[no-any-return]


def write_manifest(url: str, path: Path) -> int:
    with urllib.request.urlopen(f"{url}/_emulator/state", timeout=60) as answer:
        state = json.load(answer)
    rows = 0
    with path.open("w") as out:
        for pkg in state["domains"]["acme"]["repositories"]["main"]["packages"]:
            for version in pkg["versions"]:
                row = {"format": pkg["format"], "package": pkg["package"], "version": version}
                if pkg.get("namespace"):
                    row["namespace"] = pkg["namespace"]
                out.write(json.dumps(row) + "\n")
                rows += 1
    return rows


def one_run(url: str, code: Path, manifest: Path, work: Path, status: str) -> tuple[float, float]:
    """(start -> first call, last answer -> exit) in seconds for one job run from `code`."""
    before = counters(url)["calls"][CALL]  # type: ignore[index]
    calls = -(-sum(1 for _ in manifest.open()) // 100)
    checkpoint = work / f"job-{time.monotonic_ns()}.journal"
    env = {**os.environ, "PYTHONPATH": str(code)}
    argv = [sys.executable, "-m", "bulkops", "set-status", "--domain", "acme"]
    argv += ["--repository", "main", "--endpoint-url", url, "--manifest", str(manifest)]
    argv += ["--target-status", status, "--checkpoint", str(checkpoint), "--execute"]
    start = time.monotonic()
    proc = subprocess.Popen(
        argv, cwd=code, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    first = last = None
    while proc.poll() is None:
        seen = counters(url)
        done = seen["calls"][CALL] - before  # type: ignore[index]
        now = time.monotonic()
        if first is None and done > 0:
            first = now
        if last is None and done >= calls and seen["in_flight"] <= 1:  # counts this poll itself
            last = now
        time.sleep(0.002)
    end = time.monotonic()
    assert first is not None and last is not None, "the job ended before all its calls"
    return first - start, end - last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="an older checkout to time alongside")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    here = Path(__file__).resolve().parent.parent
    codes = {"this": here, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    emu_argv = [sys.executable, "-m", "bulkops", "emulator", "--generate", "300x300"]
    emu_argv += ["--latency-ms", "50", "--jitter", "0.5"]
    os.environ.update(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x")
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    with tempfile.TemporaryDirectory() as tmp:
        emu = subprocess.Popen(emu_argv, cwd=here, stdout=subprocess.PIPE, text=True)
        try:
            assert emu.stdout is not None
            url = emu.stdout.readline().strip()
            manifest = Path(tmp) / "all.jsonl"
            write_manifest(url, manifest)
            figures: dict[str, list[tuple[float, float]]] = {name: [] for name in codes}
            statuses = ["Archived", "Published"]
            for i in range(args.runs):
                for name, code in codes.items():
                    status = statuses[len(figures[name]) % 2]
                    figures[name].append(one_run(url, code, manifest, Path(tmp), status))
                    print(
                        f"run {i + 1} {name}: start {figures[name][-1][0]:.3f} s, "
                        f"end {figures[name][-1][1]:.3f} s",
                        flush=True,
                    )
        finally:
            emu.terminate()
            emu.wait()
    for name, runs in figures.items():
        starts = statistics.median(r[0] for r in runs)
        ends = statistics.median(r[1] for r in runs)
        print(f"{name}: median start->first call {starts:.3f} s, last answer->exit {ends:.3f} s")


if __name__ == "__main__":
    main()
