"""Scenarios 3-6: bulkops' own cost. Quotas and latency off, so the client is the bottleneck:
overhead against a bare aioboto3 loop, journal cost per chunk and resume, peak memory,
and the emulator's own throughput (so it is never what is measured)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.clients import ClientSpec
from bench.emulator import EmulatorProcess, packages, write_manifest
from bench.measure import REPO, new_workdir, run_client
from bench.sizes import Sizes


def start_emulator(
    sizes: Sizes, base: Path
) -> tuple[EmulatorProcess, dict[int, Path], dict[str, Any]]:
    """The emulator with every version, and a manifest per job size (first N packages)."""
    p, v = sizes.scale_generate
    emu = EmulatorProcess(f"{p}x{v}", "--quota", "off")
    setup: dict[str, Any] = {"generate": f"{p}x{v}", "versions": p * v, "startup_s": emu.startup_s}
    started = time.perf_counter()
    pkgs = packages(emu.state())
    setup["state_export_s"] = time.perf_counter() - started
    started = time.perf_counter()
    manifests: dict[int, Path] = {}
    folder = base / "manifests"
    folder.mkdir(parents=True, exist_ok=True)
    for n in sorted({*sizes.journal_packages, *sizes.memory_packages, p}):
        manifests[n] = folder / f"{n * v}.jsonl"
        write_manifest(manifests[n], pkgs[:n])
    setup["manifests_s"] = time.perf_counter() - started
    setup["emulator_rss_mb"] = emu.peak_rss_mb()
    return emu, manifests, setup


def _run(
    emu: EmulatorProcess, client: str, manifest: Path, base: Path, inprocess: bool
) -> dict[str, Any]:
    workdir = new_workdir(base, f"scale-{client}")
    spec = ClientSpec(
        client=client,
        endpoint=emu.url,
        manifest=str(manifest),
        workdir=str(workdir),
        rate=1e6,  # no quota here: bulkops' ceiling must not be what is measured
    )
    cpu = emu.cpu_seconds()
    result = run_client(spec, inprocess=inprocess)
    result["server_cpu_s"] = emu.cpu_seconds() - cpu
    result.pop("attempts", None)
    elapsed = result["t_end"] - result["t_start"]
    sending = result["t_end"] - result["t_ready"]
    calls = result["calls"]
    cpu_s = result.get("process_cpu_s", result["cpu_s"])
    result.update(
        {
            "elapsed_s": elapsed,
            "sending_s": sending,
            "calls_per_s": calls / elapsed if elapsed else 0.0,
            "calls_per_s_sending": calls / sending if sending else 0.0,
            "cpu_ms_per_call": 1000 * result["cpu_s"] / calls if calls else 0.0,
            "process_cpu_ms_per_call": 1000 * cpu_s / calls if calls else 0.0,
            "server_cpu_share": result["server_cpu_s"] / sending if sending else 0.0,
        }
    )
    return result


def _brief(name: str, r: dict[str, Any]) -> None:
    print(
        f"  {name:<26} {r['calls']:6d} calls {r['elapsed_s']:7.2f} s  {r['calls_per_s']:7.1f}"
        f" calls/s  CPU {r['cpu_ms_per_call']:.2f} ms/call  peak RSS "
        f"{r.get('peak_rss_mb') or 0:6.1f} MB  emulator CPU {r['server_cpu_share']:.0%}",
        flush=True,
    )


def overhead(
    emu: EmulatorProcess, manifests: dict[int, Path], sizes: Sizes, base: Path, inprocess: bool
) -> dict[str, Any]:
    """Scenario 3: bulkops end to end (run_new, journal) against a bare aioboto3 loop."""
    print("3. overhead", flush=True)
    manifest = manifests[sizes.scale_generate[0]]
    runs: dict[str, list[dict[str, Any]]] = {"aioboto3-bare": [], "bulkops-run-new": []}
    for _ in range(sizes.overhead_repeats):  # interleaved, so drift on a shared host hits both
        for client in runs:
            r = _run(emu, client, manifest, base, inprocess)
            runs[client].append(r)
            _brief(client, r)
    best = {c: max(rs, key=lambda r: r["calls_per_s"]) for c, rs in runs.items()}
    bare, ours = best["aioboto3-bare"], best["bulkops-run-new"]
    cost = manifest_cost(manifest, base)
    calls = ours["calls"] or 1
    cost["scan_ms_per_call"] = 1000 * cost["scan_cpu_s"] / calls
    cost["read_ms_per_call"] = 1000 * cost["read_cpu_s"] / calls
    print(
        f"  manifest: validate and write the chunk list {cost['scan_cpu_s']:.1f} s + read it "
        f"{cost['read_cpu_s']:.1f} s of CPU = "
        f"{cost['scan_ms_per_call'] + cost['read_ms_per_call']:.2f} ms per call",
        flush=True,
    )
    return {
        "manifest_cost": cost,
        "versions": sizes.scale_generate[0] * sizes.scale_generate[1],
        "runs": runs,
        "best": best,
        "ratio_calls_per_s": ours["calls_per_s"] / bare["calls_per_s"],
        "ratio_cpu_per_call": ours["cpu_ms_per_call"] / bare["cpu_ms_per_call"],
    }


def manifest_cost(manifest: Path, folder: Path) -> dict[str, Any]:
    """CPU seconds of a job's manifest work: the validating scan that writes the chunk
    list, then reading the chunk list back as the run does."""
    import anyio

    from bulkops.journal.chunklist import CHUNKS, ChunkListWriter, read_chunks
    from bulkops.journal.location import open_store
    from bulkops.manifest.scan import scan_manifest
    from bulkops.model import Operation

    store = open_store(folder / "manifest-cost")
    started = time.process_time()
    writer = ChunkListWriter(store)
    summary = scan_manifest(
        manifest,
        operation=Operation.SET_STATUS,
        manifest_format="jsonl",
        domain="acme",
        repository="main",
        chunks_to=writer,
    )
    written = anyio.run(writer.commit)
    scanned = time.process_time()

    async def count() -> int:
        return sum([1 async for _ in read_chunks(store, CHUNKS, written.sha256)])

    chunks = anyio.run(count)
    read = time.process_time()
    anyio.run(store.delete, CHUNKS)
    return {
        "rows": summary.rows,
        "chunks": chunks,
        "scan_cpu_s": scanned - started,
        "read_cpu_s": read - scanned,
    }


def journal_cost(path: Path, chunks: int, batch: int, versions: int = 100) -> dict[str, Any]:
    """Journal.write alone: `chunks` records of `versions` successful versions each (shaped
    as the API answers), `batch` records per write (one fsync each), timed per tenth."""
    import anyio

    from bulkops.journal.journal import JournalHeader, create_journal
    from bulkops.journal.location import open_store
    from bulkops.model import ChunkOutcome, JobSpec, Operation, PackageRef

    spec = JobSpec(Operation.SET_STATUS, "acme", "main", target_status="Archived")
    names = [f"2.{k // 10}.{k % 10}" for k in range(versions)]
    tenths: list[list[float]] = [[0, 0.0, 0.0] for _ in range(10)]

    async def write() -> None:
        header = JournalHeader.new(spec, versions=chunks * versions, chunks=chunks)
        async with await create_journal(open_store(path), header) as journal:
            for start in range(0, chunks, batch):
                outcomes = []
                for i in range(start, min(start + batch, chunks)):
                    ref = PackageRef("npm", "acme-platform", f"queue-sdk-{i}")
                    ok = {
                        v: {"revision": f"{i:012d}{k:031d}=", "status": "Archived"}
                        for k, v in enumerate(names)
                    }
                    outcomes.append((ChunkOutcome(f"{i:020x}", ref, 1, ok), True))
                wall, cpu = time.perf_counter(), time.process_time()
                await journal.write(outcomes)
                tenth = tenths[start * 10 // chunks]
                tenth[0] += len(outcomes)
                tenth[1] += time.perf_counter() - wall
                tenth[2] += time.process_time() - cpu

    anyio.run(write)
    n = sum(t[0] for t in tenths)
    return {
        "chunks": chunks,
        "versions": chunks * versions,
        "batch": batch,
        "ms_per_chunk": 1000 * sum(t[1] for t in tenths) / n,
        "cpu_ms_per_chunk": 1000 * sum(t[2] for t in tenths) / n,
        "ms_per_chunk_by_tenth": [1000 * t[1] / t[0] for t in tenths if t[0]],
        "journal_mb": path.stat().st_size / 1e6,
    }


def journal(
    emu: EmulatorProcess, manifests: dict[int, Path], sizes: Sizes, base: Path, inprocess: bool
) -> dict[str, Any]:
    """Scenario 4: journal cost per chunk at each job size (alone, and inside a real run),
    and resuming the largest job."""
    print("4. journal", flush=True)
    v = sizes.scale_versions_per_package
    out: dict[str, Any] = {"alone": [], "sizes": []}
    folder = base / "journal-alone"
    folder.mkdir(parents=True, exist_ok=True)
    for batch in (1, 8):
        for n in sizes.journal_packages:
            chunks = n * v // 100 or 1
            c = journal_cost(folder / f"{chunks}-{batch}.journal", chunks, batch)
            (folder / f"{chunks}-{batch}.journal").unlink()
            out["alone"].append(c)
            tenths = c["ms_per_chunk_by_tenth"]
            print(
                f"  alone, {c['versions']:>9,} versions, {batch} per write: "
                f"{c['ms_per_chunk']:.3f} ms/chunk (CPU {c['cpu_ms_per_chunk']:.3f} ms), "
                f"first/last tenth {tenths[0]:.3f}/{tenths[-1]:.3f} ms",
                flush=True,
            )
    largest = None
    for n in sizes.journal_packages:
        r = _run(emu, "bulkops", manifests[n], base, inprocess)
        _brief(f"bulkops {n * v:,} versions", r)
        j = r["journal"]
        print(
            f"    journal {j['ms_per_chunk']:.3f} ms/chunk over {j['writes']} writes "
            f"(max write {j['max_write_ms']:.1f} ms)",
            flush=True,
        )
        out["sizes"].append({"versions": n * v, "chunks": r["chunks_total"], **j, "run": r})
        largest = r
    assert largest is not None
    resume = resume_from(emu, Path(largest["journal_path"]), base, inprocess)
    out["resume"] = {"versions": sizes.journal_packages[-1] * v, **resume}
    return out


def resume_from(
    emu: EmulatorProcess, checkpoint: Path, base: Path, inprocess: bool
) -> dict[str, Any]:
    """`run_resume` of a finished journal: recover, re-check the manifest, skip every chunk."""
    workdir = new_workdir(base, "resume")
    spec = ClientSpec(
        client="bulkops-resume",
        endpoint=emu.url,
        manifest=str(checkpoint),
        workdir=str(workdir),
        rate=1e6,
    )
    r = run_client(spec, inprocess=inprocess)
    figures = {
        "recover_s": r["recover_s"],
        "resume_s": r["resume_s"],
        "journal_mb": checkpoint.stat().st_size / 1e6,
        "calls": r["calls"],
        "peak_rss_mb": r.get("peak_rss_mb"),
    }
    print(
        f"  resume: recover {figures['recover_s']:.2f} s, whole resume {figures['resume_s']:.2f} s"
        f" ({figures['journal_mb']:.0f} MB journal, {figures['calls']} calls sent)",
        flush=True,
    )
    return figures


def memory(
    emu: EmulatorProcess, manifests: dict[int, Path], sizes: Sizes, base: Path
) -> dict[str, Any]:
    """Scenario 5: peak RSS of the bulkops process (`run_new`, a subprocess) per job size."""
    print("5. memory", flush=True)
    v = sizes.scale_versions_per_package
    out: dict[str, Any] = {"sizes": []}
    for n in sizes.memory_packages:
        r = _run(emu, "bulkops-run-new", manifests[n], base, inprocess=False)
        _brief(f"bulkops-run-new {n * v:,} v.", r)
        out["sizes"].append({"versions": n * v, "peak_rss_mb": r["peak_rss_mb"], "run": r})
    first, last = out["sizes"][0], out["sizes"][-1]
    out["growth"] = last["peak_rss_mb"] / first["peak_rss_mb"] - 1
    return out


def emulator_throughput(sizes: Sizes) -> dict[str, Any]:
    """Scenario 6: bench/emulator_throughput.py, with aiohttp and with raw-socket clients."""
    print("6. emulator throughput", flush=True)
    out: dict[str, Any] = {}
    for client in ("aiohttp", "raw"):
        cmd = [sys.executable, "bench/emulator_throughput.py", *sizes.throughput_args]
        proc = subprocess.run(
            [*cmd, "--client", client], cwd=REPO, capture_output=True, text=True, check=True
        )
        text = proc.stdout
        rate = re.search(r"([\d,]+) calls/s", text)
        cpu = re.search(r"server CPU (\d+)%", text)
        out[client] = {
            "calls_per_s": float(rate[1].replace(",", "")) if rate else None,
            "server_cpu_share": int(cpu[1]) / 100 if cpu else None,
            "output": text.strip(),
        }
        print(f"  {client:<8} {text.strip().splitlines()[0] if text.strip() else '?'}", flush=True)
    return out
