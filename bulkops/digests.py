"""Flat 64-bit digest tables: a manifest's unique targets per package, and its repeated rows."""

from __future__ import annotations

import hashlib
import zlib
from array import array
from collections.abc import Iterator
from typing import Literal

from bulkops.errors import ManifestError
from bulkops.model import PackageRef, Target


class DigestTable:
    """A hash table from nonzero 64-bit digests to unsigned ints, in two flat arrays.

    A set of 64-bit Python ints costs ~70 bytes an entry; this costs 16 bytes a slot
    (12 with 32-bit values) at most 2/3 full: ~34 MB at 1M keys, and no per-key objects.
    """

    def __init__(self, value_type: Literal["I", "Q"] = "Q") -> None:
        self._value_type = value_type
        self._len = 0
        self._alloc(1 << 10)

    def _alloc(self, slots: int) -> None:
        # repeating a one-item array allocates once, with no temporary bytes
        self._keys = array("Q", [0]) * slots
        self._values = array(self._value_type, [0]) * slots
        self._mask = slots - 1
        self._limit = slots * 2 // 3  # linear probing stays short below 2/3 full

    def __len__(self) -> int:
        return self._len

    def _find(self, key: int) -> int:
        """The slot holding `key`, or the free slot where it belongs."""
        keys, mask = self._keys, self._mask
        i = key & mask
        while (k := keys[i]) != key and k:
            i = (i + 1) & mask
        return i

    def setdefault(self, key: int, value: int) -> int | None:
        """The value stored under `key`; stores `value` and returns None if there was none."""
        i = self._find(key)
        if self._keys[i]:
            return self._values[i]
        self._keys[i], self._values[i] = key, value
        self._len += 1
        if self._len > self._limit:
            old = zip(self._keys, self._values, strict=True)
            self._alloc(len(self._keys) * 2)
            for k, v in old:
                if k:
                    j = self._find(k)
                    self._keys[j], self._values[j] = k, v
        return None

    def increment(self, key: int) -> None:
        old = self.setdefault(key, 1)
        if old is not None:
            self._values[self._find(key)] = old + 1

    def get(self, key: int) -> int:
        i = self._find(key)
        return self._values[i] if self._keys[i] else 0

    def values(self) -> Iterator[int]:
        return (v for k, v in zip(self._keys, self._values, strict=True) if k)


def digest(*parts: str) -> int:
    """A nonzero 64-bit digest of `parts`, the key of a DigestTable."""
    # "\n" cannot occur inside a namespace, name or version (the API forbids whitespace)
    d = hashlib.blake2b("\n".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(d, "little") or 1  # 0 marks an empty slot


class PackageSizes:
    """How many unique targets each package has: lets the planner close a package early."""

    def __init__(self) -> None:
        self._table = DigestTable("I")
        self._last: tuple[PackageRef | None, int] = (None, 0)

    def add(self, ref: PackageRef) -> None:
        last, key = self._last
        if ref is not last:  # consecutive rows of a package share one ref: digest it once
            key = digest(ref.format, ref.namespace or "", ref.package)
            self._last = (ref, key)
        self._table.increment(key)

    def get(self, ref: PackageRef) -> int:
        """The package's target count, 0 if the manifest does not name it."""
        return self._table.get(digest(ref.format, ref.namespace or "", ref.package))

    def __len__(self) -> int:
        return len(self._table)

    def chunks(self, chunk_size: int) -> int:
        """Calls the job needs: ceil(n / chunk_size) per package."""
        return sum(-(-n // chunk_size) for n in self._table.values())


class Dedup:
    """Collapses repeated targets (the first wins) and catches conflicting revisions."""

    def __init__(self, path: str) -> None:
        self.path = path
        # digest of (format, namespace, package, version) -> first line << 32 | revision digest
        self._seen = DigestTable("Q")

    def first(self, line: int, t: Target) -> bool:
        """True for a target's first row, False for a repeat; ManifestError on a conflict."""
        key = digest(t.ref.format, t.ref.namespace or "", t.ref.package, t.version or "")
        # a 32-bit fingerprint is enough to tell two revisions of one version apart
        revision = 0 if t.revision is None else zlib.crc32(t.revision.encode()) or 1
        earlier = self._seen.setdefault(key, line << 32 | revision)
        if earlier is None:
            return True
        if earlier & 0xFFFFFFFF != revision:
            what = f"version {t.version!r} of {t.ref}"
            reason = f"{what} is also on line {earlier >> 32} with a different revision"
            raise ManifestError(self.path, line, "revision", reason)
        return False
