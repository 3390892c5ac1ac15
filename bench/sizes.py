"""How big each scenario is: the full run behind BENCHMARKS.md, and the seconds-long smoke run."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Level:
    """One quota-use run: an operation against one quota, for about `seconds` at full quota."""

    name: str
    operation: str  # "set-status" (write quota) or "copy" (copy quota)
    rate: float  # the emulator's quota for the operation, calls per second
    seconds: float
    ceiling: float | None = None  # bulkops' --rate/--copy-rate; None: its defaults (100, 5)

    @property
    def chunks(self) -> int:
        return int(self.rate * self.seconds)


@dataclass(frozen=True)
class Sizes:
    smoke: bool
    # 1. quota use, 2. shared quota: one emulator, packages × versions
    quota_generate: tuple[int, int]
    levels: tuple[Level, ...]
    quota_clients: tuple[str, ...]
    latency_ms: float
    jitter: float
    shared_rate: float
    shared_keep: float  # share of the quota left during the middle phase
    shared_phase_s: float
    shared_clients: tuple[str, ...]
    # 3-5. overhead, journal, memory: one emulator with quotas and latency off
    scale_generate: tuple[int, int]
    journal_packages: tuple[int, ...]  # bulkops runs at these many packages (journal cost)
    memory_packages: tuple[int, ...]  # bulkops-run-new runs (peak RSS)
    overhead_repeats: int
    # 6. emulator throughput (bench/emulator_throughput.py arguments)
    throughput_args: tuple[str, ...] = field(default=())
    # 7. latency: a job of this many calls at this write quota, per latency band
    # (name, mean ms, jitter): auto and fixed 16 concurrency side by side
    latency_bands: tuple[tuple[str, float, float], ...] = field(default=())
    latency_calls: int = 1200
    latency_rate: float = 100.0
    # 8. s3: a set-status job of this many calls at this write quota, local and S3 journal
    # stores side by side, without and with --expected-status, `s3_repeats` times each
    s3_calls: int = 1500
    s3_rate: float = 100.0
    s3_repeats: int = 2

    @property
    def scale_versions_per_package(self) -> int:
        return self.scale_generate[1]


FULL = Sizes(
    smoke=False,
    quota_generate=(6000, 100),
    levels=(
        Level("copy 5/s", "copy", 5, 30),
        Level("write 20/s", "set-status", 20, 30),
        Level("write 100/s", "set-status", 100, 30),
    ),
    quota_clients=("bulkops", "aioboto3-adaptive", "aioboto3-standard", "sequential"),
    latency_ms=50,
    jitter=0.5,
    shared_rate=100,
    shared_keep=0.6,
    shared_phase_s=20,
    shared_clients=("bulkops", "aioboto3-adaptive"),
    scale_generate=(10_000, 100),
    journal_packages=(100, 1000, 10_000),
    memory_packages=(1000, 10_000),
    overhead_repeats=2,
    throughput_args=("--duration", "10"),
    latency_bands=(
        ("25-75 ms", 50, 0.5),
        ("200-400 ms", 300, 1 / 3),
        ("400-800 ms", 600, 1 / 3),
        ("1000-2000 ms", 1500, 1 / 3),
    ),
)

SMOKE = Sizes(
    smoke=True,
    quota_generate=(120, 10),
    levels=(
        Level("copy", "copy", 20, 0.4, ceiling=20),
        Level("write", "set-status", 50, 0.4, ceiling=50),
    ),
    quota_clients=("bulkops", "aioboto3-adaptive", "aioboto3-standard", "sequential"),
    latency_ms=2,
    jitter=0.5,
    shared_rate=40,
    shared_keep=0.6,
    shared_phase_s=0.6,
    shared_clients=("bulkops",),
    scale_generate=(30, 20),
    journal_packages=(5, 15, 30),
    memory_packages=(15, 30),
    overhead_repeats=1,
    throughput_args=("--duration", "1", "--generate", "20x100", "--connections", "8"),
    latency_bands=(("20-60 ms", 40, 0.5),),
    latency_calls=60,
    latency_rate=100,
    s3_calls=30,
    s3_rate=100,
    s3_repeats=1,
)
