"""The `bulkops emulator` command: serve a local CodeArtifact until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import signal
import sys
from pathlib import Path
from typing import Any

import click

from bulkops.emulator.faults import FaultConfig
from bulkops.emulator.quota import QuotaConfig
from bulkops.emulator.runner import EmulatorConfig, run_emulator
from bulkops.emulator.state import DEFAULT_ACCOUNT

_QUOTA_HELP = (
    "Calls per second for a scope: write, copy, list (both lists), list-packages, "
    "list-versions, read; RATE[:BURST] or off. Repeatable. `--quota off` turns every "
    "quota off. Default: AWS's 100 write, 5 copy, 200 per list, 800 read."
)


def parse_generate(text: str) -> tuple[int, int]:
    """'50x300' (or '50×300') → (50, 300)."""
    match = re.fullmatch(r"\s*(\d+)\s*[x×X*]\s*(\d+)\s*", text)
    if match is None:
        raise click.BadParameter(f"expected PACKAGESxVERSIONS such as 50x300, got {text!r}")
    return int(match[1]), int(match[2])


def parse_quotas(items: list[str]) -> QuotaConfig:
    """`["write=60", "copy=5:10", "read=off"]` over AWS's defaults; `["off"]` for none."""
    config = QuotaConfig()
    changes: dict[str, Any] = {}
    for item in items:
        if item.strip().lower() == "off":
            config = QuotaConfig.off()
            continue
        name, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"expected SCOPE=RATE[:BURST] or off, got {item!r}")
        name = name.strip().lower()
        value = value.strip().lower()
        if value == "off":
            parsed: Any = None
        else:
            rate, _, burst = value.partition(":")
            try:
                parsed = {"rate": float(rate), "burst": float(burst) if burst else None}
            except ValueError:
                raise click.BadParameter(f"bad rate in {item!r}") from None
        for scope in ("list_packages", "list_versions") if name == "list" else (name,):
            changes[scope] = parsed
    try:
        return QuotaConfig.from_dict(changes, config)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("emulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=int, default=0, show_default=True, help="Port to listen on; 0 picks a free one."
)
@click.option(
    "--generate",
    metavar="PxV",
    help="Generate P packages × V versions (all eight formats) in repository main.",
)
@click.option(
    "--seed-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Load a seed or exported state (JSON).",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed for generated data, revisions, faults.",
)
@click.option("--quota", multiple=True, metavar="SCOPE=RATE", help=_QUOTA_HELP)
@click.option("--latency-ms", type=float, default=0.0, help="Mean added latency per call.")
@click.option("--jitter", type=float, default=0.0, help="Latency varies by ± this fraction.")
@click.option("--error-rate", type=float, default=0.0, help="Fraction of 500 answers.")
@click.option("--conflict-rate", type=float, default=0.0, help="Fraction of 409 answers.")
@click.option(
    "--drop-rate", type=float, default=0.0, help="Fraction of connections dropped before acting."
)
@click.option(
    "--lost-rate", type=float, default=0.0, help="Fraction acted on, then the connection dropped."
)
@click.option(
    "--slow-rate", type=float, default=0.0, help="Fraction acted on, answered after --slow-seconds."
)
@click.option(
    "--slow-seconds", type=float, default=30.0, show_default=True, help="Delay of a slow answer."
)
@click.option("--skip-rate", type=float, default=0.0, help="Fraction of versions answered SKIPPED.")
@click.option(
    "--faults-on-reads", is_flag=True, help="Inject faults into Describe and List calls too."
)
@click.option(
    "--account-id", default=DEFAULT_ACCOUNT, show_default=True, help="The emulated AWS account."
)
def emulator(
    host: str,
    port: int,
    generate: str | None,
    seed_file: Path | None,
    seed: int,
    quota: tuple[str, ...],
    latency_ms: float,
    jitter: float,
    error_rate: float,
    conflict_rate: float,
    drop_rate: float,
    lost_rate: float,
    slow_rate: float,
    slow_seconds: float,
    skip_rate: float,
    faults_on_reads: bool,
    account_id: str,
) -> None:
    """Run a local CodeArtifact that speaks the real wire protocol, for tests and demos.

    Prints its endpoint URL as the first line of stdout, then serves until SIGINT/SIGTERM.

    Domain acme (owner 111122223333) holds repositories main (generated data) and release.

    Admin: GET /_emulator/state, GET /_emulator/counters, GET|POST /_emulator/config,
    POST /_emulator/reset-counters.

    Example:

      bulkops emulator --generate 50x300 --quota write=60 --error-rate 0.02

      aws codeartifact list-packages --domain acme --repository main --endpoint-url URL
    """
    try:
        faults = FaultConfig(
            latency_ms=latency_ms,
            jitter=jitter,
            error_rate=error_rate,
            conflict_rate=conflict_rate,
            drop_rate=drop_rate,
            lost_rate=lost_rate,
            slow_rate=slow_rate,
            slow_seconds=slow_seconds,
            skip_rate=skip_rate,
            include_reads=faults_on_reads,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    config = EmulatorConfig(
        host=host,
        port=port,
        seed=seed,
        generate=parse_generate(generate) if generate else None,
        seed_file=seed_file,
        quotas=parse_quotas(list(quota)),
        faults=faults,
        account_id=account_id,
    )
    warning = exposure_warning(host)
    if warning:
        click.echo(warning, err=True)
    try:
        asyncio.run(serve(config))
    except OSError as exc:
        click.echo(f"error: cannot serve on {host}:{port}: {exc}", err=True)
        sys.exit(1)
    except ValueError as exc:  # a seed file that breaks the API's naming rules
        raise click.BadParameter(str(exc), param_hint="--seed-file") from None


def exposure_warning(host: str) -> str | None:
    """A warning when `host` lets other machines reach an emulator that checks no signature."""
    if host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host.strip("[]")).is_loopback:
            return None
    except ValueError:
        pass  # a host name other than localhost: it may resolve to any address
    return (
        f"warning: the emulator listens on {host}, reachable from other machines; it checks "
        "no signature or credential, so anyone who can reach it can change its data"
    )


async def serve(config: EmulatorConfig) -> None:
    """Serve until SIGINT or SIGTERM, announcing the endpoint URL on stdout."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with run_emulator(config) as emu:
            print(emu.endpoint_url, flush=True)
            totals = {k: sum(v.values()) for k, v in emu.counters()["versions_by_status"].items()}
            print(f"emulator serving account {emu.account_id}: {totals}", file=sys.stderr)
            await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
