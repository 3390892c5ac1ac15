"""The S3 journal's lease on moto's real server: one owner, renewal, expiry, takeover, fencing."""

from __future__ import annotations

import json

import anyio
import pytest
import structlog
from structlog.testing import capture_logs

from bulkops.aws.s3lease import LeaseTimes
from bulkops.aws.s3store import S3Store
from bulkops.errors import EXIT_INTERRUPTED, JournalBusy, LeaseLost
from tests.s3_support import FakeClock, Fault, bucket, inject, moto_s3, opener, s3_admin
from tests.store_contract import HEADER

__all__ = ["bucket", "moto_s3"]  # fixtures

SHORT = LeaseTimes(ttl=60, renew_every=15, margin=20, skew=5)


async def _read(store: S3Store) -> list[bytes]:
    return [line async for line in store.read()]


@pytest.mark.asyncio
async def test_a_second_run_while_the_lease_is_live_gets_75_naming_the_holder(
    moto_s3: str, bucket: str
) -> None:
    clock = FakeClock()
    open_store = opener(moto_s3, bucket, clock=clock, times=SHORT)
    async with open_store() as first:
        await first.create(HEADER)
        clock.advance(50)  # not yet expired
        async with open_store() as second:
            with pytest.raises(JournalBusy) as busy:
                await second.acquire()
    assert busy.value.exit_code == EXIT_INTERRUPTED
    assert "pid" in str(busy.value) and "since" in str(busy.value)
    assert f"s3://{bucket}/jobs/one" in str(busy.value)


@pytest.mark.asyncio
async def test_an_expired_lease_is_taken_over_and_the_old_holder_is_fenced(
    moto_s3: str, bucket: str
) -> None:
    old_clock, new_clock = FakeClock(), FakeClock()
    async with opener(moto_s3, bucket, clock=old_clock, times=SHORT)() as old:
        await old.create(HEADER)
        await old.append(b'{"n":1}\n')
        new_clock.advance(61)  # the new host sees the lease expired; the old one is frozen
        structlog.reset_defaults()  # an earlier in-process run may filter levels
        with capture_logs() as logs:
            async with opener(moto_s3, bucket, clock=new_clock, times=SHORT)() as new:
                await new.acquire()
                assert new.lease.epoch == 2
                await old.append(b'{"zombie":1}\n')  # the old holder still thinks it owns
                await new.append(b'{"n":2}\n')
                assert await _read(new) == [HEADER, b'{"n":1}\n', b'{"n":2}\n']
                with pytest.raises(LeaseLost) as lost:
                    await old.keep_alive()  # its renewal finds the lease taken
                assert lost.value.exit_code == EXIT_INTERRUPTED
                with pytest.raises(LeaseLost):
                    await old.append(b'{"zombie":2}\n')
        taken = [e for e in logs if e["event"] == "lease_taken_over"]
        assert taken and "pid" in taken[0]["previous"]
    async with opener(moto_s3, bucket)() as reader:
        assert b'{"zombie":1}\n' not in await _read(reader)


@pytest.mark.asyncio
async def test_keep_alive_renews_so_the_lease_never_expires(moto_s3: str, bucket: str) -> None:
    clock = FakeClock()
    open_store = opener(moto_s3, bucket, clock=clock, times=SHORT)
    async with open_store() as owner:
        await owner.create(HEADER)
        first_deadline = owner.owned_until()
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(owner.keep_alive)  # its sleeps move the fake clock on
                while owner.owned_until() < first_deadline + 130:  # 9 renewals or more
                    await anyio.sleep(0.005)
                tg.cancel_scope.cancel()
        assert clock.now >= 1_000 + 130 and owner.owned_until() - clock.now > SHORT.margin
        async with open_store() as second:
            with pytest.raises(JournalBusy):
                await second.acquire()


@pytest.mark.asyncio
async def test_keep_alive_gives_up_before_the_deadline_when_s3_stops_answering(
    moto_s3: str, bucket: str
) -> None:
    clock = FakeClock()
    async with opener(moto_s3, bucket, clock=clock, times=SHORT)() as owner:
        await owner.create(HEADER)
        deadline = owner.owned_until()
        inject(owner).add(Fault("PutObject", 503, "SlowDown", key="journal/lease$", times=-1))
        with anyio.fail_after(5), pytest.raises(LeaseLost, match=r"could not be renewed in time"):
            await owner.keep_alive()
        assert deadline - SHORT.margin - 1 <= clock.now <= deadline - SHORT.margin + 1
        with pytest.raises(LeaseLost):
            await owner.append(b'{"n":1}\n')


def test_lease_times_for_a_call_timeout_leave_room_for_a_call_between_renewals() -> None:
    for call_timeout in (5.0, 60.0, 300.0):
        times = LeaseTimes.for_calls(call_timeout)
        assert times.margin == call_timeout
        assert times.ttl - times.skew - times.renew_every > call_timeout
    assert LeaseTimes.for_calls(5.0).ttl == 60.0
    with pytest.raises(ValueError, match="renew_every"):
        LeaseTimes(ttl=60, renew_every=15, margin=60, skew=5)


@pytest.mark.asyncio
async def test_a_writer_of_a_run_that_lost_its_lease_cannot_commit(
    moto_s3: str, bucket: str
) -> None:
    old_clock, new_clock = FakeClock(), FakeClock()
    async with opener(moto_s3, bucket, clock=old_clock, times=SHORT)() as old:
        await old.create(HEADER)
        new_clock.advance(61)
        async with opener(moto_s3, bucket, clock=new_clock, times=SHORT)() as new:
            await new.acquire()
            old_clock.advance(61)  # the old run's own clock: past its deadline
            writer = old.writer("chunks")
            writer.write(b"stale\n")
            with pytest.raises(LeaseLost):
                await writer.commit()
            assert await new.get("chunks") is None


@pytest.mark.asyncio
async def test_the_lease_holds_who_and_until_when_and_no_credentials(
    moto_s3: str, bucket: str
) -> None:
    async with opener(moto_s3, bucket)() as store:
        await store.create(HEADER)
        body = s3_admin(moto_s3).get_object(Bucket=bucket, Key="jobs/one/journal/lease")
        doc = json.loads(body["Body"].read())
    assert set(doc) == {
        "bulkops", "version", "epoch", "host", "pid", "since",
        "expires", "expires_at", "released", "nonce",
    }  # fmt: skip
    assert doc["epoch"] == 1 and not doc["released"]
