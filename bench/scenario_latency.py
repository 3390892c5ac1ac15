"""Scenario 7: quota use at a 100/s write quota as the service answers slower and slower.

Each latency band runs the same set-status job twice against one emulator: bulkops'
defaults (`--concurrency auto`) and the old fixed `--concurrency 16`, side by side. By
Little's law, 16 calls in flight carry at most 16 ÷ latency calls per second.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import analysis
from bench.clients import OPERATIONS, ClientSpec
from bench.emulator import EmulatorProcess, server_totals, write_manifest
from bench.measure import new_workdir, run_client
from bench.scenario_quota import DEFAULT_QUOTAS, client_figures
from bench.sizes import Sizes

RUNS = (("auto", None), ("fixed 16", 16))


def steady_share(attempts: list[list[Any]], rate: float) -> float:
    """Accepted calls per second over the quota between the 10th and the 90th percentile of
    answers: neither the ramp of the first calls nor the drain of the last counts."""
    ok = analysis.times(attempts, "ok")
    if len(ok) < 10:
        return 0.0
    lo, hi = ok[len(ok) // 10], ok[(9 * len(ok)) // 10]
    return (analysis.count_between(ok, lo, hi) / (hi - lo)) / rate if hi > lo else 0.0


def latency(
    emu: EmulatorProcess, pkgs: list[dict[str, Any]], sizes: Sizes, base: Path, inprocess: bool
) -> dict[str, Any]:
    print("7. latency", flush=True)
    rate, calls = sizes.latency_rate, sizes.latency_calls
    chunks_per_package = -(-sizes.quota_generate[1] // 100)
    n = -(-calls // chunks_per_package)
    slices = max(1, len(pkgs) // n)
    out: dict[str, Any] = {"rate": rate, "calls": calls, "bands": []}
    k = 0
    for name, mean_ms, jitter in sizes.latency_bands:
        emu.configure(
            quotas={**DEFAULT_QUOTAS, "write": {"rate": rate}},
            faults={"latency_ms": mean_ms, "jitter": jitter},
        )
        band: dict[str, Any] = {"band": name, "latency_ms": mean_ms, "jitter": jitter, "runs": {}}
        for label, concurrency in RUNS:
            # a slice of packages, and a status, that the previous runs did not leave behind
            own = pkgs[(k % slices) * n : (k % slices + 1) * n]
            status = "Unlisted" if (k // slices) % 2 else "Archived"
            k += 1
            workdir = new_workdir(base, f"latency-{mean_ms:.0f}-{label.replace(' ', '')}")
            manifest = workdir / "manifest.jsonl"
            write_manifest(manifest, own)
            carried = rate if concurrency is None else min(rate, concurrency / (mean_ms / 1000))
            spec = ClientSpec(
                client="bulkops",
                endpoint=emu.url,
                manifest=str(manifest),
                workdir=str(workdir),
                deadline=calls / carried * 1.5 + 10,  # generous: nothing is cut short
                rate=rate,
                target_status=status,
                bulkops_concurrency=concurrency,
            )
            emu.reset_counters()
            result = run_client(spec, inprocess=inprocess)
            server = server_totals(emu.counters(), OPERATIONS["set-status"])
            f = client_figures(result, server, rate)
            f["steady_share"] = steady_share(result["attempts"], rate)
            f["peak_rss_mb"] = result.get("peak_rss_mb")
            f["concurrency_final"] = result.get("concurrency_final")
            band["runs"][label] = f
            print_run(name, label, f)
        out["bands"].append(band)
    return out


def print_run(band: str, label: str, f: dict[str, Any]) -> None:
    print(
        f"  {band:<12} {label:<9} quota {f['quota_share']:6.1%} (steady "
        f"{f['steady_share']:6.1%})  throttled {f['throttled_share']:6.2%}  wall "
        f"{f['seconds']:6.1f} s  concurrency {f['concurrency_final']}  "
        f"p50 {f['latency'].get('p50_ms', 0):6.0f} ms  done {f['chunks_done']}/"
        f"{f['chunks_total']}  RSS {f['peak_rss_mb'] or 0:.0f} MB",
        flush=True,
    )
