"""Scenario 8: the S3 journal store beside the local one, on one set-status job at 100/s.

The same job (`s3_calls` chunks of 100 versions, a 100/s write quota, 50 ms ± 50% per
call) runs with its journal in a local file and in S3 (moto's server, a thread of this
process on 127.0.0.1), alternating, each through the CLI's own composition (`new_journal`
then `run_engine`: run events, the S3 lease kept alive beside the run) with two timing
seams: `Journal.write` (what the engine's sink waits for, the store's pause between
appends included) and the store's `append` (the fsync, or the PUT, alone). Each store
runs the job twice: plain, and with `--expected-status`, whose chunks each wait for a
durable dispatch mark before their first send (the case the S3 store's 0.5 s between
PUTs could hold up).

S3 requests are counted where they arrive: a WSGI wrapper around moto's server logs each
request's time, method and key, so the figures hold whatever the store folds and deletes.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import boto3

from bench.clients import OPERATIONS, REGION, ClientSpec
from bench.emulator import EmulatorProcess, server_totals, write_manifest
from bench.measure import new_workdir, run_client
from bench.scenario_latency import steady_share
from bench.scenario_quota import DEFAULT_QUOTAS, client_figures
from bench.sizes import Sizes

BUCKET = "bench-ckpt"
KINDS = ("records", "folds", "snapshot", "lease")  # journal/KIND/... keys (s3url)
VARIANTS = (("local", False), ("s3", False), ("local", True), ("s3", True))  # (store, marks)
OTHER = {"Archived": "Unlisted", "Unlisted": "Archived", "Published": "Archived"}


class CountingS3Server:
    """moto's S3 server on 127.0.0.1 (a free port) that logs (time, method, path, query)."""

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request
        self.requests: list[tuple[float, str, str, str]] = []
        app = DomainDispatcherApplication(create_backend_app)

        def counted(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            self.requests.append(
                (
                    time.time(),
                    environ["REQUEST_METHOD"],
                    environ.get("PATH_INFO", ""),
                    environ.get("QUERY_STRING", ""),
                )
            )
            return app(environ, start_response)

        self.server = make_server(
            "127.0.0.1", 0, counted, threaded=True, request_handler=MotoRequestHandler
        )
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        host, port = self.server.server_address[:2]
        self.url = f"http://{host!s}:{port}"

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join()


def kind_of(method: str, key: str, query: str) -> str:
    """What one request to a job's prefix is: `put records`, `list`, `delete`..."""
    if method == "GET":
        return "list" if "list-type" in query or not key else "get"
    if method == "POST":
        return "delete" if "delete" in query else "post"
    if method in ("HEAD", "DELETE"):
        return method.lower()
    part = next((k for k in KINDS if f"journal/{k}" in key), "sibling")
    return f"{method.lower()} {part}"


def s3_requests(
    log: Iterable[tuple[float, str, str, str]],
    prefix: str,
    client: tuple[float, float],
    t0: float,
    t1: float,
) -> dict[str, Any]:
    """The requests to `/BUCKET/prefix`, and to the bucket itself while the client lived
    (region probes, listings): counts by kind, and the times of record PUTs inside
    [t0, t1] (the run's calls), from t0."""
    counts: Counter[str] = Counter()
    record_times: list[float] = []
    for at, method, path, query in log:
        key = path.removeprefix(f"/{BUCKET}").lstrip("/")
        if key and not key.startswith(prefix + "/"):
            continue
        if not key and not client[0] <= at <= client[1]:
            continue
        kind = ("bucket " if not key else "") + kind_of(method, key, query)
        counts[kind] += 1
        if kind == "put records" and t0 <= at <= t1:
            record_times.append(at - t0)
    puts = sum(n for k, n in counts.items() if k.startswith("put"))
    return {"by_kind": dict(sorted(counts.items())), "puts": puts, "record_times": record_times}


def run_store(
    emu: EmulatorProcess,
    s3: CountingS3Server,
    store: str,
    pkgs: list[dict[str, Any]],
    status: tuple[str | None, str],
    sizes: Sizes,
    base: Path,
    inprocess: bool,
    n: int,
) -> dict[str, Any]:
    rate = sizes.s3_rate
    workdir = new_workdir(base, f"s3-{store}-{n}")
    manifest = workdir / "manifest.jsonl"
    write_manifest(manifest, pkgs)
    prefix = f"jobs/{store}-{n}"
    spec = ClientSpec(
        client="bulkops",
        endpoint=emu.url,
        manifest=str(manifest),
        workdir=str(workdir),
        deadline=sizes.s3_calls / rate * 1.5 + 10,  # generous: nothing is cut short
        rate=rate,
        expected_status=status[0],
        target_status=status[1],
        checkpoint=f"s3://{BUCKET}/{prefix}" if store == "s3" else str(workdir / "job.journal"),
    )
    emu.reset_counters()
    result = run_client(spec, inprocess=inprocess)
    server = server_totals(emu.counters(), OPERATIONS["set-status"])
    f = client_figures(result, server, rate)
    f["steady_share"] = steady_share(result["attempts"], rate)
    f["concurrency_final"] = result.get("concurrency_final")
    j = result["journal"]
    f["journal"] = {k: v for k, v in j.items() if k != "ms_per_chunk_by_tenth"}
    f["journal"]["append_ms_per_chunk"] = 1000 * j["append_seconds"] / max(1, j["chunks"])
    f["journal"]["append_ms_mean"] = 1000 * j["append_seconds"] / max(1, j["appends"])
    if store == "s3":
        t0 = result["t_ready"]
        req = s3_requests(
            s3.requests, prefix, (result["t_start"], result["t_end"]), t0, t0 + f["seconds"]
        )
        f["s3"] = {
            "by_kind": req["by_kind"],
            "puts": req["puts"],
            "record_puts_in_run": len(req["record_times"]),
            "record_puts_per_s": len(req["record_times"]) / f["seconds"] if f["seconds"] else 0,
            "max_record_puts_in_1s": max(
                Counter(int(t) for t in req["record_times"]).values(), default=0
            ),
        }
    return f


def s3_journal(
    emu: EmulatorProcess, pkgs: list[dict[str, Any]], sizes: Sizes, base: Path, inprocess: bool
) -> dict[str, Any]:
    print("8. s3 journal store", flush=True)
    rate, calls = sizes.s3_rate, sizes.s3_calls
    emu.configure(
        quotas={**DEFAULT_QUOTAS, "write": {"rate": rate}},
        faults={"latency_ms": sizes.latency_ms, "jitter": sizes.jitter},
    )
    chunks_per_package = -(-sizes.quota_generate[1] // 100)
    n = -(-calls // chunks_per_package)
    slices = max(1, len(pkgs) // n)
    s3 = CountingS3Server()
    boto3.client(
        "s3",
        endpoint_url=s3.url,
        region_name=REGION,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    ).create_bucket(Bucket=BUCKET)
    out: dict[str, Any] = {"rate": rate, "calls": calls, "s3_server": "moto (thread)", "runs": []}
    os.environ["AWS_ENDPOINT_URL_S3"] = s3.url  # the client's S3 (inherited by its process)
    try:
        k = 0
        left = ["Published"] * slices  # what each slice's versions mostly are now
        for repeat in range(sizes.s3_repeats):
            for store, marks in VARIANTS:
                # a slice of packages, and a status, that the previous runs did not leave behind
                i = k % slices
                own = pkgs[i * n : (i + 1) * n]
                status = (left[i] if marks else None, OTHER[left[i]])
                left[i] = status[1]
                f = run_store(emu, s3, store, own, status, sizes, base, inprocess, k)
                f["expected_status"] = status[0]
                print_run(store + (" marks" if marks else ""), f)
                out["runs"].append({"store": store, "marks": marks, "repeat": repeat, **f})
                k += 1
    finally:
        os.environ.pop("AWS_ENDPOINT_URL_S3", None)
        s3.close()
    return out


def print_run(store: str, f: dict[str, Any]) -> None:
    j = f["journal"]
    s3 = f.get("s3")
    puts = f"  record PUTs {s3['record_puts_per_s']:4.2f}/s" if s3 else ""
    print(
        f"  {store:<12} quota {f['quota_share']:6.1%} (steady {f['steady_share']:6.1%})  "
        f"throttled {f['throttled_share']:6.2%}  wall {f['seconds']:5.1f} s  "
        f"writes {j['writes']}  write {j['ms_per_chunk']:6.2f} ms/chunk "
        f"(append {j['append_ms_per_chunk']:5.2f})  done {f['chunks_done']}/"
        f"{f['chunks_total']}{puts}",
        flush=True,
    )
