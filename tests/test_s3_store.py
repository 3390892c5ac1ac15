"""The S3 journal store on moto's real server: the store contract, the lease, fencing, faults."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aioboto3
import pytest
import structlog
from structlog.testing import capture_logs

from bulkops.aws.s3store import S3Store
from bulkops.aws.s3url import parse_s3_url, resolve_endpoint
from bulkops.errors import (
    EXIT_ACCESS_DENIED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    AccessDenied,
    JournalCorrupt,
    Refused,
    StoreUnavailable,
    UsageError,
)
from tests.s3_support import (
    QUICK_RETRY,
    Fault,
    bucket,
    inject,
    keys,
    moto_s3,
    new_bucket,
    opener,
    s3_admin,
)
from tests.store_contract import CONTRACT, HEADER, OpenStore

__all__ = ["bucket", "moto_s3"]  # fixtures


async def _read(store: S3Store) -> list[bytes]:
    return [line async for line in store.read()]


@pytest.mark.asyncio
@pytest.mark.parametrize("check", CONTRACT, ids=lambda c: c.__name__.removeprefix("check_"))
async def test_the_s3_store_keeps_the_store_contract(
    check: Callable[[OpenStore], Awaitable[None]], moto_s3: str, bucket: str
) -> None:
    await check(opener(moto_s3, bucket))


@pytest.mark.parametrize(
    ("text", "bucket_name", "prefix"),
    [
        ("s3://ckpt/jobs/archive", "ckpt", "jobs/archive"),
        ("s3://ckpt/jobs/archive/", "ckpt", "jobs/archive"),
        ("s3://my.bucket-1/a", "my.bucket-1", "a"),
    ],
)
def test_an_s3_url_names_a_bucket_and_a_prefix(text: str, bucket_name: str, prefix: str) -> None:
    url = parse_s3_url(text)
    assert (url.bucket, url.prefix) == (bucket_name, prefix)
    assert str(url) == f"s3://{bucket_name}/{prefix}"


@pytest.mark.parametrize(
    "text",
    [
        "ckpt/jobs",
        "s3://ckpt",
        "s3://ckpt/",
        "s3://Ckpt/jobs",
        "s3://ab/jobs",
        "s3://192.168.1.1/jobs",
        "s3://ck..pt/jobs",
        "s3://ckpt/a//b",
        "s3://ckpt/a/../b",
        "s3://ckpt/a/journal",
        "s3://ckpt/a\x00b",
    ],
)
def test_a_bad_s3_url_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError) as exc:
        parse_s3_url(text)
    assert exc.value.exit_code == EXIT_USAGE


def test_the_endpoint_comes_from_the_flag_then_the_s3_variable_then_the_general_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    assert resolve_endpoint(None) is None
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://general")
    assert resolve_endpoint(None) == "http://general"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://s3-only")
    assert resolve_endpoint(None) == "http://s3-only"
    assert resolve_endpoint("http://flag") == "http://flag"
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    assert resolve_endpoint(None) is None


@pytest.mark.asyncio
async def test_the_endpoint_variable_reaches_moto_and_the_region_is_found(
    moto_s3: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_s3)
    name = new_bucket(moto_s3, "eu-west-1")
    async with S3Store.open(f"s3://{name}/jobs/x", aioboto3.Session()) as store:
        assert store.calls.client.meta.region_name == "eu-west-1"
        await store.create(HEADER)
    assert f"jobs/x/journal/snapshot/{1:010d}" in keys(moto_s3, name)


@pytest.mark.asyncio
async def test_a_missing_bucket_is_a_usage_error_before_any_write(moto_s3: str) -> None:
    with pytest.raises(UsageError, match="does not exist") as exc:
        async with opener(moto_s3, "no-such-bucket-here")():
            pass
    assert exc.value.exit_code == EXIT_USAGE


@pytest.mark.asyncio
async def test_access_denied_on_s3_exits_77(moto_s3: str, bucket: str) -> None:
    async with opener(moto_s3, bucket)() as store:
        inject(store).add(Fault("ListObjectsV2", 403, "AccessDenied", times=-1))
        with pytest.raises(AccessDenied, match="access denied") as exc:
            await store.create(HEADER)
    assert exc.value.exit_code == EXIT_ACCESS_DENIED
    assert keys(moto_s3, bucket) == []


@pytest.mark.asyncio
async def test_a_prefix_holding_foreign_objects_or_another_job_is_refused_by_name(
    moto_s3: str, bucket: str
) -> None:
    s3_admin(moto_s3).put_object(Bucket=bucket, Key="jobs/one/notes.txt", Body=b"hi")
    with pytest.raises(Refused, match=f"s3://{bucket}/jobs/one/notes.txt"):
        async with opener(moto_s3, bucket)() as store:
            await store.create(HEADER)
    async with opener(moto_s3, bucket, "jobs/two/inner")() as inner:
        await inner.create(HEADER)
    with pytest.raises(Refused, match="another bulkops job"):
        async with opener(moto_s3, bucket, "jobs/two")() as outer:
            await outer.create(HEADER)


@pytest.mark.asyncio
async def test_a_foreign_object_in_the_journal_is_named(moto_s3: str, bucket: str) -> None:
    async with opener(moto_s3, bucket)() as store:
        await store.create(HEADER)
    s3_admin(moto_s3).put_object(Bucket=bucket, Key="jobs/one/journal/stray", Body=b"x")
    with pytest.raises(JournalCorrupt, match=f"s3://{bucket}/jobs/one/journal/stray"):
        async with opener(moto_s3, bucket)() as store:
            await store.acquire()


@pytest.mark.asyncio
async def test_a_503_on_an_applied_conditional_create_is_read_back_not_resent(
    moto_s3: str, bucket: str
) -> None:
    async with opener(moto_s3, bucket)() as store:
        await store.create(HEADER)
        faults = inject(store)
        lost = faults.add(
            Fault("PutObject", 503, "ServiceUnavailable", key="records/", applied=True)
        )
        await store.append(b'{"n":1}\n')
        await store.append(b'{"n":2}\n')
        assert lost.seen == 1
        assert await _read(store) == [HEADER, b'{"n":1}\n', b'{"n":2}\n']
    assert len([k for k in keys(moto_s3, bucket) if "/records/" in k]) == 2


@pytest.mark.asyncio
async def test_a_409_conditional_conflict_is_re_read_and_retried(moto_s3: str, bucket: str) -> None:
    async with opener(moto_s3, bucket)() as store:
        await store.create(HEADER)
        faults = inject(store)
        conflict = faults.add(
            Fault("PutObject", 409, "ConditionalRequestConflict", key="records/", times=3)
        )
        await store.append(b'{"n":1}\n')
        assert conflict.seen == 3
        renewal = faults.add(Fault("PutObject", 409, "ConditionalRequestConflict", key="lease$"))
        await store.lease.renew()
        assert renewal.seen == 1
        assert await _read(store) == [HEADER, b'{"n":1}\n']


@pytest.mark.asyncio
async def test_a_dropped_connection_after_the_write_is_read_back_not_lost(
    moto_s3: str, bucket: str
) -> None:
    async with opener(moto_s3, bucket)() as store:
        await store.create(HEADER)
        dropped = inject(store).add(
            Fault("PutObject", 0, "", key="records/", applied=True, drop=True, times=2)
        )
        await store.append(b'{"n":1}\n')
        await store.append(b'{"n":2}\n')
        assert dropped.seen == 2
        assert await _read(store) == [HEADER, b'{"n":1}\n', b'{"n":2}\n']


@pytest.mark.asyncio
async def test_a_reader_that_finds_a_listed_record_gone_lists_again_and_goes_on(
    moto_s3: str, bucket: str
) -> None:
    async with opener(moto_s3, bucket)() as store:
        await store.create(HEADER)
        for i in range(3):
            await store.append(b'{"n":%d}\n' % i)
    async with opener(moto_s3, bucket)() as reader:
        gone = inject(reader).add(Fault("GetObject", 404, "NoSuchKey", key="records/.*2$"))
        structlog.reset_defaults()  # an earlier in-process run may filter levels
        with capture_logs() as logs:
            lines = await _read(reader)
        assert gone.seen == 1
        assert lines == [HEADER, b'{"n":0}\n', b'{"n":1}\n', b'{"n":2}\n']
        assert [e["event"] for e in logs].count("journal_compacted_while_read") == 1


@pytest.mark.asyncio
async def test_s3_failing_past_every_retry_is_75_and_stores_nothing(
    moto_s3: str, bucket: str
) -> None:
    async with opener(moto_s3, bucket)() as store:
        await store.create(HEADER)
        inject(store).add(Fault("PutObject", 500, "InternalError", key="records/", times=-1))
        with pytest.raises(StoreUnavailable) as exc:
            await store.append(b'{"n":1}\n')
        assert exc.value.exit_code == EXIT_INTERRUPTED
        assert await _read(store) == [HEADER]


@pytest.mark.asyncio
async def test_acquire_folds_the_journal_into_one_snapshot(moto_s3: str, bucket: str) -> None:
    open_store = opener(moto_s3, bucket)
    async with open_store() as store:
        await store.create(HEADER)
        for i in range(70):  # more than one read window of record objects
            await store.append(b'{"n":%d}\n' % i)
    expected = [HEADER, *(b'{"n":%d}\n' % i for i in range(70))]
    async with open_store() as store:
        await store.acquire()
        assert await _read(store) == expected
    journal = [k for k in keys(moto_s3, bucket) if "/journal/" in k]
    assert journal == ["jobs/one/journal/lease", f"jobs/one/journal/snapshot/{2:010d}"]
    async with open_store() as store:
        assert await _read(store) == expected
        with pytest.raises(JournalCorrupt):
            await store.drop_after(3)
        await store.drop_after(71)  # drops nothing: a no-op


@pytest.mark.asyncio
async def test_the_owner_folds_every_n_record_objects_so_resume_reads_few(
    moto_s3: str, bucket: str
) -> None:
    open_store = opener(moto_s3, bucket, fold_every=5)
    async with open_store() as store:
        await store.create(HEADER)
        for i in range(12):
            await store.append(b'{"n":%d}\n' % i)
        journal = sorted(
            k.split("/journal/")[1] for k in keys(moto_s3, bucket, "jobs/one/journal/")
        )
        assert journal == [
            f"folds/{1:010d}/{5:012d}",
            f"folds/{1:010d}/{10:012d}",
            "lease",
            f"records/{1:010d}/{11:012d}",
            f"records/{1:010d}/{12:012d}",
            f"snapshot/{1:010d}",
        ]
        expected = [HEADER, *(b'{"n":%d}\n' % i for i in range(12))]
        async with open_store() as reader:
            assert await _read(reader) == expected
    async with open_store() as store:
        await store.acquire()
        assert await _read(store) == expected


@pytest.mark.asyncio
async def test_a_large_sibling_object_goes_up_in_parts_and_streams_back(
    moto_s3: str, bucket: str
) -> None:
    line = b"x" * 1023 + b"\n"
    async with opener(moto_s3, bucket)() as store:
        await store.create(HEADER)
        writer = store.writer("chunks", create_only=True)
        for _ in range(9 * 1024 + 5):  # 9 MiB and a bit: two parts
            writer.write(line)
        structlog.reset_defaults()  # an earlier in-process run may filter levels
        with capture_logs() as logs:
            await writer.commit()
        assert [e["parts"] for e in logs if e["event"] == "s3_multipart_upload"] == [2]
        count = 0
        async for got in store.lines("chunks"):
            assert got == line
            count += 1
        assert count == 9 * 1024 + 5
        again = store.writer("chunks", create_only=True)
        again.write(line * (9 * 1024))
        with pytest.raises(Refused):
            await again.commit()


@pytest.mark.asyncio
async def test_objects_use_sse_kms_when_a_key_is_given(moto_s3: str, bucket: str) -> None:
    import boto3

    kms = boto3.client(
        "kms",
        endpoint_url=moto_s3,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    async with S3Store.open(
        f"s3://{bucket}/jobs/kms",
        aioboto3.Session(),
        endpoint_url=moto_s3,
        kms_key=key_id,
        retry=QUICK_RETRY,
    ) as store:
        await store.create(HEADER)
        await store.append(b'{"n":1}\n')
    admin = s3_admin(moto_s3)
    for key in keys(moto_s3, bucket, "jobs/kms/"):
        head = admin.head_object(Bucket=bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms", key
        assert key_id in head["SSEKMSKeyId"]
