"""Deterministic, realistic test data: P packages × V versions across all eight formats."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from bulkops.emulator.state import DEFAULT_DOMAIN, EXTERNAL_CONNECTIONS, State, make_revision
from bulkops.model import FORMATS, PackageRef

YEAR = 365.25 * 86400.0
DAY = 86400.0

_TOPICS = (
    "auth", "billing", "cache", "config", "crypto", "data", "events", "feature-flags",
    "geo", "http", "inventory", "logging", "metrics", "notify", "orders", "payments",
    "queue", "search", "storage", "telemetry", "tracing", "ui", "users", "workflow",
)  # fmt: skip
_KINDS = (
    "client", "core", "sdk", "utils", "server", "api", "kit", "plugin", "cli", "schema",
    "adapter", "testing", "runtime", "tools",
)  # fmt: skip
_NPM_SCOPES = ("acme", "acme-platform", "acme-web", "payments-team", "internal", "design")
_GROUP_IDS = (
    "com.acme.platform", "com.acme.payments", "com.acme.data", "org.acme.commons",
    "io.acme.tools", "com.acme.mobile.android",
)  # fmt: skip
_SWIFT_SCOPES = ("acme", "acme-ios", "mobile-team", "design-system")
_GENERIC_NAMESPACES = ("acme-tools", "build-artifacts", "firmware", "ml-models", "infra")

# Whole-release suffixes that sort before the release they precede, per format.
_PRE: dict[str, tuple[str, ...]] = {
    "npm": ("-alpha.{n}", "-beta.{n}", "-rc.{n}", "-next.{n}"),
    "cargo": ("-alpha.{n}", "-beta.{n}", "-rc.{n}"),
    "swift": ("-beta.{n}", "-rc.{n}"),
    "generic": ("-rc{n}", "-beta{n}"),
    "pypi": ("a{n}", "b{n}", "rc{n}", ".dev{n}"),
    "maven": ("-SNAPSHOT", "-M{n}", "-RC{n}", "-beta-{n}"),
    "nuget": ("-preview.{n}", "-beta.{n}", "-rc.{n}"),
    "ruby": (".pre", ".beta{n}", ".rc{n}"),
}


def _package_name(rng: random.Random, fmt: str) -> tuple[str | None, str]:
    topic, kind = rng.choice(_TOPICS), rng.choice(_KINDS)
    if fmt == "npm":
        scope = rng.choice(_NPM_SCOPES) if rng.random() < 0.6 else None
        return scope, f"{topic}-{kind}"
    if fmt == "pypi":
        return None, rng.choice((f"acme-{topic}-{kind}", f"acme_{topic}", f"{topic}-{kind}"))
    if fmt == "maven":
        return rng.choice(_GROUP_IDS), f"{topic}-{kind}"
    if fmt == "nuget":
        return None, f"Acme.{_camel(topic)}.{_camel(kind)}"
    if fmt == "ruby":
        return None, rng.choice((f"acme_{topic}_{kind}", f"acme-{topic}"))
    if fmt == "swift":
        return rng.choice(_SWIFT_SCOPES), f"{_camel(topic)}{_camel(kind)}"
    if fmt == "cargo":
        return None, rng.choice((f"acme-{topic}-{kind}", f"{topic}_{kind}"))
    return rng.choice(_GENERIC_NAMESPACES), rng.choice(
        (f"{topic}-{kind}-linux-x64", f"{topic}-bundle", f"{topic}-{kind}")
    )


def _camel(word: str) -> str:
    return "".join(part.capitalize() for part in word.split("-"))


def _release(fmt: str, core: tuple[int, int, int], rng: random.Random) -> str:
    major, minor, patch = core
    plain = f"{major}.{minor}.{patch}"
    roll = rng.random()
    if fmt in ("npm", "cargo") and roll < 0.04:
        return f"{plain}+build.{rng.randrange(1, 999)}"
    if fmt == "maven" and roll < 0.08:
        return f"{plain}{rng.choice(('.Final', '.RELEASE', '-jre'))}"
    if fmt == "nuget" and roll < 0.05:
        return f"{plain}.{rng.randrange(1, 9)}"
    if fmt == "generic" and roll < 0.1:
        return f"{plain}-build.{rng.randrange(100, 9999)}"
    return plain


def _versions(rng: random.Random, fmt: str, count: int) -> list[str]:
    """`count` distinct version strings in release order, in the format's own style."""
    out: list[str] = []
    core = (rng.choice((0, 1, 1, 2)), rng.randrange(0, 6), 0)
    while len(out) < count:
        roll = rng.random()
        if roll < 0.03:
            core = (core[0] + 1, 0, 0)
        elif roll < 0.2:
            core = (core[0], core[1] + 1, 0)
        else:
            core = (core[0], core[1], core[2] + 1)
        plain = f"{core[0]}.{core[1]}.{core[2]}"
        if rng.random() < 0.15:
            template = rng.choice(_PRE[fmt])
            runs = rng.randint(1, 3) if "{n}" in template else 1
            out.extend(plain + template.format(n=n) for n in range(1, runs + 1))
        out.append(_release(fmt, core, rng))
        if fmt == "pypi" and rng.random() < 0.04:
            out.append(f"{plain}.post1")
    assert len(set(out)) == len(out)  # every variant hangs off a distinct core
    return out[:count]


def _status(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.03:
        return "Unlisted"
    if roll < 0.07:
        return "Archived"
    if roll < 0.10:
        return "Disposed"
    return "Published"


def generate(
    state: State,
    packages: int,
    versions: int,
    *,
    repository: str = "main",
    domain: str = DEFAULT_DOMAIN,
    now: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Fill `repository` with `packages` × `versions`, the same for the same `state.seed`.

    Published times spread over the three years before `now` (default: today's UTC midnight,
    so a seed gives the same data all day).
    """
    rng = random.Random(f"bulkops-emulator:{state.seed}")
    anchor = now if now is not None else (time.time() // DAY) * DAY
    repo = state.add_repository(repository, domain)
    seen: set[PackageRef] = set(repo.packages)
    for i in range(packages):
        fmt = FORMATS[i] if i < len(FORMATS) else rng.choice(_WEIGHTED)
        namespace, name = _package_name(rng, fmt)
        ref = PackageRef(fmt, namespace, name)
        suffix = 2
        while ref in seen:
            ref, suffix = PackageRef(fmt, namespace, f"{name}-{suffix}"), suffix + 1
        seen.add(ref)
        package = state.add_package(repo, ref)
        external = fmt in EXTERNAL_CONNECTIONS and rng.random() < 0.15
        if external:
            package.publish, package.upstream = "BLOCK", "ALLOW"
        elif rng.random() < 0.3:
            package.upstream = "BLOCK"
        start = anchor - rng.uniform(0.5, 3.0) * YEAR
        names = _versions(rng, fmt, versions)
        times = sorted(rng.uniform(start, anchor) for _ in names)
        for name, when in zip(names, times, strict=True):
            state.add_version(
                repo,
                ref,
                name,
                _status(rng),
                revision=make_revision(state.seed, domain, repository, str(ref), name),
                published_time=round(when, 3),
                origin_type="EXTERNAL" if external else "INTERNAL",
                domain=domain,
            )
        if progress is not None:
            progress(i + 1)


# Real repositories lean towards npm, maven and pypi.
_WEIGHTED: tuple[str, ...] = (
    ("npm",) * 5 + ("maven",) * 4 + ("pypi",) * 4 + ("nuget",) * 2
    + ("generic", "ruby", "swift", "cargo")
)  # fmt: skip
