"""moto's S3 server for the tests, a fake clock, and faults S3 sends that moto never does."""

from __future__ import annotations

import contextlib
import inspect
import re
import secrets
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aioboto3
import anyio
import boto3
import pytest
from aiobotocore.awsrequest import AioAWSResponse
from botocore.exceptions import ConnectionClosedError
from moto.server import ThreadedMotoServer

from bulkops.aws.s3calls import Retry
from bulkops.aws.s3lease import Clock, LeaseTimes
from bulkops.aws.s3store import S3Store

QUICK_RETRY = Retry(attempts=4, base=0.001, cap=0.005, sdk_attempts=1)  # no real backoff


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[str]:
    """moto's real server on 127.0.0.1 (a free port), stopped after the session."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_admin(endpoint: str, region: str = "us-east-1") -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def new_bucket(endpoint: str, region: str = "us-east-1") -> str:
    name = f"ckpt-{secrets.token_hex(6)}"
    kw: dict[str, Any] = {"Bucket": name}
    if region != "us-east-1":
        kw["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3_admin(endpoint, region).create_bucket(**kw)
    return name


@pytest.fixture
def bucket(moto_s3: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    return new_bucket(moto_s3)


def keys(endpoint: str, bucket: str, prefix: str = "") -> list[str]:
    found: list[str] = []
    for page in (
        s3_admin(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    ):
        found.extend(o["Key"] for o in page.get("Contents", ()))
    return found


@dataclass
class FakeClock:
    """Both clocks of one host; `sleep` moves them on at once instead of waiting."""

    now: float = 1_000.0
    wall_offset: float = 1_800_000_000.0

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now + self.wall_offset

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await anyio.sleep(0)

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def clock(self) -> Clock:
        return Clock(monotonic=self.monotonic, wall=self.wall, sleep=self.sleep)


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    async def read(self, *_: Any) -> bytes:
        data, self.data = self.data, b""
        return data


def error_response(url: str, status: int, code: str) -> AioAWSResponse:
    body = f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()
    headers = {"content-type": "application/xml", "content-length": str(len(body))}
    return AioAWSResponse(url, status, headers, _Body(body))


@dataclass
class Fault:
    """Answer `status`/`code` instead of S3 for requests matching `operation` and `key`;
    with `applied`, S3 gets the request first and only its answer is replaced (lost)."""

    operation: str
    status: int
    code: str
    key: str = ""  # a regular expression searched in the request's URL path
    times: int = 1  # how many matching requests (-1: every one)
    applied: bool = False
    drop: bool = False  # the connection drops instead: no answer at all
    seen: int = 0


@dataclass(eq=False)  # hashable by identity: botocore keeps its handlers in a dict
class Faults:
    """A `before-send` hook on one client: the faults still to inject, in order."""

    pending: list[Fault] = field(default_factory=list)

    def add(self, fault: Fault) -> Fault:
        self.pending.append(fault)
        return fault

    async def __call__(self, request: Any, event_name: str, **_: Any) -> AioAWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]
        path = urllib.request.urlparse(request.url).path
        for fault in self.pending:
            if fault.operation != operation or not re.search(fault.key, path):
                continue
            if fault.times == 0:
                continue
            fault.times -= 1
            fault.seen += 1
            if fault.applied:
                await _send(request)
            if fault.drop:
                raise ConnectionClosedError(endpoint_url=request.url)
            return error_response(request.url, fault.status, fault.code)
        return None


async def _send(request: Any) -> None:
    """Send a prepared (signed) request to moto as it is and drop the answer."""
    body = request.body
    if hasattr(body, "read"):
        if hasattr(body, "seek"):
            body.seek(0)  # botocore read it once to compute its checksum
        body = body.read()
        if inspect.isawaitable(body):
            body = await body
    headers = {"Content-Type": "binary/octet-stream", **dict(request.headers)}
    # (without a type, urllib says form data, and moto's server parses the body away)
    sent = urllib.request.Request(request.url, data=body, method=request.method, headers=headers)
    with contextlib.suppress(urllib.error.HTTPError):
        urllib.request.urlopen(sent, timeout=10).read()


def inject(store: S3Store) -> Faults:
    faults = Faults()
    store.calls.client.meta.events.register("before-send.s3", faults)
    return faults


StoreOpener = Callable[..., Any]


def opener(
    endpoint: str,
    bucket: str,
    prefix: str = "jobs/one",
    *,
    clock: FakeClock | None = None,
    times: LeaseTimes | None = None,
    fold_every: int = 1000,
) -> Callable[[], Any]:
    """A factory of fresh handles on one S3 location (each its own client), for the contract."""

    @asynccontextmanager
    async def open_store() -> AsyncIterator[S3Store]:
        session = aioboto3.Session()
        async with S3Store.open(
            f"s3://{bucket}/{prefix}",
            session,
            endpoint_url=endpoint,
            retry=QUICK_RETRY,
            clock=clock.clock() if clock else None,
            times=times,
            fold_every=fold_every,
        ) as store:
            yield store

    return open_store
