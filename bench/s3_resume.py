"""Resume from an S3 checkpoint at 1,000,000 versions, on moto's server: acquire + read time.

A finished job of 10,000 chunk records (100 versions each, ~90 MB of journal) is laid
out under one prefix as a run leaves it, in three shapes, then resumed by a fresh store
(take the lease, fold everything into one snapshot, read every line), and resumed once
more (the snapshot only):

    unfolded: every record in its own object, 10,000 objects (what a run would leave
              without folding as it goes: the case folding exists for)
    folded:   every record in its own object, folded every 1,000 as the store does it:
              10 fold objects (a slow run: one chunk per PUT, 1.4 hours at 2 PUTs/s)
    group:    50 records per object, 200 objects (2 PUTs/s at 100 chunk calls/s, 100 s)

    python -m bench.s3_resume                  # 10,000 x 100 versions, both shapes
    python -m bench.s3_resume --chunks 1000    # a quick look
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

import aioboto3
import anyio
import boto3
import structlog
from moto.server import ThreadedMotoServer

from bulkops.aws.s3store import S3Store
from bulkops.aws.s3url import parse_s3_url
from bulkops.journal.records import JournalHeader, chunk_record, encode, now
from bulkops.model import ChunkOutcome, JobSpec, Operation, PackageRef

KEYS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}


def chunk_lines(chunks: int, versions: int) -> list[bytes]:
    at = now()
    lines = []
    for i in range(chunks):
        ref = PackageRef("npm", "scope", f"package-{i // 10}")
        ok = {
            f"{i % 10}.{k}.0": {"revision": f"REV{i:08}{k:033}", "status": "Deleted"}
            for k in range(versions)
        }
        lines.append(encode(chunk_record(ChunkOutcome(f"{i:020x}", ref, 1, ok), True, at)))
    return lines


async def lay_out(
    endpoint: str, url: str, header: bytes, groups: list[bytes], fold_every: int
) -> None:
    """The job as a run leaves it: snapshot 1 (the header), folds and records of epoch 1."""
    session = aioboto3.Session(region_name="us-east-1", **KEYS)
    async with S3Store.open(url, session, endpoint_url=endpoint) as store:
        await store.create(header)
    where = parse_s3_url(url)
    limit = anyio.Semaphore(32)
    async with session.client("s3", endpoint_url=endpoint) as client:

        async def put(key: str, body: bytes) -> None:
            async with limit:
                await client.put_object(Bucket=where.bucket, Key=key, Body=body)

        async with anyio.create_task_group() as tg:
            for start in range(0, len(groups), fold_every):
                end = start + fold_every
                if end <= len(groups):
                    tg.start_soon(put, where.fold_key(1, end), b"".join(groups[start:end]))
                    continue
                for seq in range(start + 1, len(groups) + 1):
                    tg.start_soon(put, where.record_key(1, seq), groups[seq - 1])


async def resume(endpoint: str, url: str) -> tuple[float, int, int]:
    """Seconds to open, acquire and read every line; lines and bytes read."""
    session = aioboto3.Session(region_name="us-east-1", **KEYS)
    started = time.perf_counter()
    count = size = 0
    async with S3Store.open(url, session, endpoint_url=endpoint) as store:
        await store.acquire()
        async for line in store.read():
            count += 1
            size += len(line)
    return time.perf_counter() - started, count, size


async def run(endpoint: str, bucket: str, chunks: int, versions: int) -> None:
    spec = JobSpec(Operation.DELETE, "dom", "repo")
    head = JournalHeader.new(spec, packages=chunks // 10, versions=chunks * versions, chunks=chunks)
    header = encode(head.to_dict())
    lines = chunk_lines(chunks, versions)
    print(f"{chunks:,} chunk records x {versions} versions, {sum(map(len, lines)) / 1e6:.0f} MB")
    for shape, per_object, fold_every in (
        ("unfolded", 1, chunks + 1),
        ("folded", 1, 1000),
        ("group", 50, 1000),
    ):
        url = f"s3://{bucket}/bench/{shape}"
        groups = [b"".join(lines[i : i + per_object]) for i in range(0, len(lines), per_object)]
        started = time.perf_counter()
        await lay_out(endpoint, url, header, groups, fold_every)
        took = time.perf_counter() - started
        objects = len(groups) // fold_every + len(groups) % fold_every
        print(f"{shape}: {len(groups):,} batches in {objects:,} objects, laid out in {took:.1f} s")
        for label in ("resume (fold + read)", "resume again (snapshot)"):
            seconds, count, size = await resume(endpoint, url)
            assert count == chunks + 1, (count, chunks)
            print(f"  {label:<24} {seconds:6.2f} s   {count:,} lines, {size / 1e6:.0f} MB")


def main(argv: Any = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=100)
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        bucket = "bench-ckpt"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **KEYS).create_bucket(
            Bucket=bucket
        )
        anyio.run(run, endpoint, bucket, args.chunks, args.versions)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
