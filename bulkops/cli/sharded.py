"""A sharded job's worker from start to exit: claim the job, then run, resume or wait for a shard.

Every worker runs the same command. It validates and chunks the manifest, claims the job
(`jobs.sharded.claim_job`: another manifest, spec or --shards exits 2 before any call),
and then runs its own shard: a new shard job, a resume of one it or a predecessor left,
or, while another live worker holds the shard, waits without sending a call.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import partial
from typing import Any, NoReturn

import anyio
import structlog

from bulkops.cli.exits import fail, finish, notify, run_ending
from bulkops.cli.job import job_from, rails_from
from bulkops.engine.types import RunResult, Stats, StopSignal
from bulkops.errors import EXIT_USAGE, BulkopsError, JournalBusy, NothingToDo, Refused
from bulkops.jobs.guarded import check_job_caps, run_new_guarded
from bulkops.jobs.job import Job
from bulkops.jobs.prepare import header_for, prepare
from bulkops.jobs.rails import Rails
from bulkops.jobs.sharded import (
    Descriptor,
    claim_job,
    read_descriptor,
    shard_header,
    shard_location,
    wait_for_holder,
)
from bulkops.jobs.shards import Shard, resolve_shard, shard_rate
from bulkops.jobs.start import run_new
from bulkops.jobs.supervisor import supervise
from bulkops.journal.chunklist import CHUNKS
from bulkops.journal.journal import JournalHeader
from bulkops.journal.location import Checkpoint, is_remote, open_store, spool_dir
from bulkops.manifest.scan import ManifestSummary
from bulkops.model import JobSpec, Operation
from bulkops.report.stream import totals_of

log = structlog.get_logger("bulkops.cli")


def shard_from(kw: dict[str, Any], checkpoint: Checkpoint | None) -> Shard | None:
    """This worker's shard from the options and the environment; exit 2 when inconsistent."""
    try:
        return resolve_shard(
            kw.get("shards"),
            kw.get("shard_index"),
            os.environ,
            remote=checkpoint is not None and is_remote(checkpoint),
        )
    except BulkopsError as exc:
        fail(str(exc), exc.exit_code)


def shard_job(kw: dict[str, Any], spec: JobSpec, location: Checkpoint, shard: Shard) -> Job:
    """The shard's job: its own checkpoint, and each scope's rate divided among the shards."""
    job = job_from(kw, spec, location)
    rate, copy_rate = job.settings.rate, job.settings.copy_rate
    try:  # the scope the operation sends to must keep a share a shard can pace
        if spec.operation is Operation.COPY:
            shard_rate(copy_rate, shard, "copy")
        else:
            shard_rate(rate, shard, "write")
    except BulkopsError as exc:
        fail(str(exc), exc.exit_code)
    settings = replace(job.settings, rate=rate / shard.count, copy_rate=copy_rate / shard.count)
    return replace(job, settings=settings)


def start_shard(kw: dict[str, Any], spec: JobSpec, prefix: Checkpoint, shard: Shard) -> NoReturn:
    """Claim the sharded job at `prefix`, then run this worker's shard (see the module doc)."""
    from bulkops.cli.runs import nothing_to_do, print_plan

    if not kw["execute"]:
        fail("--shards runs a job: add --execute (plan it without --shards first)", EXIT_USAGE)
    location = shard_location(prefix, shard)
    job = shard_job(kw, spec, location, shard)
    job_store = open_store(prefix)

    async def claim(sha256: str, summary: ManifestSummary) -> None:
        versions = summary.versions or summary.packages
        mine = Descriptor(shard.count, spec, sha256, summary.chunks, versions, summary.packages)
        await claim_job(job_store, mine)

    try:
        prepared = anyio.run(
            partial(
                prepare,
                spec,
                kw["manifest"],
                manifest_format=kw["manifest_format"],
                spool_dir=spool_dir(prefix),
                checkpoint=prefix,
                claim=claim,
            ),
            backend="asyncio",
        )
    except NothingToDo as exc:
        nothing_to_do(exc, kw)
    except BulkopsError as exc:
        fail(str(exc), exc.exit_code)
    if kw.get("output") != "json":
        print_plan(prepared.summary, spec, kw)
    try:
        check_job_caps(rails_from(kw), spec, prepared.summary)
        exists = anyio.run(open_store(location).exists, backend="asyncio")
    except BulkopsError as exc:
        fail(str(exc), exc.exit_code)
    log.info("shard_starting", shard=shard.index, shards=shard.count, resume=exists)
    if exists:
        continue_shard(job, kw)
    job_header = header_for(prepared)
    new_shard(job, job_header, kw, lambda h: partial(run_new_guarded, job, prepared, h))


