"""Maven's version order (ComparableVersion of Maven 3.9 and 4, combination items included).

    1-alpha2 < 1-beta-2 < 1-m11 < 1-rc < 1-cr2 < 1-SNAPSHOT < 1 = 1.0 = 1-ga < 1-sp < 1-abc < 1-1

A version is read into a tree of items (numbers, words, word+number combinations and
sublists that "-" or a digit/letter switch starts) and trees compare item by item, as
`org.apache.maven.artifact.versioning.ComparableVersion` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

_QUALIFIERS = ("alpha", "beta", "milestone", "rc", "snapshot", "", "sp")
_RELEASE_NAMES = frozenset({"ga", "final", "release"})
_RELEASE_INDEX = str(_QUALIFIERS.index(""))
_SHORT = {"a": "alpha", "b": "beta", "m": "milestone"}


@dataclass(frozen=True, slots=True)
class _Word:
    """A qualifier; `rank` orders it: "0".."6" for the known ones, "7-<word>" after them."""

    value: str
    rank: str


@dataclass(frozen=True, slots=True)
class _Combo:
    """A word glued to a number ("rc1", "alpha-2"): ordered by the word, then the number."""

    word: _Word
    number: int


# An item is a number, a word, a combination or a sublist (which a "-" or a switch starts).
_Item: TypeAlias = "int | _Word | _Combo | list[_Item]"


def _word(value: str, followed_by_digit: bool = False) -> _Word:
    if followed_by_digit and len(value) == 1:
        value = _SHORT.get(value, value)  # a1 = alpha-1, b1 = beta-1, m1 = milestone-1
    value = "rc" if value == "cr" else value
    if value in _RELEASE_NAMES:
        return _Word(value, _RELEASE_INDEX)
    if value in _QUALIFIERS:
        return _Word(value, str(_QUALIFIERS.index(value)))
    return _Word(value, f"{len(_QUALIFIERS)}-{value}")


def _maven_item(combination: bool, digit: bool, token: str) -> _Item:
    if combination:
        token = token.replace("-", "")
        cut = next(i for i, c in enumerate(token) if c.isdigit())
        return _Combo(_word(token[:cut], True), int(token[cut:]))
    return int(token) if digit else _word(token)


def _is_null(item: _Item) -> bool:
    if isinstance(item, int):
        return item == 0
    if isinstance(item, _Word):
        return item.value == ""
    if isinstance(item, _Combo):
        return False
    return not item


def _normalize(items: list[_Item]) -> None:
    """Drop null items (0, "", []) that Maven drops: at the end, before a word or a sublist
    that starts with a word."""
    for i in range(len(items) - 1, -1, -1):
        if not _is_null(items[i]):
            continue
        after = items[i + 1] if i + 1 < len(items) else None
        word_list = isinstance(after, list) and after and isinstance(after[0], _Word | _Combo)
        if after is None or isinstance(after, _Word) or word_list:
            del items[i]


def maven_tree(text: str) -> list[_Item]:
    """The item tree of a Maven version string."""
    text = text.lower()
    root: list[_Item] = []
    current = root
    stack = [root]
    digit = combination = False
    start = 0

    def sublist() -> None:
        nonlocal current
        new: list[_Item] = []
        current.append(new)
        current = new
        stack.append(new)

    for i, c in enumerate(text):
        if c == ".":
            current.append(0 if i == start else _maven_item(combination, digit, text[start:i]))
            combination = False
            start = i + 1
        elif c == "-":
            if i == start:
                current.append(0)
            else:
                if not digit and i != len(text) - 1 and text[i + 1].isdigit():
                    combination = True  # "rc-1" reads as "rc1"
                    continue
                current.append(_maven_item(combination, digit, text[start:i]))
            start = i + 1
            if current:
                sublist()
            combination = False
        elif c.isdigit():
            if not digit and i > start:  # "rc1": one combination item
                combination = True
                if current:
                    sublist()
            digit = True
        else:
            if digit and i > start:  # "1rc": the number, then a sublist for the word
                current.append(_maven_item(combination, True, text[start:i]))
                start = i
                sublist()
                combination = False
            digit = False
    if len(text) > start:
        if not digit and current:  # "1.0.0.X1" < "1.0.0-X2": a dotted word reads as "-X"
            sublist()
        current.append(_maven_item(combination, digit, text[start:]))
    for items in reversed(stack):
        _normalize(items)
    return root


def _str_cmp(a: str, b: str) -> int:
    return (a > b) - (a < b)


def _maven_item_cmp(a: _Item, b: _Item | None) -> int:
    """Maven's Item.compareTo, `b` None meaning "nothing at this place"."""
    if isinstance(a, int):
        if b is None:
            return 0 if a == 0 else 1
        return (a > b) - (a < b) if isinstance(b, int) else 1
    if isinstance(a, _Word):
        if b is None:
            return _str_cmp(a.rank, _RELEASE_INDEX)
        if isinstance(b, _Word):
            return _str_cmp(a.rank, b.rank)
        if isinstance(b, _Combo):
            return _str_cmp(a.rank, b.word.rank) or -1  # "rc" < "rc1"
        return -1
    if isinstance(a, _Combo):
        if b is None:
            return _str_cmp(a.word.rank, _RELEASE_INDEX)
        if isinstance(b, _Word):
            return _str_cmp(a.word.rank, b.rank) or 1
        if isinstance(b, _Combo):
            return _str_cmp(a.word.rank, b.word.rank) or (a.number > b.number) - (
                a.number < b.number
            )
        return -1
    if b is None:
        return next((r for item in a if (r := _maven_item_cmp(item, None))), 0)
    if isinstance(b, int):
        return -1
    if isinstance(b, _Word | _Combo):
        return 1
    return maven_cmp(a, b)


def maven_cmp(a: list[_Item], b: list[_Item]) -> int:
    """-1, 0 or 1 as tree `a` sorts below, level with or above tree `b`."""
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else None
        y = b[i] if i < len(b) else None
        if x is None:
            r = 0 if y is None else -_maven_item_cmp(y, None)
        else:
            r = _maven_item_cmp(x, y)
        if r:
            return r
    return 0


def maven_prerelease(items: list[_Item]) -> bool:
    """Whether a tree holds a qualifier below release (alpha, beta, milestone, rc, snapshot)."""
    for item in items:
        word = item.word if isinstance(item, _Combo) else item
        if isinstance(word, _Word) and word.rank < _RELEASE_INDEX:
            return True
        if isinstance(item, list) and maven_prerelease(item):
            return True
    return False
