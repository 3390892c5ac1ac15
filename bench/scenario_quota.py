"""Scenarios 1 and 2: how much of a quota each client uses, alone and when another tenant
takes part of it away mid-run. One emulator (latency 50 ms ± 50%) serves every run;
each client runs in its own process while the harness watches the quota."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from bench import analysis
from bench.clients import OPERATIONS, ClientSpec
from bench.emulator import EmulatorProcess, packages, server_totals, write_manifest
from bench.measure import new_workdir, run_client
from bench.sizes import Level, Sizes

SCOPE = {"copy": "copy", "set-status": "write"}
DEFAULT_QUOTAS = {"write": {"rate": 100}, "copy": {"rate": 5}}


def start_emulator(sizes: Sizes) -> tuple[EmulatorProcess, list[dict[str, Any]], dict[str, Any]]:
    p, v = sizes.quota_generate
    emu = EmulatorProcess(f"{p}x{v}", "--quota", "off")
    started = time.perf_counter()
    pkgs = packages(emu.state())
    setup = {"generate": f"{p}x{v}", "startup_s": emu.startup_s}
    setup["state_export_s"] = time.perf_counter() - started
    return emu, pkgs, setup


def client_figures(result: dict[str, Any], server: dict[str, int], rate: float) -> dict[str, Any]:
    """What one client did to one quota, from its attempts and the emulator's counters."""
    attempts = result["attempts"]
    last = max((float(t) for t, _ in attempts), default=result["t_end"] - result["t_ready"])
    return {
        "chunks_total": result["chunks_total"],
        "chunks_done": result["chunks_done"],
        "chunks_lost": result["chunks_lost"],
        "chunks_not_sent": result["chunks_not_sent"],
        "seconds": last,
        "server": server,
        "quota_share": analysis.quota_share(server["accepted"], rate, last),
        "quota_share_with_burst": analysis.quota_share(server["accepted"], rate, last, rate),
        "throttled_share": server["throttled"] / server["calls"] if server["calls"] else 0.0,
        "accepted_per_s": server["accepted"] / last if last else 0.0,
        "latency": result["latency"],
        "client_cpu_s": result.get("process_cpu_s", result["cpu_s"]),
        "bulkops": result.get("bulkops"),
        "rate_final": result.get("rate_final"),
        "series": analysis.per_second(attempts),
    }


