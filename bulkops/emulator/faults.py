"""Fault injection: latency, 500s, 409s, dropped and lost answers, slow answers, SKIPPED versions.

Every decision comes from the injector's own seeded RNG, drawn when a request reaches it,
so the same request sequence meets the same faults.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

MUTATING: frozenset[str] = frozenset(
    {
        "DeletePackageVersions",
        "DisposePackageVersions",
        "UpdatePackageVersionsStatus",
        "CopyPackageVersions",
        "DeletePackage",
    }
)

# Whole-call faults, in the order their fractions are stacked on one draw.
CALL_FAULTS: tuple[str, ...] = ("error", "conflict", "drop", "lost", "slow")


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """What to inject; fractions are per call except `skip_rate`, which is per version."""

    latency_ms: float = 0.0  # mean added latency
    jitter: float = 0.0  # latency varies uniformly by ± this fraction of the mean
    error_rate: float = 0.0  # 500 InternalServerException, state untouched
    conflict_rate: float = 0.0  # 409 ConflictException, state untouched
    drop_rate: float = 0.0  # connection dropped before the state change
    lost_rate: float = 0.0  # state changed, then the connection dropped
    slow_rate: float = 0.0  # state changed, answer sent after `slow_seconds`
    slow_seconds: float = 30.0
    skip_rate: float = 0.0  # versions answered SKIPPED and not acted on
    include_reads: bool = False  # also hit Describe and the two List operations
    seed: int | None = None  # None: the emulator's seed

    def __post_init__(self) -> None:
        rates = [getattr(self, f"{k}_rate") for k in CALL_FAULTS]
        for value in [*rates, self.skip_rate, self.jitter]:
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"fault fractions must be within 0..1 (got {value})")
        if sum(rates) > 1.0 + 1e-9:
            raise ValueError("the whole-call fault fractions add up to more than 1")
        if self.latency_ms < 0 or self.slow_seconds < 0:
            raise ValueError("latency_ms and slow_seconds must not be negative")

    @property
    def active(self) -> bool:
        return (
            self.latency_ms > 0
            or self.skip_rate > 0
            or any(getattr(self, f"{k}_rate") > 0 for k in CALL_FAULTS)
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: FaultConfig | None = None) -> FaultConfig:
        """Apply `{"error_rate": 0.05, "latency_ms": 20}` over `base`."""
        names = {f.name: f for f in fields(cls)}
        changes: dict[str, Any] = {}
        for key, value in data.items():
            name = key.replace("-", "_")
            if name not in names:
                raise ValueError(f"unknown fault setting {key!r}; known: {', '.join(names)}")
            if name == "include_reads":
                changes[name] = bool(value)
            elif name == "seed":
                changes[name] = None if value is None else int(value)
            else:
                changes[name] = float(value)
        return replace(base or cls(), **changes)


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """The faults one call meets: a whole-call kind or None, a delay, SKIPPED version indices."""

    kind: str | None
    delay: float
    skipped: frozenset[int]


NO_FAULT = FaultPlan(None, 0.0, frozenset())


class FaultInjector:
    """Draws each call's FaultPlan from a seeded RNG and counts what it injected."""

    def __init__(self, config: FaultConfig, default_seed: int) -> None:
        self._default_seed = default_seed
        self.config = config
        self._active = config.active
        self._rng = random.Random(self._seed(config))
        self.counts: dict[str, int] = dict.fromkeys((*CALL_FAULTS, "skipped_versions"), 0)

    def _seed(self, config: FaultConfig) -> int:
        return self._default_seed if config.seed is None else config.seed

    def configure(self, config: FaultConfig) -> None:
        """Switch settings mid-run; the RNG carries on unless the seed changes."""
        if self._seed(config) != self._seed(self.config):
            self._rng = random.Random(self._seed(config))
        self.config = config
        self._active = config.active

    def reset_counts(self) -> None:
        for key in self.counts:
            self.counts[key] = 0

    def plan(self, operation: str, versions: int) -> FaultPlan:
        """The faults for one call acting on `versions` versions (drawn now, in arrival order)."""
        if not self._active:
            return NO_FAULT
        c = self.config
        if operation not in MUTATING and not c.include_reads:
            return NO_FAULT
        rng = self._rng
        kind = None
        draw = rng.random()
        for name in CALL_FAULTS:
            rate: float = getattr(c, f"{name}_rate")
            if draw < rate:
                kind = name
                break
            draw -= rate
        delay = 0.0
        if c.latency_ms > 0:
            delay = c.latency_ms * (1.0 + c.jitter * (2.0 * rng.random() - 1.0)) / 1000.0
        skipped: frozenset[int] = frozenset()
        if c.skip_rate > 0 and versions and operation in MUTATING:
            skipped = frozenset(i for i in range(versions) if rng.random() < c.skip_rate)
        if kind is not None:
            self.counts[kind] += 1
        if kind not in ("error", "conflict", "drop"):  # those answer before acting
            self.counts["skipped_versions"] += len(skipped)
        return FaultPlan(kind, delay, skipped)
