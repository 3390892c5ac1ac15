"""The journal's on-disk format: its records, how they are encoded, read and checked.

Records, one JSON object per line (compact, UTF-8, each line ending in "\\n"):

    {"type":"header","formatVersion":2,"jobId":…,"createdAt":…,"bulkopsVersion":…,
     "spec":{JobSpec.to_dict()},"manifest":{"path","format","sha256"},
     "chunkList":{"file","sha256"},"totals":{"packages","versions","chunks"}}
                                                                         first line, once
    {"type":"chunk","at":…,"chunk":id,"ref":{"format","namespace","package"},"attempt":n,
     "complete":bool,"successfulVersions":{…},"failedVersions":{…},"settled":{v: reason},
     "retry":[v…],"error":{…}|null[,"revisions":{v: revision}]
     [,"deletedPackage":{…}][,"packageDone":true]}
    {"type":"dispatch","at":…,"chunks":[id…]}         chunks about to be sent the first time
    {"type":"event","at":…,"kind":"run_started","data":{…}}

A chunk record is one finished attempt (a `ChunkOutcome`); `complete` is true when it
leaves every version of the chunk final. An attempt whose whole call failed carries
`error` (preferably `{"errorCode","errorMessage"}`) and lists its versions in `retry`.
`revisions` keeps the pinned revisions of the versions the attempt did not finish, so a
manifest of failures keeps their guard. Optional keys are written only when set.
`chunkList` names the job's chunk list (`bulkops.journal.chunklist`), a file beside the journal.
Format 2 added the `dispatch` record and the chunk list; format 1 journals are refused.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson

from bulkops import __version__
from bulkops.errors import JournalCorrupt, NotAJournal
from bulkops.journal.store import JournalStore
from bulkops.model import ChunkOutcome, JobSpec

FORMAT_VERSION = 2
# How every journal starts (`encode` keeps the key order): a first line that does not, nor
# could be the torn start of it, is some other file, not a damaged journal.
HEADER_START = b'{"type":"header"'

# Field types a chunk record must have; checked on every read (cheap, and names the line).
_CHUNK_FIELDS: dict[str, type | tuple[type, ...]] = {
    "chunk": str,
    "ref": dict,
    "attempt": int,
    "complete": bool,
    "successfulVersions": dict,
    "failedVersions": dict,
    "settled": dict,
    "retry": list,
    "error": (dict, type(None)),
}


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record) + b"\n"


@dataclass(frozen=True, slots=True)
class JournalHeader:
    """The journal's first record: everything a resume needs to know about the job."""

    spec: JobSpec
    job_id: str
    created_at: str
    manifest_path: str | None = None
    manifest_format: str | None = None
    manifest_sha256: str | None = None
    chunk_list: str | None = None  # the chunk list's file name, in the journal's directory
    chunk_list_sha256: str | None = None
    packages: int = 0
    versions: int = 0
    chunks: int = 0
    bulkops_version: str = __version__
    format_version: int = FORMAT_VERSION

    @classmethod
    def new(cls, spec: JobSpec, **fields: Any) -> JournalHeader:
        """A header for a new job: fresh job id, created now, this bulkops version."""
        return cls(spec=spec, job_id=uuid.uuid4().hex, created_at=now(), **fields)

    def to_dict(self) -> dict[str, Any]:
        return {
            "formatVersion": self.format_version,
            "jobId": self.job_id,
            "createdAt": self.created_at,
            "bulkopsVersion": self.bulkops_version,
            "spec": self.spec.to_dict(),
            "manifest": {
                "path": self.manifest_path,
                "format": self.manifest_format,
                "sha256": self.manifest_sha256,
            },
            "chunkList": {"file": self.chunk_list, "sha256": self.chunk_list_sha256},
            "totals": {"packages": self.packages, "versions": self.versions, "chunks": self.chunks},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JournalHeader:
        manifest, totals = d.get("manifest") or {}, d.get("totals") or {}
        chunk_list = d.get("chunkList") or {}
        name = chunk_list.get("file")
        if name is not None and (
            not isinstance(name, str) or "/" in name or name in ("", ".", "..")
        ):
            raise ValueError(f"chunk list {name!r} is not a file name")
        return cls(
            spec=JobSpec.from_dict(d["spec"]),
            job_id=str(d["jobId"]),
            created_at=str(d["createdAt"]),
            manifest_path=manifest.get("path"),
            manifest_format=manifest.get("format"),
            manifest_sha256=manifest.get("sha256"),
            chunk_list=name,
            chunk_list_sha256=chunk_list.get("sha256"),
            packages=int(totals.get("packages", 0)),
            versions=int(totals.get("versions", 0)),
            chunks=int(totals.get("chunks", 0)),
            bulkops_version=str(d.get("bulkopsVersion", "")),
            format_version=int(d["formatVersion"]),
        )


def chunk_record(outcome: ChunkOutcome, complete: bool, at: str) -> dict[str, Any]:
    """The journal record of one finished attempt."""
    record: dict[str, Any] = {
        "type": "chunk",
        "at": at,
        "chunk": outcome.chunk_id,
        "ref": outcome.ref.to_dict(),
        "attempt": outcome.attempt,
        "complete": complete,
        "successfulVersions": outcome.successful,
        "failedVersions": outcome.failed,
        "settled": outcome.settled,
        "retry": list(outcome.retry),
        "error": outcome.error,
    }
    if outcome.deleted_package is not None:
        record["deletedPackage"] = outcome.deleted_package
    if outcome.package_done:
        record["packageDone"] = True
    done = outcome.successful.keys() | outcome.settled.keys()
    if pins := {v: r for v, r in outcome.revisions.items() if v not in done}:
        record["revisions"] = pins
    return record


def _check(record: Any, line: int, where: str) -> dict[str, Any]:
    """`record` if it is a well-formed record for `line`; JournalCorrupt otherwise."""
    if not isinstance(record, dict):
        raise JournalCorrupt(where, line, "record is not a JSON object")
    kind = record.get("type")
    if line == 1:
        if kind != "header":
            raise JournalCorrupt(where, 1, "missing header: not a bulkops journal")
        if record.get("formatVersion") != FORMAT_VERSION:
            raise JournalCorrupt(
                where,
                1,
                f"unknown format version {record.get('formatVersion')!r}"
                f" (bulkops {__version__} reads {FORMAT_VERSION})",
            )
        try:
            JournalHeader.from_dict(record)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise JournalCorrupt(where, 1, f"bad header: {exc!r}") from exc
    elif kind == "chunk":
        for name, expected in _CHUNK_FIELDS.items():
            if not isinstance(record.get(name), expected):
                raise JournalCorrupt(where, line, f"chunk record without a valid {name!r}")
        if not isinstance(record.get("revisions", {}), dict):
            raise JournalCorrupt(where, line, "chunk record with invalid 'revisions'")
    elif kind == "event":
        if not isinstance(record.get("kind"), str):
            raise JournalCorrupt(where, line, "event record without a kind")
    elif kind == "dispatch":
        chunks = record.get("chunks")
        if not isinstance(chunks, list) or not all(isinstance(c, str) for c in chunks):
            raise JournalCorrupt(where, line, "dispatch record without a list of chunk ids")
    else:
        raise JournalCorrupt(where, line, f"unexpected record type {kind!r}")
    return record


class RecordReader:
    """Streams a store's records; remembers how much of it is intact and what was torn."""

    def __init__(self, store: JournalStore) -> None:
        self.store = store
        self.valid_size = 0
        self.valid_lines = 0
        self.torn_line: int | None = None
        self.lines = 0

    async def __aiter__(self) -> AsyncGenerator[dict[str, Any], None]:
        where = self.store.describe()
        bad: tuple[int, str] | None = None
        async with closing_iter(self.store.read()) as lines:
            async for raw in lines:
                self.lines += 1
                if self.lines == 1 and not (
                    raw.startswith(HEADER_START) or HEADER_START.startswith(raw.rstrip(b"\n"))
                ):
                    raise NotAJournal(where, f"its first line is no journal header: {raw[:40]!r}")
                if bad is not None:  # a damaged line with more after it is not a torn tail
                    raise JournalCorrupt(where, *bad)
                if not raw.endswith(b"\n"):
                    bad = (self.lines, "incomplete last line")
                    continue
                try:
                    obj = orjson.loads(raw)
                except ValueError as exc:
                    bad = (self.lines, f"unparsable record: {exc}")
                    continue
                record = _check(obj, self.lines, where)
                self.valid_size += len(raw)
                self.valid_lines += 1
                yield record
        if bad is not None:
            self.torn_line = bad[0]
        if self.lines == 0:
            raise NotAJournal(where, "it is empty")
        if self.valid_size == 0:
            raise JournalCorrupt(where, 1, "missing header: the journal's first line is torn")


def iter_records(store: JournalStore) -> AsyncGenerator[dict[str, Any], None]:
    """Every intact record, header first; a torn last line is skipped, other damage raises."""
    return RecordReader(store).__aiter__()


async def read_header(store: JournalStore) -> JournalHeader:
    """The journal's header, reading only its first line."""
    async with aclosing(iter_records(store)) as records:
        return JournalHeader.from_dict(await anext(records))


T = TypeVar("T")


@asynccontextmanager
async def closing_iter(iterator: AsyncIterator[T]) -> AsyncGenerator[AsyncIterator[T], None]:
    """`iterator`, closed on exit if it can be (a store's streams are async generators)."""
    try:
        yield iterator
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()