def new_shard(
    job: Job,
    job_header: JournalHeader,
    kw: dict[str, Any],
    runner: Callable[[JournalHeader], Callable[[StopSignal, Stats], Awaitable[RunResult]]],
) -> NoReturn:
    """Write the shard's chunks and run it from the start; a shard another worker created
    first meanwhile is continued instead."""
    shard_store = open_store(job.checkpoint)
    prefix = str(job.checkpoint).rsplit("/", 1)[0]
    try:
        header = anyio.run(
            shard_header, open_store(prefix), shard_store, _shard_of(job), job_header,
            backend="asyncio",
        )  # fmt: skip
    except BulkopsError as exc:
        fail(str(exc), exc.exit_code)
    structlog.contextvars.bind_contextvars(
        job_id=header.job_id, operation=header.spec.operation.value
    )
    try:
        result = supervise(runner(header), job.supervision)
    except (JournalBusy, Refused) as exc:
        if anyio.run(shard_store.exists, backend="asyncio"):  # another worker was first
            continue_shard(job, kw)
        fail(str(exc), exc.exit_code)
    except BulkopsError as exc:
        fail(str(exc), exc.exit_code)
    sys.exit(finish(job.checkpoint, result, kw.get("output") or "text"))


def _shard_of(job: Job) -> Shard:
    """The shard a shard job's checkpoint (`PREFIX/shard-K-of-N`) names."""
    _, k, _, n = str(job.checkpoint).rsplit("/", 1)[1].split("-")
    return Shard(int(k), int(n))


def continue_shard(job: Job, kw: dict[str, Any]) -> NoReturn:
    """Resume the shard, or, while another live worker holds it, wait (sending nothing)
    and exit as its shard ended: 0 done, 3 permanent failures, 75 unfinished."""
    from bulkops.cli.runs import checkpoint_header, resume

    store = open_store(job.checkpoint)
    poll = max(1.0, min(15.0, float(kw.get("lease_ttl") or 120.0) / 4))
    holder = getattr(store, "holder", None)
    released = False
    if holder is not None:
        try:
            released = anyio.run(wait_for_holder, holder, poll, backend="asyncio")
        except BulkopsError as exc:
            fail(str(exc), exc.exit_code)
    if not released:  # nobody holds it (or its holder died): this worker carries it on
        resume(job.checkpoint, checkpoint_header(job.checkpoint), kw, job=job)
    try:
        totals = anyio.run(totals_of, store, backend="asyncio")
    except BulkopsError as exc:
        fail(str(exc), exc.exit_code)
    ending = run_ending(
        RunResult(Stats()), totals, job.checkpoint, f"bulkops resume {job.checkpoint}"
    )
    notify(
        "shard_ended_elsewhere",
        f"shard {job.checkpoint} was run by another worker; it ended with exit {ending.code}",
        checkpoint=str(job.checkpoint),
        exit_code=ending.code,
    )
    sys.exit(ending.code)


def shard_resume(kw: dict[str, Any], prefix: Checkpoint) -> NoReturn:
    """`bulkops resume PREFIX --shard-index K`: finish shard K of the job at PREFIX."""
    from bulkops.cli.runs import stored

    try:
        descriptor = anyio.run(read_descriptor, open_store(prefix), backend="asyncio")
    except BulkopsError as exc:
        fail(str(exc), exc.exit_code)
    if descriptor is None:
        fail(f"{prefix} holds no sharded job (no shards.json)", EXIT_USAGE)
    if kw.get("shards") not in (None, descriptor.shards):
        fail(f"{prefix} has {descriptor.shards} shards, not --shards {kw['shards']}", EXIT_USAGE)
    shard = shard_from({**kw, "shards": descriptor.shards}, prefix)
    assert shard is not None
    location = shard_location(prefix, shard)
    job = shard_job(kw, descriptor.spec, location, shard)
    if not stored(location):  # never started: its chunks come from the job's chunk list
        job_header = JournalHeader.new(
            descriptor.spec,
            chunk_list=CHUNKS,
            chunk_list_sha256=descriptor.chunk_list_sha256,
            chunks=descriptor.chunks,
        )
        new_shard(replace(job, rails=Rails()), job_header, kw, lambda h: partial(run_new, job, h))
    continue_shard(job, kw)
