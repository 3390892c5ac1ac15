"""Request quotas as token buckets, mirroring CodeArtifact's per-account defaults."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

# The quota scopes each operation draws a token from (Copy draws from two).
OPERATION_SCOPES: dict[str, tuple[str, ...]] = {
    "DeletePackageVersions": ("write",),
    "DisposePackageVersions": ("write",),
    "UpdatePackageVersionsStatus": ("write",),
    "DeletePackage": ("write",),
    "CopyPackageVersions": ("write", "copy"),
    "ListPackages": ("list_packages",),
    "ListPackageVersions": ("list_versions",),
    "DescribePackageVersion": ("read",),
    "DescribeRepository": ("read",),
}


@dataclass(frozen=True, slots=True)
class Quota:
    """A rate in calls per second and a burst capacity (default: one second's worth)."""

    rate: float
    burst: float | None = None

    @property
    def capacity(self) -> float:
        return max(self.burst if self.burst is not None else self.rate, 1.0)

    def to_dict(self) -> dict[str, float | None]:
        return {"rate": self.rate, "burst": self.burst}


@dataclass(frozen=True, slots=True)
class QuotaConfig:
    """One Quota per scope; None turns a scope's quota off. Defaults are AWS's."""

    write: Quota | None = Quota(100)
    copy: Quota | None = Quota(5)
    list_packages: Quota | None = Quota(200)
    list_versions: Quota | None = Quota(200)
    read: Quota | None = Quota(800)

    @classmethod
    def off(cls) -> QuotaConfig:
        """No quota at all."""
        return cls(None, None, None, None, None)

    def scaled(self, factor: float) -> QuotaConfig:
        """Every rate and burst times `factor` (0.6 takes 40% of the quota away)."""

        def scale(q: Quota | None) -> Quota | None:
            if q is None:
                return None
            burst = None if q.burst is None else q.burst * factor
            return Quota(q.rate * factor, burst)

        return QuotaConfig(*(scale(getattr(self, f.name)) for f in fields(self)))

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: (None if (q := getattr(self, f.name)) is None else q.to_dict())
            for f in fields(self)
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: QuotaConfig | None = None) -> QuotaConfig:
        """Apply `{"write": {"rate": 60}, "copy": null, "read": 800}` over `base`."""
        changes: dict[str, Quota | None] = {}
        names = {f.name for f in fields(cls)}
        for name, value in data.items():
            scope = name.replace("-", "_")
            if scope not in names:
                raise ValueError(f"unknown quota scope {name!r}; known: {', '.join(names)}")
            if value is None or value == "off":
                changes[scope] = None
            elif isinstance(value, dict):
                changes[scope] = Quota(float(value["rate"]), _opt_float(value.get("burst")))
            else:
                changes[scope] = Quota(float(value))
        return replace(base or cls(), **changes)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


class TokenBucket:
    """Tokens refill at `rate` per second up to `capacity`; a call takes one."""

    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, quota: Quota, now: float) -> None:
        self.rate = quota.rate
        self.capacity = quota.capacity
        self.tokens = self.capacity
        self.stamp = now

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_time(self) -> float:
        """Seconds until one token is available (0 if one is)."""
        if self.tokens >= 1.0:
            return 0.0
        return math.inf if self.rate <= 0 else (1.0 - self.tokens) / self.rate


class Quotas:
    """The live buckets of a running emulator; reconfigurable while it serves."""

    def __init__(self, config: QuotaConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.config = config
        self._buckets: dict[str, TokenBucket] = {}
        self.configure(config)

    def configure(self, config: QuotaConfig) -> None:
        """Switch to new quotas; a changed scope keeps its tokens, up to the new capacity."""
        now = self._clock()
        buckets: dict[str, TokenBucket] = {}
        for f in fields(config):
            quota: Quota | None = getattr(config, f.name)
            if quota is None:
                continue
            bucket = TokenBucket(quota, now)
            old = self._buckets.get(f.name)
            if old is not None:
                # No free burst on a change: a cut mid-run takes effect at once.
                old.refill(now)
                bucket.tokens = min(bucket.capacity, old.tokens)
            buckets[f.name] = bucket
        self.config = config
        self._buckets = buckets

    def acquire(self, operation: str) -> tuple[int, str] | None:
        """Take the operation's tokens, or return (Retry-After seconds, scope) untouched."""
        scopes = OPERATION_SCOPES.get(operation, ())
        buckets = [(s, b) for s in scopes if (b := self._buckets.get(s)) is not None]
        if not buckets:
            return None
        now = self._clock()
        for scope, bucket in buckets:
            bucket.refill(now)
            wait = bucket.wait_time()
            if wait > 0:
                # Retry-After is whole seconds on the wire, and at least one.
                return max(1, math.ceil(min(wait, 3600.0))), scope
        for _, bucket in buckets:
            bucket.tokens -= 1.0
        return None
