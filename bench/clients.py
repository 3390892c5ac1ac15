"""The bench clients: bulkops and the baselines, each run in its own process.

    python -m bench.clients SPEC.json RESULT.json

prints `READY` on stdout once it is about to send its first call, then writes its figures
to RESULT.json. Clients, all sending the same chunks (≤100 versions of one package, in
manifest order) of the same manifest:

  bulkops            the engine fed from the manifest with its journal, as `job.run_new`
                     composes it, with two timing seams (registry calls, journal writes)
  bulkops-run-new    `job.run_new` itself, exactly as the CLI calls it: nothing instrumented
  bulkops-resume     `job.run_resume` of the journal named by `manifest`
  sequential         one boto3 client, one call after another; boto3's default retries
  aioboto3-adaptive  aioboto3 tasks under an asyncio.Semaphore(concurrency), botocore's
                     adaptive retry mode (its default 3 attempts)
  aioboto3-standard  the same with botocore's standard retry mode
  aioboto3-bare      the same with one attempt and no retries: the floor for overhead
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

CLIENTS = (
    "bulkops",
    "bulkops-run-new",
    "bulkops-resume",
    "sequential",
    "aioboto3-adaptive",
    "aioboto3-standard",
    "aioboto3-bare",
)
METHODS = {"set-status": "update_package_versions_status", "copy": "copy_package_versions"}
OPERATIONS = {"set-status": "UpdatePackageVersionsStatus", "copy": "CopyPackageVersions"}
REGION = "us-east-1"


@dataclass(frozen=True)
class ClientSpec:
    """One client run: who sends what, where, and for how long at most."""

    client: str
    endpoint: str
    manifest: str
    workdir: str
    operation: str = "set-status"  # or "copy" (main → destination)
    concurrency: int = 16  # the baselines' semaphore
    bulkops_concurrency: int | None = None  # bulkops' --concurrency; None: auto, its default
    deadline: float | None = None  # seconds after READY when intake stops
    rate: float | None = None  # bulkops' write ceiling; None: EngineSettings' default
    copy_rate: float | None = None
    target_status: str = "Archived"
    expected_status: str | None = None  # bulkops set-status: --expected-status (dispatch marks)
    destination: str = "release"
    checkpoint: str | None = None  # bulkops: the job's journal (a path or s3://); None: workdir

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClientSpec:
        return cls(**data)


class Recorder:
    """Client-side figures: every HTTP attempt (time, outcome) and every call's latency."""

    def __init__(self) -> None:
        self.t_start = time.time()
        self.cpu_start = time.process_time()
        self.t_ready = self.t_start
        self.cpu_ready = self.cpu_start
        self.attempts: list[tuple[float, str]] = []
        self.latencies: list[float] = []
        self.extra: dict[str, Any] = {}

    def ready(self, announce: Callable[[], None]) -> None:
        self.t_ready = time.time()
        self.cpu_ready = time.process_time()
        announce()

    def attempt(self, code: str) -> None:
        self.attempts.append((time.time(), code))

    def botocore_hook(self) -> Callable[..., None]:
        """A `needs-retry` handler: botocore emits it after every HTTP attempt."""

        def on_attempt(response: Any = None, **_: Any) -> None:
            status = response[0].status_code if response is not None else 0
            self.attempt("ok" if status == 200 else "throttled" if status == 429 else "error")

        return on_attempt

    def result(self, spec: ClientSpec, done: int, lost: int, total: int) -> dict[str, Any]:
        end, cpu_end = time.time(), time.process_time()
        return {
            "spec": asdict(spec),
            "t_start": self.t_start,
            "t_ready": self.t_ready,
            "t_end": end,
            "cpu_s": cpu_end - self.cpu_start,
            "cpu_send_s": cpu_end - self.cpu_ready,
            "chunks_total": total,
            "chunks_done": done,
            "chunks_lost": lost,
            "chunks_not_sent": total - done - lost,
            "calls": len(self.latencies),
            "latency": latency_summary(self.latencies),
            "attempts": [[round(t - self.t_ready, 4), code] for t, code in self.attempts],
            **self.extra,
        }


