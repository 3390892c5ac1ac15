"""The emulator on its own event loop in a background thread, for synchronous callers.

A synchronous test (click's CliRunner, a boto3 client) cannot share a loop with the
emulator, so this runs one in a thread. Every method runs on the emulator's loop, so
ground-truth reads never race a request being served.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, TypeVar

from bulkops.emulator.runner import EmulatorConfig, RunningEmulator, run_emulator

T = TypeVar("T")


class ThreadedEmulator:
    """A handle on an emulator served by another thread; methods mirror RunningEmulator's."""

    def __init__(self, emu: RunningEmulator, loop: asyncio.AbstractEventLoop) -> None:
        self._emu = emu
        self._loop = loop
        self.endpoint_url = emu.endpoint_url
        self.account_id = emu.account_id

    def call(self, fn: Callable[[RunningEmulator], T], timeout: float = 30.0) -> T:
        """Run `fn(emulator)` on the emulator's loop and return its result."""
        done: Future[T] = Future()

        def run() -> None:
            try:
                done.set_result(fn(self._emu))
            except BaseException as exc:  # handed to the calling thread
                done.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return done.result(timeout)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        """`handle.versions("main")` runs `RunningEmulator.versions("main")` on the loop."""
        if name.startswith("_"):
            raise AttributeError(name)
        getattr(RunningEmulator, name)  # AttributeError for names the API does not have

        def method(*args: Any, **kwargs: Any) -> Any:
            return self.call(lambda emu: getattr(emu, name)(*args, **kwargs))

        return method


@contextmanager
def emulator_thread(
    config: EmulatorConfig | None = None, /, **overrides: Any
) -> Iterator[ThreadedEmulator]:
    """`with emulator_thread(generate=(5, 10)) as emu:` serve until the block ends."""
    ready: Future[ThreadedEmulator] = Future()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        async with run_emulator(config, **overrides) as emu:
            ready.set_result(ThreadedEmulator(emu, loop))
            await stop.wait()

    def main() -> None:
        try:
            loop.run_until_complete(serve())
        except BaseException as exc:  # reported to the caller through `ready`
            if not ready.done():
                ready.set_exception(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=main, name="bulkops-emulator", daemon=True)
    thread.start()
    try:
        yield ready.result(timeout=60)
    finally:
        if not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
