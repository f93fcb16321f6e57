"""Outputs appear whole or not at all, with ordinary permissions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from posepipe.outputs import staged_directory, write_files_atomically


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_staged_directory_replaces_the_old_result_only_when_complete(tmp_path: Path) -> None:
    final = tmp_path / "clip"
    with staged_directory(final) as staging:
        (staging / "keypoints.json").write_text("first")
    assert (final / "keypoints.json").read_text() == "first"
    assert final.stat().st_mode & 0o777 == 0o777 & ~_umask()

    def interrupted_write() -> None:
        with staged_directory(final) as staging:
            (staging / "keypoints.json").write_text("half of the second")
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        interrupted_write()
    assert (final / "keypoints.json").read_text() == "first"  # the old result, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip"]  # no staging left behind


def test_files_written_together_or_not_at_all(tmp_path: Path) -> None:
    files = {tmp_path / "a.json": b"{}", tmp_path / "b.jpg": b"\xff\xd8"}
    write_files_atomically(files)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == {"a.json": b"{}", "b.jpg": b"\xff\xd8"}
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~_umask()
    (tmp_path / "blocker").mkdir()
    with pytest.raises(IsADirectoryError):  # the second target is a folder: neither may appear
        write_files_atomically({tmp_path / "a.json": b"new", tmp_path / "blocker": b"x"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.jpg", "blocker"]
    assert (tmp_path / "a.json").read_bytes() == b"{}"  # the earlier version is back
