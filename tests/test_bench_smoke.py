"""The benchmark suite still runs: every scenario at tiny sizes (`python -m bench --smoke`).

Timings on a shared CI machine prove nothing, so this asserts only that each scenario
produced its figures and that bulkops lost nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_every_benchmark_scenario_runs_at_smoke_size(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--smoke",
            "--out",
            str(out),
            "--workdir",
            str(tmp_path / "work"),
            "--charts",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    scenarios = results["scenarios"]
    assert set(scenarios) == {
        "quota_use",
        "shared_quota",
        "overhead",
        "journal",
        "memory",
        "emulator",
        "latency",
        "s3",
    }

    for level in scenarios["quota_use"]["levels"]:
        assert set(level["clients"]) == {
            "bulkops",
            "aioboto3-adaptive",
            "aioboto3-standard",
            "sequential",
        }
        ours = level["clients"]["bulkops"]
        assert ours["chunks_lost"] == 0
        assert ours["chunks_done"] == ours["chunks_total"] > 0
        assert ours["server"]["accepted"] >= ours["chunks_done"]

    shared = scenarios["shared_quota"]["clients"]["bulkops"]
    assert len(shared["phases"]) == 3 and shared["chunks_lost"] == 0

    overhead = scenarios["overhead"]["best"]
    for client in ("aioboto3-bare", "bulkops-run-new"):
        assert overhead[client]["calls"] == overhead[client]["chunks_total"] > 0

    journal = scenarios["journal"]
    assert {c["batch"] for c in journal["alone"]} == {1, 8}
    assert [s["chunks"] for s in journal["sizes"]] == sorted(s["chunks"] for s in journal["sizes"])
    assert all(s["chunks"] == s["run"]["chunks_done"] for s in journal["sizes"])
    assert journal["resume"]["calls"] == 0  # the journal was complete: resume sends nothing

    memory = scenarios["memory"]["sizes"]
    assert len(memory) == 2 and all(s["peak_rss_mb"] > 0 for s in memory)

    assert all(r["calls_per_s"] for r in scenarios["emulator"].values())

    for band in scenarios["latency"]["bands"]:
        assert set(band["runs"]) == {"auto", "fixed 16"}
        for run in band["runs"].values():
            assert run["chunks_lost"] == 0
            assert run["chunks_done"] == run["chunks_total"] > 0

    s3_runs = scenarios["s3"]["runs"]
    assert [(r["store"], r["marks"]) for r in s3_runs] == [
        ("local", False),
        ("s3", False),
        ("local", True),
        ("s3", True),
    ]
    for run in s3_runs:
        assert run["chunks_lost"] == 0
        assert run["chunks_done"] == run["chunks_total"] > 0
        assert run["journal"]["chunks"] >= run["chunks_done"]
    for run in s3_runs[1::2]:
        s3 = run["s3"]
        # every append the client timed reached moto as one record PUT, and nothing else did
        assert s3["by_kind"]["put records"] == run["journal"]["appends"]
        assert s3["by_kind"]["put snapshot"] == 1 and s3["by_kind"]["put lease"] >= 1

    if "charts" in results["meta"]:
        for chart in results["meta"]["charts"]:
            assert Path(chart).stat().st_size > 0
