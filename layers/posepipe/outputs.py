"""Outputs that appear whole or not at all: staged under a temporary name, then renamed.

Staged names are unique, hidden and end in ``.partial``; they are created with the ordinary
modes (0o666 files, 0o777 folders, less the umask), so results get the permissions any file the
user writes would get.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path


def _staging_name(final: Path, suffix: str = ".partial") -> Path:
    return final.with_name(f".{final.name}.{uuid.uuid4().hex[:12]}{suffix}")


@contextlib.contextmanager
def staged_directory(final: Path) -> Iterator[Path]:
    """Yield an empty folder beside ``final``; on success it replaces ``final``, on error it goes."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = _staging_name(final)
    staging.mkdir(mode=0o777)
    try:
        yield staging
        if final.exists():
            old = _staging_name(final, ".old")
            os.replace(final, old)
            os.replace(staging, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_files_atomically(files: dict[Path, bytes]) -> None:
    """Write every file under a temporary name, then rename them all into place.

    If any rename fails, the ones already done are undone (earlier versions restored), so the
    files appear together or not at all.
    """
    staged: list[tuple[Path, Path]] = []
    placed: list[tuple[Path, Path | None]] = []  # target, the earlier version moved aside
    try:
        for path, data in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = _staging_name(path)
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            staged.append((temporary, path))
            with os.fdopen(descriptor, "wb") as out:
                out.write(data)
        for temporary, path in staged:
            earlier = None
            if path.is_file():
                earlier = _staging_name(path, ".old")
                os.replace(path, earlier)
            placed.append((path, earlier))
            os.replace(temporary, path)
    except BaseException:
        for path, earlier in reversed(placed):
            if earlier is not None:
                os.replace(earlier, path)
            elif path.is_file():
                path.unlink()
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)
        raise
    for _, earlier in placed:
        if earlier is not None:
            earlier.unlink(missing_ok=True)
