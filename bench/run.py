"""Run the benchmark scenarios and write their figures to bench/results/ (see BENCHMARKS.md).

    python -m bench                        # every scenario, full size (~25 minutes)
    python -m bench --scenario latency     # quota use at 25 ms to 2 s per call (~5 minutes)
    python -m bench --scenario quota_use   # one (or several) of them
    python -m bench --scenario s3          # local vs S3 (moto) journal store at 100/s (~2 minutes)
    python -m bench --smoke                # every scenario at tiny sizes, in seconds
    python -m bench --report FILE.json     # the figures-vs-targets table of an earlier run
    python -m bench --compare OLD.json NEW.json

The emulator runs as its own process (`python -m bulkops.emulator`); every client runs
in a process of its own, so each one's CPU time and peak RSS are its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import charts, report, scenario_latency, scenario_quota, scenario_s3, scenario_scale
from bench.measure import REPO, isolate_aws
from bench.sizes import FULL, SMOKE, Sizes

SCENARIOS = (
    "quota_use",
    "shared_quota",
    "overhead",
    "journal",
    "memory",
    "emulator",
    "latency",
    "s3",
)
RESULTS = REPO / "bench" / "results"
CHART_FILES = {
    "quota_use": "benchmarks-quota-use.png",
    "shared_quota": "benchmarks-shared-quota.png",
}


def machine() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), ""
            )
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            mem_kb = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kb = 0
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem_kb / 2**20, 1),
        "loadavg_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        )
    except OSError:
        return None
    return out.stdout.strip() or None


def run(
    sizes: Sizes,
    scenarios: list[str],
    out: Path,
    workdir: Path,
    chart_dir: Path | None,
    inprocess: bool,
) -> dict[str, Any]:
    """Run the chosen scenarios; the results file is rewritten after each one."""
    isolate_aws(workdir / "aws")
    results: dict[str, Any] = {
        "meta": {
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "smoke": sizes.smoke,
            "command": " ".join(["python -m bench", *sys.argv[1:]]),
            "commit": git_commit(),
            "machine": machine(),
            "setup": {},
        },
        "scenarios": {},
    }

    def save() -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1))

    chosen = [s for s in SCENARIOS if s in scenarios]
    if {"quota_use", "shared_quota", "latency", "s3"} & set(chosen):
        emu, pkgs, setup = scenario_quota.start_emulator(sizes)
        results["meta"]["setup"]["quota"] = setup
        print(f"emulator {setup['generate']}: up in {setup['startup_s']:.1f} s", flush=True)
        try:
            for name, fn in (
                ("quota_use", scenario_quota.quota_use),
                ("shared_quota", scenario_quota.shared_quota),
                ("latency", scenario_latency.latency),
                ("s3", scenario_s3.s3_journal),
            ):
                if name in chosen:
                    results["scenarios"][name] = fn(emu, pkgs, sizes, workdir, inprocess)
                    save()
        finally:
            emu.close()
        del pkgs
    if {"overhead", "journal", "memory"} & set(chosen):
        emu, manifests, setup = scenario_scale.start_emulator(sizes, workdir)
        results["meta"]["setup"]["scale"] = setup
        print(
            f"emulator {setup['generate']} ({setup['versions']:,} versions): up in "
            f"{setup['startup_s']:.1f} s, state export {setup['state_export_s']:.1f} s, "
            f"manifests {setup['manifests_s']:.1f} s, "
            f"emulator RSS {setup['emulator_rss_mb']:.0f} MB",
            flush=True,
        )
        try:
            if "overhead" in chosen:
                results["scenarios"]["overhead"] = scenario_scale.overhead(
                    emu, manifests, sizes, workdir, inprocess
                )
                save()
            if "journal" in chosen:
                results["scenarios"]["journal"] = scenario_scale.journal(
                    emu, manifests, sizes, workdir, inprocess
                )
                save()
            if "memory" in chosen:
                results["scenarios"]["memory"] = scenario_scale.memory(
                    emu, manifests, sizes, workdir
                )
                save()
        finally:
            emu.close()
    if "emulator" in chosen:
        results["scenarios"]["emulator"] = scenario_scale.emulator_throughput(sizes)
    results["meta"]["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    save()
    if chart_dir is not None and charts.available():
        drawn = []
        for name, filename in CHART_FILES.items():
            if name in results["scenarios"]:
                draw = getattr(charts, name)
                drawn.append(str(draw(results["scenarios"][name], chart_dir / filename)))
        results["meta"]["charts"] = drawn
        save()
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes: checks that every scenario works"
    )
    parser.add_argument(
        "--scenario", action="append", choices=SCENARIOS, help="run only this scenario (repeatable)"
    )
    parser.add_argument(
        "--out", type=Path, help="results file (default: bench/results/<time>.json)"
    )
    parser.add_argument(
        "--workdir", type=Path, help="where manifests and journals go (default: a temp dir)"
    )
    parser.add_argument(
        "--charts",
        type=Path,
        help="where the PNGs go (default: beside BENCHMARKS.md; smoke: the workdir)",
    )
    parser.add_argument(
        "--inprocess",
        action="store_true",
        help="run clients inside this process (smoke runs do): faster, but CPU and RSS are shared",
    )
    parser.add_argument(
        "--client", action="append", help="quota scenarios: only this client (repeatable)"
    )
    parser.add_argument(
        "--level", action="append", help="quota use: only this level, e.g. 'write 20/s'"
    )
    parser.add_argument(
        "--report", type=Path, metavar="RESULTS", help="print the table of a results file"
    )
    parser.add_argument("--markdown", action="store_true", help="with --report: a Markdown table")
    parser.add_argument("--compare", type=Path, nargs=2, metavar=("OLD", "NEW"))
    args = parser.parse_args(argv)
    if args.report:
        results = json.loads(args.report.read_text())
        print(report.markdown_table(results) if args.markdown else report.text_table(results))
        return
    if args.compare:
        old, new = (json.loads(p.read_text()) for p in args.compare)
        print(report.compare(old, new))
        return
    sizes = SMOKE if args.smoke else FULL
    if args.client:
        sizes = replace(
            sizes,
            quota_clients=tuple(c for c in sizes.quota_clients if c in args.client),
            shared_clients=tuple(c for c in sizes.shared_clients if c in args.client),
        )
    if args.level:
        sizes = replace(sizes, levels=tuple(lv for lv in sizes.levels if lv.name in args.level))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or RESULTS / f"{stamp}{'-smoke' if args.smoke else ''}.json"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bulkops-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        chart_dir = args.charts or (workdir if args.smoke else REPO)
        results = run(
            sizes,
            args.scenario or list(SCENARIOS),
            out,
            workdir,
            chart_dir,
            inprocess=args.inprocess or args.smoke,
        )
    print()
    print(report.text_table(results))
    print(f"\nresults: {out} ({time.perf_counter() - started:.0f} s)")
    for path in results["meta"].get("charts", []):
        print(f"chart: {path}")
