"""Job files: every example loads, bad ones name file and key, and flags > env > file > defaults."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bulkops.cli.config import default_map, load_job_file
from bulkops.emulator import FaultConfig, QuotaConfig
from bulkops.emulator.threaded import emulator_thread
from bulkops.errors import UsageError

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
JOB_FILES = sorted(CONFIGS.glob("*.toml"))


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    """An emulator holding every repository the examples name: a dry run checks that the
    job's repositories exist (DescribeRepository)."""
    with emulator_thread(quotas=QuotaConfig.off()) as emu:
        for name in ("legacy", "sandbox"):
            emu.add_repository(name)
        yield emu.endpoint_url


@pytest.fixture(autouse=True)
def endpoint(emulator_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_CODEARTIFACT", emulator_url)


def bulkops(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bulkops", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_there_is_an_example_job_file_per_operation() -> None:
    names = {p.stem for p in JOB_FILES}
    assert {"delete", "dispose", "set-status", "copy", "delete-packages", "resume"} <= names


@pytest.mark.parametrize("path", JOB_FILES, ids=lambda p: p.name)
def test_every_example_job_file_loads_and_its_manifest_exists(path: Path) -> None:
    job = load_job_file(path)
    assert job.operation is not None
    defaults = default_map(job, path.parent, job.operation)
    if "manifest" in defaults:
        assert Path(defaults["manifest"]).is_file(), defaults["manifest"]


@pytest.mark.parametrize("path", [p for p in JOB_FILES if p.stem != "resume"], ids=lambda p: p.name)
def test_every_example_job_file_plans_from_the_command_line(path: Path) -> None:
    run = bulkops(load_job_file(path).operation or "", "--config", path)
    assert run.returncode == 0, run.stderr
    assert "Nothing was sent" in run.stdout


def test_an_unknown_key_names_the_file_and_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "job.toml"
    bad.write_text('operation = "delete"\ndomain = "acme"\n[run]\nconcurency = 4\n')
    with pytest.raises(UsageError, match=r"job.toml: key 'run.concurency': unknown key"):
        load_job_file(bad)


def test_a_bad_value_exits_2_naming_file_key_and_reason(tmp_path: Path) -> None:
    bad = tmp_path / "job.toml"
    bad.write_text('operation = "delete"\n[run]\nrate = -5\n')
    run = bulkops("delete", "--config", bad)
    assert run.returncode == 2
    assert "job.toml" in run.stderr
    assert "run.rate" in run.stderr
    assert "greater than 0" in run.stderr


def test_a_job_file_for_another_command_is_refused(tmp_path: Path) -> None:
    run = bulkops("dispose", "--config", CONFIGS / "delete.toml")
    assert run.returncode == 2
    assert "for `bulkops delete`" in run.stderr


def test_flags_beat_environment_which_beats_the_file_which_beats_defaults(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("format,namespace,package,version\nnpm,,a,1.0.0\n")
    job = tmp_path / "job.toml"
    job.write_text(
        'operation = "delete"\ndomain = "acme"\nrepository = "main"\n'
        f'manifest = "{manifest.name}"\n[run]\nrate = 11\n'
    )
    plan = lambda run: run.stdout.split(" at ")[-1]  # noqa: E731 - "… at 11 calls/s"
    assert plan(bulkops("delete", "--config", job)).startswith("11 calls/s")
    with_env = bulkops("delete", "--config", job, env={"BULKOPS_RATE": "22"})
    assert plan(with_env).startswith("22 calls/s")
    with_flag = bulkops("delete", "--config", job, "--rate", "33", env={"BULKOPS_RATE": "22"})
    assert plan(with_flag).startswith("33 calls/s")
    default = bulkops("delete", "--domain", "acme", "--repository", "main", "--manifest", manifest)
    assert plan(default).startswith("100 calls/s")


def test_concurrency_is_auto_or_a_whole_number_and_a_bad_one_exits_2(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("format,namespace,package,version\nnpm,,a,1.0.0\n")
    base = ("delete", "--domain", "acme", "--repository", "main", "--manifest", manifest)
    for bad in ("0", "fast", "2.5", "-3"):
        run = bulkops(*base, "--concurrency", bad)
        assert run.returncode == 2, run.stderr
        assert "neither auto nor a whole number from 1 to 1024" in run.stderr
    assert bulkops(*base, "--concurrency", "AUTO").returncode == 0
    job = tmp_path / "job.toml"
    job.write_text('operation = "delete"\n[run]\nconcurrency = "fast"\n')
    run = bulkops(*base, "--config", job)
    assert run.returncode == 2 and "run.concurrency" in run.stderr


def test_a_dry_run_says_when_a_pinned_concurrency_limits_it_at_the_measured_latency(
    tmp_path: Path,
) -> None:
    far = FaultConfig(latency_ms=200, include_reads=True)  # DescribeRepository too
    with emulator_thread(quotas=QuotaConfig.off(), faults=far) as emu:
        manifest = tmp_path / "m.csv"
        rows = "".join(f"npm,,p{i},1.0.0\n" for i in range(100))
        manifest.write_text("format,namespace,package,version\n" + rows)
        base = ("delete", "--domain", "acme", "--repository", "main", "--manifest", manifest)
        env = {"AWS_ENDPOINT_URL_CODEARTIFACT": emu.endpoint_url}
        pinned = bulkops(*base, "--concurrency", "2", env=env)
        assert pinned.returncode == 0, pinned.stderr
        assert "100 calls, about 1s at 100 calls/s" in pinned.stdout
        # 2 in flight at ≥200 ms carry ≤10 calls/s: 100 calls take ≥10 s
        assert ": limited by concurrency 2 at 2" in pinned.stdout
        assert "calls/s of 100, about 1" in pinned.stdout
        auto = bulkops(*base, env=env)  # auto's 256 carry the rate at that latency
        assert auto.returncode == 0 and "limited by" not in auto.stdout
