"""A journal's packages streamed from its store, in two passes, memory bounded by packages open."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

from bulkops.journal.records import JournalHeader, iter_records
from bulkops.journal.store import JournalStore
from bulkops.model import Operation, PackageRef
from bulkops.report.merge import Merger, PackageReport, Totals, _ref


async def last_records_of(store: JournalStore) -> tuple[JournalHeader, dict[PackageRef, int], int]:
    """First pass: the header, each package's last record number, and the records read."""
    last: dict[PackageRef, int] = {}
    count = 0
    async with aclosing(iter_records(store)) as records:
        header = JournalHeader.from_dict(await anext(records))
        count = 1
        async for record in records:
            if record["type"] == "chunk":
                last[_ref(record["ref"])] = count - 1
            count += 1
    return header, last, count


async def packages_of(
    store: JournalStore, last: dict[PackageRef, int] | None = None, count: int | None = None
) -> AsyncGenerator[PackageReport, None]:
    """Second pass (or the only one): each package's report, yielded as `merge` yields it.

    With `last` and `count` from `last_records_of`, each package is yielded after its last
    record and forgotten, and records appended since the first pass are left out.
    """
    async with aclosing(iter_records(store)) as records:
        merger = Merger(await anext(records), last)
        i = 0
        async for record in records:
            if count is not None and i + 1 >= count:
                break
            if (pkg := merger.feed(i, record)) is not None:
                yield pkg
            i += 1
    for pkg in merger.open.values():
        yield pkg


async def totals_of(store: JournalStore) -> Totals:
    """A journal's totals alone, as its report would end with them."""
    header, last, count = await last_records_of(store)
    per_package = header.spec.operation is Operation.DELETE_PACKAGES
    totals = Totals(expected=(header.packages if per_package else header.versions) or None)
    async with aclosing(packages_of(store, last, count)) as packages:
        async for pkg in packages:
            totals.add(pkg)
    return totals
