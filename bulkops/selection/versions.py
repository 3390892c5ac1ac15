"""Version ordering by each format's own rules (semver, PEP 440, Maven, NuGet, RubyGems); pure.

    npm, cargo, swift, generic  semver: 10.0 > 9.0, 1.0.0-rc.1 < 1.0.0, build metadata ignored
    pypi                        PEP 440 (`packaging.version`): 1.0.dev1 < 1.0a1 < 1.0 < 1.0.post1
    maven                       Maven's ComparableVersion: alpha < beta < milestone < rc = cr
                                < snapshot < release (ga, final) < sp < other qualifiers
    nuget                       up to four numbers, then semver 2 labels, case-insensitive
    ruby                        Gem::Version: a letter makes a pre-release (1.0.pre < 1.0)

`parse` returns None for a version its format's rules cannot read; `order` then falls
back to publish order for that package (see its docstring).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, TypeVar

from packaging.version import InvalidVersion, Version

from bulkops.selection.maven_versions import maven_cmp, maven_prerelease, maven_tree

Scheme: TypeAlias = Literal["semver", "pep440", "maven", "nuget", "rubygems"]
SCHEMES: dict[str, Scheme] = {
    "npm": "semver",
    "cargo": "semver",
    "swift": "semver",
    "generic": "semver",
    "pypi": "pep440",
    "maven": "maven",
    "nuget": "nuget",
    "ruby": "rubygems",
}
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Parsed:
    """A version read by its format's rules; compare two of one scheme with `compare`."""

    scheme: Scheme
    text: str
    key: Any  # semver, nuget, pep440: a sort key; maven, rubygems: a parsed tree
    release: tuple[int, ...]  # the leading numbers, trailing zeros dropped
    prerelease: bool


def scheme_of(fmt: str) -> Scheme:
    """The ordering rules of a package format (semver for a format not listed)."""
    return SCHEMES.get(fmt, "semver")


def parse(fmt: str, version: str) -> Parsed | None:
    """`version` read by the rules of `fmt`, or None when those rules cannot read it."""
    scheme = scheme_of(fmt)
    return _PARSERS[scheme](version)


def compare(a: Parsed, b: Parsed) -> int:
    """-1, 0 or 1 as `a` sorts below, level with or above `b` (same scheme)."""
    if a.scheme != b.scheme:
        raise ValueError(f"cannot compare a {a.scheme} version with a {b.scheme} one")
    if a.scheme == "maven":
        return maven_cmp(a.key, b.key)
    if a.scheme == "rubygems":
        return _gem_cmp(a.key, b.key)
    return int(a.key > b.key) - int(a.key < b.key)


def sort_key(parsed: Parsed) -> Any:
    """A key for `sorted` over versions of one scheme."""
    return _Key(parsed)


def is_prerelease(fmt: str, version: str) -> bool:
    """Whether `version` is a pre-release by its format's rules (False when unreadable)."""
    parsed = parse(fmt, version)
    return parsed is not None and parsed.prerelease


@dataclass(frozen=True, slots=True)
class Ordered:
    """A package's versions in ascending order and how that order was decided."""

    by: Literal["version", "published"]
    unparsed: tuple[str, ...]  # the versions that forced publish order, if any


def order(
    fmt: str,
    items: Iterable[T],
    version: Callable[[T], str],
    published_rank: Callable[[T], int],
) -> tuple[list[T], Ordered]:
    """The items of one package, oldest version first.

    When every version parses, by version (equal versions, e.g. 1.0 and 1.0.0 or two
    build metadata variants, by publish rank); when one does not, the whole package by
    publish rank, because a partial order would put the unreadable ones anywhere.
    """
    listed = list(items)
    parsed = [(item, parse(fmt, version(item))) for item in listed]
    bad = tuple(version(item) for item, p in parsed if p is None)
    if bad:
        return sorted(listed, key=published_rank), Ordered("published", bad)
    decorated = [(sort_key(p), published_rank(item), item) for item, p in parsed if p]
    decorated.sort(key=lambda d: (d[0], d[1]))
    return [d[2] for d in decorated], Ordered("version", ())


def sort_versions(fmt: str, versions: Sequence[str]) -> list[str]:
    """Version strings in ascending order (unreadable ones keep their given order, first)."""
    ranked = list(enumerate(versions))
    ordered, _ = order(fmt, ranked, lambda r: r[1], lambda r: r[0])
    return [v for _, v in ordered]


