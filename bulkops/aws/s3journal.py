"""Reading an S3 journal: which objects make it up, in which order, and their lines.

The journal of a prefix is the snapshot of the highest epoch E that has one, then E's
folds in sequence order (`folds/E/S` holds E's records after the previous fold, up to S),
then E's records past the last fold. Objects of lower epochs are ignored: folded into
snapshot E by its owner, or written by a fenced run after that owner listed them.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import anyio

from bulkops.aws.s3calls import S3Calls
from bulkops.aws.s3objects import split_lines
from bulkops.aws.s3url import S3Url
from bulkops.errors import JournalCorrupt, Refused
from bulkops.journal.chunklist import CHUNKS

_SNAPSHOT = re.compile(r"journal/snapshot/(\d{10})")
_FOLD = re.compile(r"journal/folds/(\d{10})/(\d{12})")
_RECORD = re.compile(r"journal/records/(\d{10})/(\d{12})")
READ_WINDOW = 64  # record objects fetched at once


class Vanished(JournalCorrupt):
    """A listed journal object is gone: compacted meanwhile; list again and go on."""


Sequence = dict[int, list[tuple[int, str]]]


class JournalListing:
    """The journal objects under a prefix, by kind; anything else there is foreign."""

    def __init__(self, url: S3Url, keys: list[tuple[str, int]]) -> None:
        self.snapshots: dict[int, str] = {}
        self.folds: Sequence = {}
        self.records: Sequence = {}
        self.lease = False
        self.foreign: list[str] = []
        for key, _size in keys:
            rest = key[len(url.base) :]
            if rest == "journal/lease":
                self.lease = True
            elif m := _SNAPSHOT.fullmatch(rest):
                self.snapshots[int(m[1])] = key
            elif m := _FOLD.fullmatch(rest):
                self.folds.setdefault(int(m[1]), []).append((int(m[2]), key))
            elif m := _RECORD.fullmatch(rest):
                self.records.setdefault(int(m[1]), []).append((int(m[2]), key))
            elif rest.startswith("journal/"):
                self.foreign.append(key)
        for found in (*self.folds.values(), *self.records.values()):
            found.sort()

    @property
    def epochs(self) -> int:
        """The highest epoch any object names (0 for none)."""
        return max([0, *self.snapshots, *self.folds, *self.records])

    @property
    def epoch(self) -> int | None:
        """The epoch whose snapshot starts the journal (None: no journal here)."""
        return max(self.snapshots) if self.snapshots else None

    def pieces(self) -> tuple[list[str], list[str]]:
        """The objects to stream (snapshot, folds) and the record objects after them, in order."""
        epoch = self.epoch
        if epoch is None:
            return [], []
        folds = self.folds.get(epoch, [])
        folded = folds[-1][0] if folds else 0
        records = [k for seq, k in self.records.get(epoch, []) if seq > folded]
        return [self.snapshots[epoch], *(k for _, k in folds)], records

    def before(self, epoch: int) -> list[str]:
        """Every journal object of an epoch lower than `epoch`."""
        found = [k for e, k in self.snapshots.items() if e < epoch]
        for sequence in (self.folds, self.records):
            found += [k for e, keys in sequence.items() if e < epoch for _, k in keys]
        return found


def refuse_unless_empty(url: S3Url, everything: list[tuple[str, int]]) -> JournalListing:
    """The listing of a prefix a new job may start in: Refused, naming what is there, if
    it holds a job (this one or a nested one) or objects bulkops did not write. The job's
    chunk list, which a run stores just before its journal, is expected there."""
    listing = JournalListing(url, everything)
    if listing.snapshots:
        raise Refused(f"{url} already holds a bulkops job: resume it, or pick a new prefix")
    ours = url.key(CHUNKS)
    others = [k for k, _ in everything if not k.startswith(url.journal) and k != ours]
    if others or listing.foreign:
        names = ", ".join(url.url(k) for k in (listing.foreign + others)[:3])
        nested = any("/journal/snapshot/" in k for k in others)
        what = "another bulkops job" if nested else "objects bulkops did not write"
        raise Refused(f"{url} is not empty: it holds {what} ({names}); pick a new prefix")
    return listing


async def journal_lines(
    calls: S3Calls, url: S3Url, listing: JournalListing, *, streams: bool = True
) -> AsyncIterator[bytes]:
    """Every line of the journal `listing` describes (without its snapshot: `streams=False`
    skips nothing but the snapshot, for a reader that holds it already)."""
    streamed, records = listing.pieces()
    for key in streamed if streams else streamed[1:]:
        empty = True
        async for line in split_lines(calls.stream(key)):
            if not line.endswith(b"\n"):
                raise JournalCorrupt(url.url(key), 0, "the object's last line is cut")
            empty = False
            yield line
        if empty:
            raise Vanished(url.url(key), 0, "a listed journal object is gone")
    async for line in record_lines(calls, url, records):
        yield line


async def record_lines(calls: S3Calls, url: S3Url, keys: list[str]) -> AsyncIterator[bytes]:
    """The lines of record objects, in order, fetched READ_WINDOW at a time."""
    for start in range(0, len(keys), READ_WINDOW):
        window = keys[start : start + READ_WINDOW]
        bodies: list[bytes | None] = [None] * len(window)

        async def fetch(i: int, key: str, bodies: list[bytes | None] = bodies) -> None:
            found = await calls.get(key)
            if found is None:
                raise Vanished(url.url(key), 0, "a listed record is gone")
            bodies[i] = found.body

        try:
            async with anyio.create_task_group() as tg:
                for i, key in enumerate(window):
                    tg.start_soon(fetch, i, key)
        except BaseExceptionGroup as group:
            raise group.exceptions[0] if len(group.exceptions) == 1 else group from None
        for key, body in zip(window, bodies, strict=True):
            if not body or not body.endswith(b"\n"):
                raise JournalCorrupt(url.url(key), 0, "a record object is empty or cut")
            for line in body.splitlines(keepends=True):
                yield line
