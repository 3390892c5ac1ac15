"""Job-state files beside a checkpoint are owner-only whatever the umask, and replaced whole."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bulkops.journal.atomic import replace_private


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("open_umask")
def test_a_state_file_is_created_0600_even_under_umask_0(tmp_path: Path) -> None:
    path = tmp_path / "cp.journal.delete.jsonl"
    replace_private(path, ["a\n", "b\n"])
    assert path.read_text() == "a\nb\n"
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


@pytest.mark.usefixtures("open_umask")
def test_replacing_a_readable_file_leaves_an_owner_only_one(tmp_path: Path) -> None:
    path = tmp_path / "cp.journal.undo.jsonl"
    path.write_text("old\n")
    path.chmod(0o644)
    replace_private(path, ["new\n"])
    assert path.read_text() == "new\n"
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_symlink_left_at_the_temporary_name_is_not_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    path = tmp_path / "state.jsonl"
    (tmp_path / "state.jsonl.tmp").symlink_to(victim)
    replace_private(path, ["mine\n"])
    assert victim.read_text() == "keep\n"
    assert path.read_text() == "mine\n" and not path.is_symlink()


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path: Path) -> None:
    path = tmp_path / "state.jsonl"
    path.write_text("old\n")

    def lines() -> Iterator[str]:
        yield "half\n"
        raise RuntimeError("journal unreadable")

    with pytest.raises(RuntimeError):
        replace_private(path, lines())
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
