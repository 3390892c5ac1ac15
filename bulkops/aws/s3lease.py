"""The journal's lease on S3: one owner at a time, an epoch as fencing token, expiry and takeover.

The lease is one object, `PREFIX/journal/lease`, JSON: epoch, holder (host, pid, since),
`expires` (the holder's wall clock when the renewal was sent, plus the TTL) and a nonce.
It is created with `If-None-Match: *` and only ever replaced with `If-Match: <etag>`, so
of two runs racing for it exactly one wins; every take (a new owner) raises the epoch.

Timing. A renewal sent at monotonic time `t` makes ownership certain until
`t + ttl - skew` (`owned_until`): another host takes over only once its own wall clock
passes `expires`, and its clock may run up to `skew` ahead of ours. `keep_alive` renews
every `renew_every` seconds; while renewals fail it keeps trying, and raises `LeaseLost`
once `owned_until - margin` is reached (`margin` covers the longest call in flight), or
at once when the lease was taken over (412): the run stops sending before anyone else can
own the journal. The lease is never deleted: release marks it released (expires 0) and
keeps the epoch, so epochs only grow.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
import structlog

from bulkops.aws.s3calls import S3Calls
from bulkops.errors import JournalBusy, JournalCorrupt, LeaseLost, StoreUnavailable

log = structlog.get_logger("bulkops.aws.s3lease")


@dataclass(frozen=True, slots=True)
class LeaseTimes:
    ttl: float = 60.0
    renew_every: float = 15.0
    margin: float = 20.0  # the longest call a run may have in flight
    skew: float = 5.0  # how far another host's clock may be ahead of ours

    @classmethod
    def for_calls(cls, call_timeout: float, renew_every: float = 15.0) -> LeaseTimes:
        """Times for a run whose longest call takes `call_timeout`: a run sends a call only
        while it will end before `owned_until`, which, renewed every `renew_every`, stays at
        least `ttl - skew - renew_every` ahead: more than one call, so calls keep flowing
        through one failed renewal; it gives up `call_timeout` before ownership ends."""
        skew = 5.0
        ttl = max(60.0, call_timeout + skew + 2 * renew_every)
        return cls(ttl=ttl, renew_every=renew_every, margin=call_timeout, skew=skew)

    def __post_init__(self) -> None:
        if not (self.renew_every > 0 and self.renew_every + self.margin + self.skew < self.ttl):
            raise ValueError("lease times need renew_every + margin + skew < ttl")


@dataclass(slots=True)
class Clock:
    """The clocks the lease reads; tests pass a fake whose `sleep` moves time on."""

    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] = field(default=anyio.sleep)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def describe_holder(doc: dict[str, Any]) -> str:
    until = "released" if doc.get("released") else f"lease until {_iso(float(doc['expires']))}"
    return f"pid {doc['pid']} on host {doc['host']}, since {doc['since']}, {until}"


class Lease:
    """This run's hold on one journal's lease object."""

    def __init__(
        self, calls: S3Calls, key: str, where: str, times: LeaseTimes, clock: Clock
    ) -> None:
        self.calls, self.key, self.where, self.times, self.clock = calls, key, where, times, clock
        self.epoch = 0
        self.etag: str | None = None
        self.deadline = -math.inf
        self.since = ""

    @property
    def held(self) -> bool:
        return self.etag is not None

    def owned_until(self) -> float:
        return self.deadline if self.held else -math.inf

    def check(self) -> None:
        """Raise LeaseLost unless ownership is still certain now."""
        if not self.held:
            raise LeaseLost(self.where, "the journal is not owned by this run")
        if self.clock.monotonic() >= self.deadline:
            raise LeaseLost(self.where, "the lease was not renewed in time")

    def _body(self, *, expires: float, released: bool = False) -> bytes:
        doc = {
            "bulkops": "lease",
            "version": 1,
            "epoch": self.epoch,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "since": self.since,
            "expires": expires,
            "expires_at": _iso(expires),
            "released": released,
            "nonce": secrets.token_hex(8),  # so that a write read back is known to be ours
        }
        return (json.dumps(doc, sort_keys=True) + "\n").encode()

    def _parse(self, body: bytes) -> dict[str, Any]:
        try:
            doc = json.loads(body)
            if doc.get("bulkops") != "lease":
                raise ValueError("no bulkops lease")
            int(doc["epoch"]), float(doc["expires"]), str(doc["host"]), int(doc["pid"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise JournalCorrupt(
                self.calls.where(self.key), 1, f"not a bulkops lease ({exc})"
            ) from exc
        return dict(doc)

    async def take(self, floor: int) -> int:
        """Become the owner at a new epoch above `floor` and every earlier one: JournalBusy while
        another live run holds it; an expired or released lease is taken over (logged)."""
        self.since = _iso(self.clock.wall())
        while True:
            found = await self.calls.get(self.key)
            old = self._parse(found.body) if found else None
            if (
                old is not None
                and not old.get("released")
                and float(old["expires"]) > self.clock.wall()
            ):
                raise JournalBusy(self.where, describe_holder(old))
            self.epoch = max(floor, int(old["epoch"]) if old else 0) + 1
            sent = self.clock.monotonic()
            body = self._body(expires=self.clock.wall() + self.times.ttl)
            if found is None:
                etag = await self.calls.put(self.key, body, if_none_match=True)
            else:
                etag = await self.calls.put(self.key, body, if_match=found.etag)
            if etag is None:
                continue  # another run changed it first: look again
            self.etag, self.deadline = etag, sent + self.times.ttl - self.times.skew
            if old is not None and not old.get("released"):
                log.warning(
                    "lease_taken_over",
                    journal=self.where,
                    epoch=self.epoch,
                    previous=describe_holder(old),
                    expired_ago=round(self.clock.wall() - float(old["expires"]), 1),
                )
            else:
                log.info("lease_taken", journal=self.where, epoch=self.epoch)
            return self.epoch

    async def renew(self) -> None:
        """Extend the lease once; LeaseLost when another run took it."""
        if self.etag is None:
            raise LeaseLost(self.where, "the journal is not owned by this run")
        sent = self.clock.monotonic()
        body = self._body(expires=self.clock.wall() + self.times.ttl)
        etag = await self.calls.put(self.key, body, if_match=self.etag)
        if etag is None:
            self.etag, self.deadline = None, -math.inf
            raise LeaseLost(self.where, "another run took the lease over")
        self.etag, self.deadline = etag, max(self.deadline, sent + self.times.ttl - self.times.skew)

    async def keep_alive(self) -> None:
        """Renew every `renew_every` s until cancelled; LeaseLost when it cannot in time."""
        while True:
            wait = self.deadline - self.times.ttl + self.times.skew + self.times.renew_every
            await self.clock.sleep(max(0.0, wait - self.clock.monotonic()))
            while True:
                left = self.deadline - self.times.margin - self.clock.monotonic()
                if left <= 0:
                    self.etag, self.deadline = None, -math.inf
                    log.error("lease_lost", journal=self.where, epoch=self.epoch)
                    raise LeaseLost(self.where, "the lease could not be renewed in time")
                try:
                    with anyio.move_on_after(left):
                        await self.renew()
                        break
                except StoreUnavailable as exc:
                    log.warning("lease_renew_failed", journal=self.where, error=str(exc))
                await self.clock.sleep(min(left, self.times.renew_every / 5))

    async def release(self) -> None:
        """Mark the lease released (same epoch), so the next run need not wait; idempotent."""
        if self.etag is None:
            return
        etag, self.etag, self.deadline = self.etag, None, -math.inf
        try:
            await self.calls.put(self.key, self._body(expires=0.0, released=True), if_match=etag)
        except StoreUnavailable as exc:  # it expires by itself within the TTL
            log.warning("lease_release_failed", journal=self.where, error=str(exc))
        else:
            log.info("lease_released", journal=self.where, epoch=self.epoch)
