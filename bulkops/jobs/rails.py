"""Safety rails, the pure parts: size caps, keep-min arithmetic, the failure breaker, the canary.

Every refusal is `Refused` (exit 2) and comes before any mutating call:

    --max-versions N / --max-packages N   a job larger than the cap is refused whole
    --keep-min N                          a job that would leave a package with fewer than N
                                          versions is refused, naming the packages
    --breaker SHARE                       after the first chunks (--breaker-window), stop the
                                          run if more than SHARE of their versions failed
                                          permanently (a wrong manifest, a wrong repository)
    --canary                              send the first chunk alone; fan out only if all of
                                          it succeeded

What "a version a package keeps" means depends on the operation (see `kept_statuses`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from bulkops.errors import Refused
from bulkops.model import ChunkOutcome, JobSpec, Operation, PackageRef

MAX_NAMED = 10  # packages named in a keep-min refusal


@dataclass(frozen=True, slots=True)
class Rails:
    """The rails of one job; zero or None turns a rail off."""

    max_versions: int | None = None
    max_packages: int | None = None
    keep_min: int = 0
    breaker: float | None = None  # share of versions failing permanently that stops the run
    breaker_window: int = 10  # chunks the breaker watches from the start
    canary: bool = False


def check_caps(rails: Rails, *, versions: int, packages: int, unit: str = "versions") -> None:
    """Refuse a job larger than its caps."""
    if rails.max_versions is not None and versions > rails.max_versions:
        raise Refused(
            f"the job has {versions} {unit}, more than --max-versions {rails.max_versions}; "
            "nothing was sent (raise the cap or narrow the selection)"
        )
    if rails.max_packages is not None and packages > rails.max_packages:
        raise Refused(
            f"the job touches {packages} packages, more than --max-packages "
            f"{rails.max_packages}; nothing was sent (raise the cap or narrow the selection)"
        )


def kept_statuses(spec: JobSpec) -> frozenset[str]:
    """The statuses that count as "a version the package still has" after this job.

    delete, dispose, delete-packages: any version not Disposed. set-status to Archived or
    Unlisted: Published versions (what clients can still resolve). copy removes nothing.
    """
    op = spec.operation
    if op is Operation.COPY:
        raise Refused("--keep-min does not apply to copy, which removes nothing")
    if op is Operation.SET_STATUS:
        if spec.target_status == "Published":
            raise Refused("--keep-min does not apply to set-status --target-status Published")
        return frozenset({"Published"})
    return frozenset({"Published", "Unlisted", "Archived", "Unfinished"})


@dataclass(frozen=True, slots=True)
class Shortfall:
    """A package the job would leave with fewer than keep-min versions."""

    ref: PackageRef
    has: int
    removes: int

    @property
    def leaves(self) -> int:
        return self.has - self.removes


def check_keep_min(keep_min: int, shortfalls: Iterable[Shortfall]) -> None:
    """Refuse when any package would be left under `keep_min` versions, naming the first ones."""
    found = sorted(shortfalls, key=lambda s: (s.leaves, s.ref))
    if keep_min <= 0 or not found:
        return
    named = ", ".join(f"{s.ref} ({s.has} → {s.leaves})" for s in found[:MAX_NAMED])
    more = f" and {len(found) - MAX_NAMED} more" if len(found) > MAX_NAMED else ""
    raise Refused(
        f"--keep-min {keep_min}: the job would leave {len(found)} packages with fewer than "
        f"{keep_min} versions: {named}{more}; nothing was sent "
        "(keep more versions in the selection, or lower --keep-min)"
    )


def permanent_failures(outcome: ChunkOutcome) -> int:
    """Versions of an attempt that failed for good (not retried, not settled as done)."""
    return len(outcome.permanent)


@dataclass(slots=True)
class Breaker:
    """Watches the first chunks of a run and trips when too many of their versions fail."""

    share: float
    window: int = 10
    min_chunks: int = 3  # no verdict on fewer chunks, unless the job has no more
    chunks: set[str] = field(default_factory=set)
    versions: int = 0
    failed: int = 0
    tripped: str | None = None

    def observe(self, outcome: ChunkOutcome, total_chunks: int | None = None) -> str | None:
        """Count one attempt; the reason to stop once tripped, else None."""
        if self.tripped is not None:
            return self.tripped
        if outcome.chunk_id not in self.chunks:
            if len(self.chunks) >= self.window:
                return None  # past the window: the breaker guards the start of a run only
            self.chunks.add(outcome.chunk_id)
        done = len(outcome.successful) + len(outcome.settled)
        bad = permanent_failures(outcome)
        self.versions += done + bad
        self.failed += bad
        # a window narrower than min_chunks is a verdict on that window
        needed = min(self.min_chunks, self.window, total_chunks or self.min_chunks)
        enough = len(self.chunks) >= needed
        if enough and self.versions and self.failed / self.versions > self.share:
            self.tripped = (
                f"breaker: {self.failed} of the first {self.versions} versions "
                f"({len(self.chunks)} chunks) failed permanently, more than "
                f"{self.share:.0%}"
            )
        return self.tripped


def canary_verdict(outcomes: Iterable[ChunkOutcome]) -> str | None:
    """Why the canary chunk failed, or None when every version of it succeeded."""
    failed = given_up = 0
    codes: dict[str, int] = {}
    pending: set[str] = set()
    for o in outcomes:
        if o.error is not None:
            given_up += 1
        for v, info in o.failed.items():
            if v in o.retry:
                pending.add(v)
            elif v not in o.settled:
                failed += 1
                code = info.get("errorCode", "?")
                codes[code] = codes.get(code, 0) + 1
        pending -= set(o.successful) | set(o.settled)
    if failed:
        by_code = ", ".join(f"{n} {c}" for c, n in sorted(codes.items()))
        return f"canary: {failed} versions of the first chunk failed ({by_code})"
    if given_up or pending:
        return "canary: the first chunk did not finish within its retries"
    return None