@functools.total_ordering
class _Key:
    __slots__ = ("parsed",)

    def __init__(self, parsed: Parsed) -> None:
        self.parsed = parsed

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Key) and compare(self.parsed, other.parsed) == 0

    def __lt__(self, other: _Key) -> bool:
        return compare(self.parsed, other.parsed) < 0

    def __hash__(self) -> int:  # equal keys may hash apart: never put keys in sets
        return hash(self.parsed.release)


def _strip_zeros(numbers: Sequence[int]) -> tuple[int, ...]:
    out = list(numbers)
    while out and out[-1] == 0:
        out.pop()
    return tuple(out)


def _label_key(label: str, fold: bool) -> tuple[tuple[int, int | str], ...]:
    """Semver pre-release identifiers: numbers numerically and below words."""
    out: list[tuple[int, int | str]] = []
    for part in label.split("."):
        if part.isdigit():
            out.append((0, int(part)))
        else:
            out.append((1, part.lower() if fold else part))
    return tuple(out)


_SEMVER = re.compile(
    r"[vV]?(?P<release>\d+(?:\.\d+)*)"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)


def _semver(text: str) -> Parsed | None:
    m = _SEMVER.fullmatch(text)
    if m is None:
        return None
    release = _strip_zeros([int(n) for n in m["release"].split(".")])
    pre = m["pre"]
    key = (release, 0, _label_key(pre, False)) if pre else (release, 1, ())
    return Parsed("semver", text, key, release, pre is not None)


_NUGET = re.compile(
    r"(?P<release>\d+(?:\.\d+){0,3})"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)


def _nuget(text: str) -> Parsed | None:
    m = _NUGET.fullmatch(text)
    if m is None:
        return None
    release = _strip_zeros([int(n) for n in m["release"].split(".")])
    pre = m["pre"]
    key = (release, 0, _label_key(pre, True)) if pre else (release, 1, ())
    return Parsed("nuget", text, key, release, pre is not None)


def _pep440(text: str) -> Parsed | None:
    try:
        v = Version(text)
    except InvalidVersion:
        return None
    return Parsed("pep440", text, v, _strip_zeros(v.release), v.is_prerelease)


# ---- RubyGems (Gem::Version) ----------------------------------------------------------

_GEM = re.compile(r"[0-9]+(?:\.[0-9a-zA-Z]+)*(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?")
_GEM_SEGMENT = re.compile(r"[0-9]+|[a-z]+", re.IGNORECASE)


def _gem(text: str) -> Parsed | None:
    if not _GEM.fullmatch(text):
        return None
    # Gem::Version reads "1.0-rc1" as "1.0.pre.rc1"
    segments: list[int | str] = [
        int(s) if s.isdigit() else s for s in _GEM_SEGMENT.findall(text.replace("-", ".pre."))
    ]
    release: list[int] = []
    for s in segments:
        if isinstance(s, str):
            break
        release.append(s)
    pre = any(isinstance(s, str) for s in segments)
    return Parsed("rubygems", text, tuple(segments), _strip_zeros(release), pre)


def _gem_cmp(a: tuple[int | str, ...], b: tuple[int | str, ...]) -> int:
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else 0
        y = b[i] if i < len(b) else 0
        if x == y:
            continue
        if isinstance(x, str) and isinstance(y, int):
            return -1
        if isinstance(x, int) and isinstance(y, str):
            return 1
        return -1 if x < y else 1  # type: ignore[operator]  # same types here
    return 0


_MAVEN_OK = re.compile(r"[0-9A-Za-z][0-9A-Za-z._+-]*")


def _maven(text: str) -> Parsed | None:
    if not _MAVEN_OK.fullmatch(text):
        return None
    tree = maven_tree(text)
    release: list[int] = []
    for item in tree:
        if not isinstance(item, int):
            break
        release.append(item)
    return Parsed("maven", text, tree, _strip_zeros(release), maven_prerelease(tree))


_PARSERS: dict[Scheme, Callable[[str], Parsed | None]] = {
    "semver": _semver,
    "pep440": _pep440,
    "maven": _maven,
    "nuget": _nuget,
    "rubygems": _gem,
}