def run_level(
    emu: EmulatorProcess,
    pkgs: list[dict[str, Any]],
    level: Level,
    sizes: Sizes,
    base: Path,
    inprocess: bool,
) -> dict[str, Any]:
    scope = SCOPE[level.operation]
    emu.configure(
        quotas={**DEFAULT_QUOTAS, scope: {"rate": level.rate}},
        faults={"latency_ms": sizes.latency_ms, "jitter": sizes.jitter},
    )
    chunks_per_package = -(-sizes.quota_generate[1] // 100)
    n = -(-level.chunks // chunks_per_package)
    out: dict[str, Any] = {
        "level": level.name,
        "operation": OPERATIONS[level.operation],
        "rate": level.rate,
        "chunks": level.chunks,
        "ceiling": level.ceiling,
        "clients": {},
    }
    # a generous cap: the job takes chunks/rate seconds at full quota
    deadline = level.seconds * 1.3 + 2
    for i, name in enumerate(sizes.quota_clients):
        workdir = new_workdir(base, f"{level.operation}-{name}")
        # Copy: every client copies packages of its own, so none finds its work done
        own = pkgs[i * n : (i + 1) * n] if level.operation == "copy" else pkgs[:n]
        manifest = workdir / "manifest.jsonl"
        write_manifest(manifest, own)
        spec = ClientSpec(
            client=name,
            endpoint=emu.url,
            manifest=str(manifest),
            workdir=str(workdir),
            operation=level.operation,
            deadline=deadline,
            rate=level.ceiling if level.operation != "copy" else None,
            copy_rate=level.ceiling if level.operation == "copy" else None,
        )
        emu.reset_counters()
        result = run_client(spec, inprocess=inprocess)
        server = server_totals(emu.counters(), OPERATIONS[level.operation])
        out["clients"][name] = client_figures(result, server, level.rate)
        print_client(level.name, name, out["clients"][name])
    return out


def print_client(level: str, name: str, f: dict[str, Any]) -> None:
    lat = f["latency"]
    print(
        f"  {level:<12} {name:<18} quota {f['quota_share']:6.1%}  throttled "
        f"{f['throttled_share']:6.2%}  p50 {lat.get('p50_ms', 0):7.1f} ms  p99 "
        f"{lat.get('p99_ms', 0):8.1f} ms  done {f['chunks_done']}/{f['chunks_total']}  "
        f"lost {f['chunks_lost']}",
        flush=True,
    )


def quota_use(
    emu: EmulatorProcess, pkgs: list[dict[str, Any]], sizes: Sizes, base: Path, inprocess: bool
) -> dict[str, Any]:
    """Scenario 1: each client alone against a 5/s Copy, 20/s and 100/s write quota."""
    print("1. quota use", flush=True)
    return {"levels": [run_level(emu, pkgs, lv, sizes, base, inprocess) for lv in sizes.levels]}


def shared_quota(
    emu: EmulatorProcess, pkgs: list[dict[str, Any]], sizes: Sizes, base: Path, inprocess: bool
) -> dict[str, Any]:
    """Scenario 2: the write quota drops by 40% for the middle third of the run, then returns."""
    print("2. shared quota", flush=True)
    full, phase = sizes.shared_rate, sizes.shared_phase_s
    cut = full * sizes.shared_keep
    schedule = [(0.0, full), (phase, cut), (2 * phase, full)]
    out: dict[str, Any] = {"schedule": schedule, "phase_s": phase, "clients": {}}
    for name in sizes.shared_clients:
        emu.configure(
            quotas={**DEFAULT_QUOTAS, "write": {"rate": full}},
            faults={"latency_ms": sizes.latency_ms, "jitter": sizes.jitter},
        )
        workdir = new_workdir(base, f"shared-{name}")
        manifest = workdir / "manifest.jsonl"
        write_manifest(manifest, pkgs)
        spec = ClientSpec(
            client=name,
            endpoint=emu.url,
            manifest=str(manifest),
            workdir=str(workdir),
            deadline=3 * phase,
            rate=None if not sizes.smoke else full,
        )
        applied: list[float] = []
        stop = threading.Event()

        def tenant(stop: threading.Event = stop, applied: list[float] = applied) -> None:
            ready = time.time()
            for at, rate in schedule[1:]:
                if stop.wait(max(0.0, ready + at - time.time())):
                    return
                emu.set_quota("write", rate)
                applied.append(time.time())

        threads: list[threading.Thread] = []

        def on_ready(threads: list[threading.Thread] = threads) -> None:
            threads.append(threading.Thread(target=tenant, daemon=True))
            threads[0].start()

        emu.reset_counters()
        try:
            result = run_client(spec, inprocess=inprocess, on_ready=on_ready)
        finally:
            stop.set()
            for t in threads:
                t.join()
        server = server_totals(emu.counters(), OPERATIONS["set-status"])
        # the changes as applied, in the client's clock (seconds after its READY)
        starts = [0.0] + [t - result["t_ready"] for t in applied]
        starts += [at for at, _ in schedule[len(starts) :]]  # the job ended before these
        ends = [*starts[1:], 3 * phase]
        phases = [(s, e, r) for s, e, (_, r) in zip(starts, ends, schedule, strict=False)]
        figures = client_figures(result, server, full)
        figures["phases"] = analysis.phase_figures(result["attempts"], phases)
        figures["applied_s"] = starts
        out["clients"][name] = figures
        for p in figures["phases"]:
            print(
                f"  {name:<18} {p['start_s']:5.1f}-{p['end_s']:5.1f} s "
                f"at {p['available_per_s']:5.0f}/s:"
                f" used {p['share_of_available']:6.1%}, throttled {p['throttled_share']:6.2%},"
                f" ≥90% after {p['time_to_90_s']} s",
                flush=True,
            )
        print(f"  {name:<18} lost {figures['chunks_lost']}", flush=True)
    return out
