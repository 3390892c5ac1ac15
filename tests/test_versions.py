"""Version ordering per format: the orders real package managers use, never string order."""

from __future__ import annotations

import itertools
import random

import pytest

from bulkops.model import FORMATS
from bulkops.selection.versions import compare, is_prerelease, order, parse, sort_versions


def _ascending(fmt: str, versions: list[str]) -> None:
    for low, high in itertools.combinations(versions, 2):
        a, b = parse(fmt, low), parse(fmt, high)
        assert a is not None, low
        assert b is not None, high
        assert compare(a, b) == -1, f"{fmt}: expected {low} < {high}"
        assert compare(b, a) == 1, f"{fmt}: expected {high} > {low}"
    shuffled = versions[:]
    random.Random(7).shuffle(shuffled)
    assert sort_versions(fmt, shuffled) == versions


@pytest.mark.parametrize("fmt", FORMATS)
def test_ten_sorts_above_nine_in_every_format(fmt: str) -> None:
    _ascending(fmt, ["1.0", "2.0", "9.0", "10.0", "11.0", "100.0"])


@pytest.mark.parametrize("fmt", FORMATS)
def test_numeric_segments_compare_numerically_at_every_position(fmt: str) -> None:
    _ascending(fmt, ["1.2.3", "1.2.10", "1.9.0", "1.10.0", "1.10.2"])


SEMVER = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "2.0.0-rc.1",
    "2.0.0",
    "10.0.0",
]


@pytest.mark.parametrize("fmt", ["npm", "cargo", "swift", "generic"])
def test_semver_formats_follow_the_semver_precedence_list(fmt: str) -> None:
    _ascending(fmt, SEMVER)


def test_semver_build_metadata_does_not_change_the_order() -> None:
    a, b, c = (parse("npm", v) for v in ("1.0.0+build.1", "1.0.0+build.9", "1.0.0"))
    assert a is not None and b is not None and c is not None
    assert compare(a, b) == 0
    assert compare(a, c) == 0
    assert not a.prerelease


def test_equal_versions_are_ordered_by_publish_rank() -> None:
    items = [("1.0.0+b", 5), ("1.0.0+a", 9), ("0.9.0", 7)]
    ordered, how = order("npm", items, lambda i: i[0], lambda i: i[1])
    assert [v for v, _ in ordered] == ["0.9.0", "1.0.0+b", "1.0.0+a"]
    assert how.by == "version"


def test_a_leading_v_and_short_versions_are_read_leniently_for_semver_formats() -> None:
    _ascending("generic", ["v1", "1.1", "v1.2.0", "2"])


PEP440 = [
    "1.0.dev1",
    "1.0a1",
    "1.0a2",
    "1.0b1",
    "1.0rc1",
    "1.0",
    "1.0.post1",
    "1.1.dev0",
    "1.1",
    "2.0",
    "10.0",
]


def test_pypi_follows_pep_440() -> None:
    _ascending("pypi", PEP440)


def test_pypi_dev_releases_are_prereleases_and_post_releases_are_not() -> None:
    assert is_prerelease("pypi", "1.0.dev1")
    assert is_prerelease("pypi", "1.0rc1")
    assert not is_prerelease("pypi", "1.0.post1")
    assert not is_prerelease("pypi", "1.0")


# Maven's own ComparableVersionTest lists (Maven 3.9 / 4).
MAVEN_QUALIFIERS = [
    "1-alpha2snapshot", "1-alpha2", "1-alpha-123", "1-beta-2", "1-beta123", "1-m2", "1-m11",
    "1-rc", "1-cr2", "1-rc123", "1-SNAPSHOT", "1", "1-sp", "1-sp2", "1-sp123", "1-abc",
    "1-def", "1-pom-1", "1-1-snapshot", "1-1", "1-2", "1-123",
]  # fmt: skip
MAVEN_NUMBERS = [
    "2.0", "2.0.a", "2-1", "2.0.2", "2.0.123", "2.1.0", "2.1-a", "2.1b", "2.1-c", "2.1-1",
    "2.1.0.1", "2.2", "2.123", "11.a2", "11.a11", "11.b2", "11.b11", "11.m2", "11.m11", "11",
    "11.a", "11b", "11c", "11m",
]  # fmt: skip
MAVEN_EQUAL = [
    ("1", "1.0"), ("1", "1.0.0"), ("1", "1-0"), ("1.0", "1.0-0"), ("1a", "1-a"),
    ("1a", "1.0.0-a"), ("1.0.0x", "1-x"), ("1ga", "1"), ("1release", "1"), ("1final", "1"),
    ("1cr", "1rc"), ("1a1", "1-alpha-1"), ("1b2", "1-beta-2"), ("1m3", "1-milestone-3"),
    ("1X", "1x"), ("1FINAL", "1"), ("1m3", "1MILESTONE3"),
]  # fmt: skip


def test_maven_qualifiers_order_alpha_beta_milestone_rc_snapshot_release_sp() -> None:
    _ascending("maven", MAVEN_QUALIFIERS)


def test_maven_numbers_and_dotted_qualifiers_order_as_maven_does() -> None:
    _ascending("maven", MAVEN_NUMBERS)


