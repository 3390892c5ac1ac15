"""Emulator throughput: batch calls of 100 versions per second, server and client in two processes.

Starts `python -m bulkops.emulator` (quotas, latency and faults off), builds every request
up front (query string, JSON body, SigV4-shaped headers; the emulator accepts but does not
verify signatures) and drives it over many keep-alive connections, then prints calls/s.

    python bench/emulator_throughput.py              # 10 s of UpdatePackageVersionsStatus
    python bench/emulator_throughput.py --smoke      # a few seconds, for CI
    python bench/emulator_throughput.py --op delete --duration 5 --connections 64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any, TypeVar
from urllib.parse import urlencode

import aiohttp

PATHS = {
    "update-status": "/v1/package/versions/update_status",
    "dispose": "/v1/package/versions/dispose",
    "delete": "/v1/package/versions/delete",
}
T = TypeVar("T")
AUTH = (
    "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/codeartifact/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
)


def start_emulator(generate: str) -> tuple[subprocess.Popen[str], str]:
    """The emulator as a subprocess, and the endpoint URL it announces."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bulkops.emulator", "--generate", generate, "--quota", "off"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        proc.kill()
        raise SystemExit(f"emulator did not start (said {url!r})")
    return proc, url


def build_requests(state: dict[str, Any], op: str) -> list[tuple[str, bytes]]:
    """(path?query, body) for every package in chunks of 100 versions."""
    out = []
    for package in state["domains"]["acme"]["repositories"]["main"]["packages"]:
        names = list(package["versions"])
        query = {"domain": "acme", "repository": "main", "format": package["format"]}
        if "namespace" in package:
            query["namespace"] = package["namespace"]
        query["package"] = package["package"]
        for start in range(0, len(names), 100):
            for target in ("Archived", "Published") if op == "update-status" else (None,):
                body: dict[str, Any] = {"versions": names[start : start + 100]}
                if target is not None:
                    body["targetStatus"] = target
                out.append((f"{PATHS[op]}?{urlencode(query)}", json.dumps(body).encode()))
    return out


def cycle(items: list[T]) -> Iterator[T]:
    while True:
        yield from items


async def drive(
    url: str, op: str, duration: float, connections: int, raw: bool = False
) -> tuple[int, int, float]:
    """Send calls for `duration` seconds over `connections`; return ok, failed, seconds."""
    headers = {
        "Content-Type": "application/json",
        "Authorization": AUTH,
        "X-Amz-Date": "20240101T000000Z",
        "User-Agent": "bulkops-bench",
    }
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(url, connector=connector, headers=headers) as session:
        async with session.get("/_emulator/state") as resp:
            requests = build_requests(await resp.json(), op)
        source = cycle(requests)
        ok = failed = 0
        started = time.perf_counter()
        deadline = started + duration

        async def worker() -> None:
            nonlocal ok, failed
            while time.perf_counter() < deadline:
                path, body = next(source)
                async with session.post(path, data=body) as resp:
                    await resp.read()
                    if resp.status == 200:
                        ok += 1
                    else:
                        failed += 1

        async def raw_worker() -> None:
            # Pre-built HTTP/1.1 bytes on a bare keep-alive socket: the lightest possible
            # client, so that on a small machine the server, not the client, is measured.
            nonlocal ok, failed
            reader, writer = await asyncio.open_connection(host, port)
            try:
                while time.perf_counter() < deadline:
                    writer.write(next(raw_source))
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n")[0])
                    await reader.readexactly(length)
                    if head.startswith(b"HTTP/1.1 200"):
                        ok += 1
                    else:
                        failed += 1
            finally:
                writer.close()
                await writer.wait_closed()

        host, port = url.removeprefix("http://").rsplit(":", 1)
        header_lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        raw_source = cycle(
            [
                (
                    f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{header_lines}"
                    f"Content-Length: {len(body)}\r\n\r\n"
                ).encode()
                + body
                for path, body in requests
            ]
        )
        async with asyncio.TaskGroup() as tg:
            for _ in range(connections):
                tg.create_task(raw_worker() if raw else worker())
    return ok, failed, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a 3-second run")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--generate", default="200x300", help="emulator data, PxV")
    parser.add_argument("--op", choices=sorted(PATHS), default="update-status")
    parser.add_argument(
        "--client",
        choices=("aiohttp", "raw"),
        default="aiohttp",
        help="aiohttp ClientSession, or pre-built bytes on bare sockets (lighter)",
    )
    args = parser.parse_args()
    duration = 3.0 if args.smoke else args.duration
    proc, url = start_emulator(args.generate)
    try:
        cpu_before = server_cpu_seconds(proc.pid)
        ok, failed, elapsed = asyncio.run(
            drive(url, args.op, duration, args.connections, args.client == "raw")
        )
        cpu = server_cpu_seconds(proc.pid) - cpu_before
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(
        f"{args.op}: {ok / elapsed:,.0f} calls/s of 100 versions "
        f"({ok} ok, {failed} failed in {elapsed:.1f} s, {args.connections} {args.client} "
        f"connections; "
        f"server CPU {cpu / elapsed:.0%} of one core)"
    )
    if cpu > 0:
        # What one fully busy core would serve: the figure that holds on a loaded machine.
        print(f"server capacity: {ok / cpu:,.0f} calls per CPU-second")


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