def latency_summary(values: Sequence[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    s = sorted(values)
    return {
        "n": len(s),
        "p50_ms": round(percentile(s, 50) * 1000, 2),
        "p99_ms": round(percentile(s, 99) * 1000, 2),
        "mean_ms": round(sum(s) / len(s) * 1000, 2),
        "max_ms": round(s[-1] * 1000, 2),
    }


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    i = max(0, min(len(sorted_values) - 1, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[i]


# ---- the chunks, as a user's script would build them ------------------------------------


def read_chunks(manifest: str, size: int = 100) -> list[tuple[dict[str, str], list[str]]]:
    """Consecutive rows of one package in chunks of `size` versions."""
    chunks: list[tuple[dict[str, str], list[str]]] = []
    ref: dict[str, str] | None = None
    versions: list[str] = []
    with open(manifest) as f:
        for line in f:
            row = json.loads(line)
            version = row.pop("version")
            if row != ref or len(versions) == size:
                if ref is not None and versions:
                    chunks.append((ref, versions))
                ref, versions = row, []
            versions.append(version)
    if ref is not None and versions:
        chunks.append((ref, versions))
    return chunks


def request(spec: ClientSpec, ref: dict[str, str], versions: list[str]) -> dict[str, Any]:
    """The keyword arguments of one call, as bulkops' `aws.build_request` makes them."""
    kw: dict[str, Any] = {"domain": "acme", "format": ref["format"]}
    if "namespace" in ref:
        kw["namespace"] = ref["namespace"]
    kw["package"] = ref["package"]
    if spec.operation == "copy":
        kw["sourceRepository"] = "main"
        kw["destinationRepository"] = spec.destination
        kw["allowOverwrite"] = False
        kw["includeFromUpstream"] = False
    else:
        kw["repository"] = "main"
        kw["targetStatus"] = spec.target_status
    kw["versions"] = versions
    return kw


# ---- the clients --------------------------------------------------------------------------


def run(spec: ClientSpec, announce: Callable[[], None]) -> dict[str, Any]:
    """Run one client to its end; `announce` is called just before the first call."""
    rec = Recorder()
    if spec.client.startswith("bulkops"):
        from bench.client_bulkops import run_bulkops

        done, lost, total = asyncio.run(run_bulkops(spec, rec, announce))
    elif spec.client == "sequential":
        done, lost, total = run_sequential(spec, rec, announce)
    elif spec.client.startswith("aioboto3-"):
        mode = spec.client.removeprefix("aioboto3-")
        done, lost, total = asyncio.run(run_aioboto3(spec, rec, announce, mode))
    else:
        raise SystemExit(f"unknown client {spec.client!r}; known: {', '.join(CLIENTS)}")
    return rec.result(spec, done, lost, total)


def run_sequential(
    spec: ClientSpec, rec: Recorder, announce: Callable[[], None]
) -> tuple[int, int, int]:
    """What an AWS CLI user scripts: a loop of boto3 calls, boto3's default configuration."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    chunks = read_chunks(spec.manifest)
    client = boto3.client("codeartifact", endpoint_url=spec.endpoint, region_name=REGION)
    client.meta.events.register_first("needs-retry.codeartifact", rec.botocore_hook())
    method = getattr(client, METHODS[spec.operation])
    done = lost = 0
    rec.ready(announce)
    deadline = time.monotonic() + (spec.deadline or float("inf"))
    for ref, versions in chunks:
        if time.monotonic() >= deadline:
            break
        started = time.perf_counter()
        try:
            method(**request(spec, ref, versions))
            done += 1
        except (BotoCoreError, ClientError):
            lost += 1  # boto3 gave up after its retries: a script would move on or crash
        rec.latencies.append(time.perf_counter() - started)
    client.close()
    return done, lost, len(chunks)


async def run_aioboto3(
    spec: ClientSpec, rec: Recorder, announce: Callable[[], None], mode: str
) -> tuple[int, int, int]:
    """aioboto3 with a semaphore of `concurrency` tasks; botocore's retry `mode` (or none)."""
    import aioboto3
    from aiobotocore.config import AioConfig
    from botocore.exceptions import BotoCoreError, ClientError

    chunks = read_chunks(spec.manifest)
    if mode == "bare":
        retries: dict[str, Any] = {"mode": "standard", "total_max_attempts": 1}
    else:
        retries = {"mode": mode}
    config = AioConfig(retries=retries, max_pool_connections=spec.concurrency)
    session = aioboto3.Session()
    done = lost = 0
    async with session.client(
        "codeartifact", endpoint_url=spec.endpoint, region_name=REGION, config=config
    ) as client:
        if mode != "bare":  # the bare loop stays bare: no per-attempt hook
            client.meta.events.register_first("needs-retry.codeartifact", rec.botocore_hook())
        method = getattr(client, METHODS[spec.operation])
        sem = asyncio.Semaphore(spec.concurrency)

        async def one(kw: dict[str, Any]) -> None:
            nonlocal done, lost
            started = time.perf_counter()
            try:
                await method(**kw)
                done += 1
            except (BotoCoreError, ClientError):
                lost += 1
            finally:
                rec.latencies.append(time.perf_counter() - started)
                sem.release()

        rec.ready(announce)
        deadline = time.monotonic() + (spec.deadline or float("inf"))
        async with asyncio.TaskGroup() as tg:
            for ref, versions in chunks:
                await sem.acquire()
                if time.monotonic() >= deadline:
                    sem.release()
                    break
                tg.create_task(one(request(spec, ref, versions)))
    return done, lost, len(chunks)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        raise SystemExit("usage: python -m bench.clients SPEC.json RESULT.json")
    spec = ClientSpec.from_dict(json.loads(Path(args[0]).read_text()))

    def announce() -> None:
        print("READY", flush=True)

    result = run(spec, announce)
    result["peak_rss_mb"] = peak_rss_mb()
    Path(args[1]).write_text(json.dumps(result))


def peak_rss_mb() -> float | None:
    """This process's peak resident set (VmHWM), from /proc; None elsewhere.

    Not getrusage's ru_maxrss: Linux carries that across exec, so a child started from a
    big parent would report the parent's peak.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


if __name__ == "__main__":
    main()
