"""The `emulator` command: a subprocess that prints its URL, serves boto3 and exits 0 on SIGTERM."""

from __future__ import annotations

import selectors
import signal
import subprocess
import sys

import boto3
import click
import pytest

from bulkops.cli.emulator import parse_generate, parse_quotas
from bulkops.emulator import Quota, QuotaConfig
from bulkops.emulator.threaded import emulator_thread


def _first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The first stdout line, waiting at most `timeout` seconds for the process to start."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise AssertionError(f"no output within {timeout} s")
    return proc.stdout.readline().strip()


def test_the_command_serves_boto3_via_the_endpoint_env_and_stops_on_sigterm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bulkops.emulator", "--generate", "8×5", "--seed", "3",
         "--quota", "write=50", "--quota", "copy=off"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        url = _first_line(proc, timeout=30)
        assert url.startswith("http://127.0.0.1:")
        monkeypatch.setenv("AWS_ENDPOINT_URL_CODEARTIFACT", url)
        client = boto3.client("codeartifact", region_name="us-east-1")
        try:
            page = client.list_packages(domain="acme", repository="main")
        finally:
            client.close()
        assert len(page["packages"]) == 8
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_generate_takes_packages_by_versions() -> None:
    assert parse_generate("50x300") == (50, 300)
    assert parse_generate("50×300") == (50, 300)
    with pytest.raises(click.BadParameter):
        parse_generate("50")


def test_quota_options_override_aws_defaults_or_turn_them_off() -> None:
    config = parse_quotas(["write=60", "copy=2:4", "list=off"])
    assert config.write == Quota(60)
    assert config.copy == Quota(2, 4)
    assert config.list_packages is None and config.list_versions is None
    assert config.read == Quota(800)
    assert parse_quotas(["off"]) == QuotaConfig.off()
    assert parse_quotas(["off", "read=10"]) == QuotaConfig(None, None, None, None, Quota(10))
    with pytest.raises(click.BadParameter):
        parse_quotas(["writes=1"])


def test_a_threaded_emulator_serves_synchronous_clients() -> None:
    with emulator_thread(generate=(8, 4), quotas=QuotaConfig.off()) as emu:
        client = boto3.client(
            "codeartifact", region_name="us-east-1", endpoint_url=emu.endpoint_url
        )
        try:
            answer = client.delete_package(
                domain="acme",
                repository="main",
                format="pypi",
                package=emu.packages("main")[1].package,
            )
        finally:
            client.close()
        assert answer["deletedPackage"]["format"] == "pypi"
        assert len(emu.packages("main")) == 7
        assert emu.counters()["calls"]["DeletePackage"] == 1