@pytest.mark.parametrize(("a", "b"), MAVEN_EQUAL)
def test_maven_spellings_of_one_version_compare_equal(a: str, b: str) -> None:
    pa, pb = parse("maven", a), parse("maven", b)
    assert pa is not None and pb is not None
    assert compare(pa, pb) == 0


def test_maven_snapshots_milestones_and_rcs_are_prereleases_and_final_sp_are_not() -> None:
    for v in ("1.0-SNAPSHOT", "2.0-M1", "1.0-RC1", "1.0-beta-2", "1.0.0-alpha"):
        assert is_prerelease("maven", v), v
    for v in ("1.0", "1.0.Final", "1.0.RELEASE", "1.0-sp1", "31.1-jre"):
        assert not is_prerelease("maven", v), v


def test_maven_typical_release_train_sorts_as_published() -> None:
    _ascending(
        "maven",
        ["1.0-M1", "1.0-RC1", "1.0-SNAPSHOT", "1.0", "1.0.1", "1.1-SNAPSHOT", "1.1", "10.0"],
    )


NUGET = [
    "1.0.0-alpha",
    "1.0.0-Beta",  # labels compare case-insensitively
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.0.1",
    "1.0.0.10",
    "1.0.1",
    "2.0",
    "10.0.0.0-preview.1",
    "10.0.0.0",
]


def test_nuget_orders_four_numbers_then_labels() -> None:
    _ascending("nuget", NUGET)


def test_nuget_labels_ignore_case_and_trailing_zero_parts_do_not_count() -> None:
    a, b = parse("nuget", "1.0.0-RC.1"), parse("nuget", "1.0.0.0-rc.1")
    assert a is not None and b is not None
    assert compare(a, b) == 0


# Gem::Version orders words lexically: alpha < beta < pre < rc.
RUBY = [
    "1.0.0.alpha",
    "1.0.0.beta1",
    "1.0.0.beta2",
    "1.0.0.pre",
    "1.0.0.rc1",
    "1.0.0",
    "1.0.1",
    "1.10",
]


def test_ruby_follows_gem_version() -> None:
    _ascending("ruby", RUBY)


def test_ruby_letters_make_prereleases_and_a_hyphen_reads_as_pre() -> None:
    assert is_prerelease("ruby", "2.0.0.rc1")
    assert is_prerelease("ruby", "2.0.0-rc1")
    assert not is_prerelease("ruby", "2.0.0")
    a, b = parse("ruby", "1.0"), parse("ruby", "1.0.0")
    assert a is not None and b is not None
    assert compare(a, b) == 0


@pytest.mark.parametrize(
    ("fmt", "pre", "release"),
    [
        ("npm", "3.0.0-rc.1", "3.0.0"),
        ("cargo", "3.0.0-alpha.2", "3.0.0"),
        ("swift", "3.0.0-beta.1", "3.0.0"),
        ("generic", "3.0.0-rc1", "3.0.0"),
        ("pypi", "3.0rc1", "3.0"),
        ("maven", "3.0-SNAPSHOT", "3.0"),
        ("nuget", "3.0.0-preview.1", "3.0.0"),
        ("ruby", "3.0.0.pre", "3.0.0"),
    ],
)
def test_prereleases_sort_below_their_release_and_above_the_previous_one(
    fmt: str, pre: str, release: str
) -> None:
    _ascending(fmt, ["2.9.9", pre, release])
    assert is_prerelease(fmt, pre)
    assert not is_prerelease(fmt, release)


def test_a_package_with_an_unreadable_version_is_ordered_by_publish_time() -> None:
    items = [("nightly-2024", 2), ("10.0.0", 0), ("9.0.0", 1)]
    ordered, how = order("npm", items, lambda i: i[0], lambda i: i[1])
    assert [v for v, _ in ordered] == ["10.0.0", "9.0.0", "nightly-2024"]
    assert how.by == "published"
    assert how.unparsed == ("nightly-2024",)


@pytest.mark.parametrize(
    ("fmt", "bad"),
    [("npm", "latest"), ("pypi", "not a version"), ("nuget", "1.2.3.4.5"), ("ruby", "abc")],
)
def test_unreadable_versions_parse_to_none_and_are_not_prereleases(fmt: str, bad: str) -> None:
    assert parse(fmt, bad) is None
    assert not is_prerelease(fmt, bad)


def test_generated_emulator_versions_all_parse_in_their_own_format() -> None:
    from bulkops.emulator.runner import EmulatorConfig, build_state

    state = build_state(EmulatorConfig(generate=(60, 400), seed=3))
    by_format: dict[str, list[str]] = {}
    for ref, version in state.versions("main"):
        by_format.setdefault(ref.format, []).append(version)
    assert set(by_format) == set(FORMATS)
    for fmt, versions in by_format.items():
        unread = [v for v in versions if parse(fmt, v) is None]
        assert not unread, (fmt, unread[:5])


def test_comparing_versions_of_two_schemes_is_refused() -> None:
    a, b = parse("npm", "1.0.0"), parse("pypi", "1.0.0")
    assert a is not None and b is not None
    with pytest.raises(ValueError, match="cannot compare"):
        compare(a, b)
