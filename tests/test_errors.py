"""The exception tree: drawn whole in its docstring, and no error of a failed task group lost."""

from __future__ import annotations

import inspect
import re

import anyio
import pytest
from structlog.testing import capture_logs

from bulkops import errors
from bulkops.engine.engine import RunResult, Stats, StopSignal
from bulkops.errors import (
    EXIT_ACCESS_DENIED,
    AccessDenied,
    BulkopsError,
    CallFailed,
    ResourceMissing,
    first_error,
)
from bulkops.jobs.supervisor import supervise


def _classes() -> dict[str, type[BaseException]]:
    return {
        name: cls
        for name, cls in vars(errors).items()
        if inspect.isclass(cls) and issubclass(cls, Exception) and cls.__module__ == errors.__name__
    }


def test_every_error_class_is_drawn_in_the_tree_under_its_parent_with_its_exit_code() -> None:
    doc = errors.__doc__ or ""
    drawn: dict[str, tuple[int, str | None]] = {}  # name -> (depth, exit code as drawn)
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in doc.splitlines():
        found = re.match(r"^\s{4}([│ ]*)(?:[├└]── )?([A-Z]\w+)(?: \((\d+)\))?\s", line + " ")
        if not found or found.group(2) not in _classes():
            continue
        depth = len(found.group(1)) // 4 + (1 if "──" in line else 0)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        name = found.group(2)
        parents[name] = stack[-1][1] if stack else None
        drawn[name] = (depth, found.group(3))
        stack.append((depth, name))
    assert set(drawn) == set(_classes()), "classes missing from the drawing or drawn extra"
    for name, cls in _classes().items():
        parent = parents[name]
        base = cls.__bases__[0]
        assert (parent or "Exception") == base.__name__, f"{name} is drawn under {parent}"
        code = drawn[name][1]
        if issubclass(cls, BulkopsError):
            assert code is not None and int(code) == cls.exit_code, f"{name}'s exit code"
        else:
            assert issubclass(cls, CallFailed) and code is None


def test_the_first_bulkops_error_decides_and_every_other_error_is_logged() -> None:
    bug, denied, missing = RuntimeError("a bug"), AccessDenied("no"), ResourceMissing("gone")
    group = ExceptionGroup("tasks", [bug, ExceptionGroup("inner", [denied, missing])])
    with capture_logs() as logs:
        assert first_error(group) is denied
    also = [(e["error_type"], e["error"]) for e in logs if e["event"] == "error_also_raised"]
    assert also == [("RuntimeError", "a bug"), ("ResourceMissing", "gone")]
    assert all(e["reported"] == "AccessDenied" for e in logs)


def test_a_lone_error_comes_out_as_itself_and_several_without_a_bulkops_error_stay_a_group() -> (
    None
):
    lone = ValueError("one")
    with capture_logs() as logs:
        assert first_error(ExceptionGroup("g", [lone])) is lone
        several = ExceptionGroup("g", [ValueError("x"), KeyError("y")])
        assert first_error(several) is several
    assert logs == []


def test_a_run_whose_tasks_fail_twice_exits_with_the_bulkops_error_and_logs_the_other() -> None:
    async def start(stop: StopSignal, stats: Stats) -> RunResult:
        async def broken() -> None:
            raise RuntimeError("journal writer broke")

        async def denied() -> None:  # raises after the bug: the bulkops error still decides
            raise AccessDenied("AccessDeniedException: not allowed")

        async with anyio.create_task_group() as tg:
            tg.start_soon(broken)
            tg.start_soon(denied)
            await anyio.sleep_forever()
        raise AssertionError("unreachable")

    with capture_logs() as logs, pytest.raises(AccessDenied) as caught:
        supervise(start)
    assert caught.value.exit_code == EXIT_ACCESS_DENIED
    also = [e for e in logs if e["event"] == "error_also_raised"]
    assert [e["error"] for e in also] == ["journal writer broke"]
