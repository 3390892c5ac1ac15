"""Measured figures beside their targets, from one results file; and two runs side by side."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Row:
    scenario: str
    figure: str
    measured: str
    target: str
    met: bool | None  # None: no target, for comparison only


def _pct(x: float) -> str:
    return f"{x:.1%}"


def quota_rows(data: dict[str, Any]) -> Iterator[Row]:
    for level in data["levels"]:
        name = level["level"]
        copy = level["operation"] == "CopyPackageVersions"
        use_target, thr_target = (0.90, 0.05) if copy else (0.95, 0.03)
        for client, f in level["clients"].items():
            ours = client.startswith("bulkops")
            lat = f["latency"]
            measured = (
                f"{_pct(f['quota_share'])} used, {_pct(f['throttled_share'])} throttled, "
                f"p50/p99 {lat.get('p50_ms', 0):.0f}/{lat.get('p99_ms', 0):.0f} ms, "
                f"{f['chunks_lost']} lost, {f['chunks_done']}/{f['chunks_total']} done"
            )
            met = None
            target = "baseline"
            if ours:
                target = f"≥{use_target:.0%} used, ≤{thr_target:.0%} throttled, 0 lost"
                met = (
                    f["quota_share"] >= use_target
                    and f["throttled_share"] <= thr_target
                    and f["chunks_lost"] == 0
                )
            yield Row(f"quota {name}", client, measured, target, met)
        ours = level["clients"].get("bulkops")
        if ours:
            ratios = ", ".join(
                f"×{ours['accepted_per_s'] / f['accepted_per_s']:.2f} {client}"
                for client, f in level["clients"].items()
                if client != "bulkops" and f["accepted_per_s"]
            )
            yield Row(f"quota {name}", "bulkops ÷ each (accepted/s)", ratios, "", None)


def shared_rows(data: dict[str, Any]) -> Iterator[Row]:
    for client, f in data["clients"].items():
        ours = client.startswith("bulkops")
        for i, p in enumerate(f["phases"]):
            t90 = p["time_to_90_s"]
            measured = (
                f"{_pct(p['share_of_available'])} of {p['available_per_s']:.0f}/s, "
                f"{_pct(p['throttled_share'])} throttled, ≥90% after "
                f"{'never' if t90 is None else f'{t90:.1f} s'}"
            )
            target = "≥90% of available" + (", ≥90% within 10 s" if i else "")
            met = None
            if ours:
                met = p["share_of_available"] >= 0.9 and (i == 0 or (t90 is not None and t90 <= 10))
            yield Row("shared quota", f"{client} phase {i + 1}", measured, target, met)
        yield Row(
            "shared quota",
            f"{client} lost",
            str(f["chunks_lost"]),
            "0" if ours else "baseline",
            f["chunks_lost"] == 0 if ours else None,
        )


def overhead_rows(data: dict[str, Any]) -> Iterator[Row]:
    best = data["best"]
    for client, r in best.items():
        yield Row(
            "overhead",
            client,
            f"{r['calls_per_s']:.0f} calls/s, {r['cpu_ms_per_call']:.2f} ms CPU/call, "
            f"{r['elapsed_s']:.1f} s for {r['calls']} calls",
            "baseline" if client == "aioboto3-bare" else "",
            None,
        )
    ratio = data["ratio_calls_per_s"]
    yield Row("overhead", "bulkops / bare calls/s", _pct(ratio), "≥85%", ratio >= 0.85)
    cost = data.get("manifest_cost")
    if cost:
        # results before the chunk list named the second pass "read_plan"
        read_ms = cost.get("read_ms_per_call", cost.get("read_plan_ms_per_call", 0.0))
        read_s = cost.get("read_cpu_s", cost.get("read_plan_cpu_s", 0.0))
        per_call = cost["scan_ms_per_call"] + read_ms
        rest = best["bulkops-run-new"]["cpu_ms_per_call"] - per_call
        yield Row(
            "overhead",
            "of which manifest and chunk list",
            f"{per_call:.2f} ms CPU/call (scan {cost['scan_cpu_s']:.1f} s + read "
            f"{read_s:.1f} s); the rest {rest:.2f} ms/call",
            "",
            None,
        )


def journal_rows(data: dict[str, Any]) -> Iterator[Row]:
    alone = data.get("alone", [])
    for c in alone:
        t = c["ms_per_chunk_by_tenth"]
        yield Row(
            "journal",
            f"alone {c['versions']:,} v., {c['batch']}/write",
            f"{c['ms_per_chunk']:.3f} ms/chunk (CPU {c['cpu_ms_per_chunk']:.3f}), "
            f"first/last tenth {t[0]:.3f}/{t[-1]:.3f}",
            "≤1 ms/chunk",
            c["ms_per_chunk"] <= 1.0,
        )
    ones = [c for c in alone if c["batch"] == 1]
    if len(ones) > 1:
        flat = ones[-1]["ms_per_chunk"] / ones[0]["ms_per_chunk"]
        yield Row(
            "journal",
            f"flat {ones[0]['versions']:,} → {ones[-1]['versions']:,}",
            f"×{flat:.2f} (1 chunk per write)",
            "×≤1.5",
            flat <= 1.5,
        )
    for s in data["sizes"]:
        busy = s["seconds"] / s["run"]["sending_s"] if s["run"]["sending_s"] else 0
        yield Row(
            "journal",
            f"in a run, {s['versions']:,} v.",
            f"{s['ms_per_chunk']:.3f} ms/chunk in write() ({s['chunks'] / s['writes']:.1f} "
            f"per write, sink busy {busy:.0%} of the run)",
            "",
            None,
        )
    r = data["resume"]
    yield Row(
        "journal",
        f"recover {r['versions']:,} versions",
        f"{r['recover_s']:.2f} s ({r['journal_mb']:.0f} MB journal)",
        "≤5 s",
        r["recover_s"] <= 5.0,
    )
    yield Row(
        "journal",
        "whole resume (run_resume)",
        f"{r['resume_s']:.2f} s (recover, check the manifest's sha256, read the chunk list)",
        "≤5 s",
        r["resume_s"] <= 5.0,
    )


def memory_rows(data: dict[str, Any]) -> Iterator[Row]:
    sizes = data["sizes"]
    for s in sizes:
        last = s is sizes[-1]
        yield Row(
            "memory",
            f"peak RSS {s['versions']:,} versions",
            f"{s['peak_rss_mb']:.0f} MB",
            "≤250 MB" if last else "",
            s["peak_rss_mb"] <= 250 if last else None,
        )
    yield Row(
        "memory",
        f"growth {sizes[0]['versions']:,} → {sizes[-1]['versions']:,}",
        _pct(data["growth"]),
        "≤25%",
        data["growth"] <= 0.25,
    )


def emulator_rows(data: dict[str, Any]) -> Iterator[Row]:
    for client, r in data.items():
        rate, cpu = r["calls_per_s"], r["server_cpu_share"]
        measured = f"{rate:,.0f} calls/s" if rate else "?"
        if cpu is not None:
            measured += f" (server CPU {cpu:.0%} of a core)"
        yield Row("emulator", f"{client} client", measured, "≫ the rates above", None)


def latency_rows(data: dict[str, Any]) -> Iterator[Row]:
    targets = {"25-75 ms": (0.99, 0.0), "400-800 ms": (0.95, 0.03)}  # issue 15's done-when
    for band in data["bands"]:
        for label, f in band["runs"].items():
            measured = (
                f"{_pct(f['steady_share'])} steady ({_pct(f['quota_share'])} overall), "
                f"{_pct(f['throttled_share'])} throttled, {f['seconds']:.1f} s, "
                f"concurrency {f['concurrency_final']}"
            )
            target, met = "baseline", None
            if label == "auto" and band["band"] in targets:
                use, thr = targets[band["band"]]
                target = f"≥{use:.0%} used steady, ≤{thr:.0%} throttled"
                met = f["steady_share"] >= use and f["throttled_share"] <= thr
            yield Row(f"latency {band['band']}", label, measured, target, met)


def s3_rows(data: dict[str, Any]) -> Iterator[Row]:
    rate = data["rate"]
    for r in data["runs"]:
        j, s3 = r["journal"], r.get("s3")
        marks = " --expected-status" if r.get("marks") else ""
        label = f"{r['store']}{marks} #{r['repeat'] + 1}"
        measured = (
            f"{_pct(r['steady_share'])} steady ({_pct(r['quota_share'])} overall), "
            f"{_pct(r['throttled_share'])} throttled; journal {j['ms_per_chunk']:.2f} ms/chunk "
            f"in writes ({j['append_ms_per_chunk']:.2f} appending), {j['writes']} writes"
        )
        target, met = "baseline", None
        if s3:
            measured += f"; {s3['record_puts_per_s']:.2f} record PUTs/s, {s3['puts']} PUTs"
            target = f"≥95% used steady, ≤3% throttled, ≤~2 PUTs/s at {rate:.0f}/s"
            met = (
                r["steady_share"] >= 0.95
                and r["throttled_share"] <= 0.03
                and s3["record_puts_per_s"] <= 2.2
                and r["chunks_lost"] == 0
            )
        yield Row(f"s3 {data['calls']} calls", label, measured, target, met)


ROWS = {
    "quota_use": quota_rows,
    "shared_quota": shared_rows,
    "overhead": overhead_rows,
    "journal": journal_rows,
    "memory": memory_rows,
    "emulator": emulator_rows,
    "latency": latency_rows,
    "s3": s3_rows,
}


def rows(results: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    for name, make in ROWS.items():
        if name in results["scenarios"]:
            out.extend(make(results["scenarios"][name]))
    return out


def _mark(met: bool | None) -> str:
    return "" if met is None else ("met" if met else "MISSED")


def text_table(results: dict[str, Any]) -> str:
    lines = []
    for r in rows(results):
        lines.append(
            f"{r.scenario:<18} {r.figure:<30} {r.measured:<70} {r.target:<40} {_mark(r.met)}"
        )
    return "\n".join(lines)


def markdown_table(results: dict[str, Any]) -> str:
    lines = ["| scenario | figure | measured | target | |", "|---|---|---|---|---|"]
    for r in rows(results):
        lines.append(f"| {r.scenario} | {r.figure} | {r.measured} | {r.target} | {_mark(r.met)} |")
    return "\n".join(lines)


def compare(a: dict[str, Any], b: dict[str, Any]) -> str:
    """The measured column of two runs side by side, row by row."""
    old = {(r.scenario, r.figure): r for r in rows(a)}
    lines = []
    for r in rows(b):
        before = old.get((r.scenario, r.figure))
        lines.append(
            f"{r.scenario:<18} {r.figure:<30}\n    before: {before.measured if before else '-'}"
            f"\n    after:  {r.measured}  {_mark(r.met)}"
        )
    return "\n".join(lines)
