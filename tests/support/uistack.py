"""The local stack (``posepipe serve``) as a process, as a user starts it, shared by the tests.

The stack listens on fixed ports (:data:`STACK_PORTS`), so one can run on a machine at a time:
``local_stack`` is session-scoped (registered in ``tests/conftest.py``) and every test module that
needs a stack uses it. Run such tests under ``flock /tmp/posepipe-stack.lock`` when other test
runs may share the machine.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.clips import decoded_frames, encode_frames

API_URL = "http://127.0.0.1:3000"
S3_URL = "http://127.0.0.1:4566"
STACK_PORTS = (4566, 3000, 8080, 8081, 9001)
# The deployed configuration as it stands (posepipe.cloud.deployment: 3 hours, 1080p, 50 GB).
STACK_ENV: dict[str, str] = {}
START_TIMEOUT_S = 90.0
# vtest.avi's frames from 50 s on: people walking that MediaPipe finds (few frames before do).
PEOPLE_CLIP_START, PEOPLE_CLIP_FRAMES = 500, 40


@dataclass(frozen=True)
class StackProcess:
    """A running ``posepipe serve``: its process, its log file and where it answers."""

    process: subprocess.Popen[str]
    log: Path
    api_url: str = API_URL
    s3_url: str = S3_URL

    def log_text(self) -> str:
        return self.log.read_text()


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((host, port)) == 0


@contextmanager
def serve_stack(
    log: Path,
    env: Mapping[str, str] = STACK_ENV,
    *,
    command: Sequence[str] = (sys.executable, "-m", "posepipe.cli"),
    host: str = "127.0.0.1",
    cwd: Path | None = None,
) -> Iterator[StackProcess]:
    """``python -m posepipe.cli serve`` (or ``command serve``) on ``host`` until the block ends;
    then it must stop every server."""
    busy = [port for port in STACK_PORTS if port_open(port, host)]
    assert not busy, f"a local stack (or something else) is already listening on {host}: {busy}"
    with log.open("w") as out:
        process = subprocess.Popen(
            [*command, "serve", "--host", host],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **env},
            cwd=cwd,
        )
    stack = StackProcess(process, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while "local stack is up" not in stack.log_text():
            assert process.poll() is None, stack.log_text()
            assert time.monotonic() < deadline, stack.log_text()
            time.sleep(0.3)
        yield stack
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert "local stack stopped" in stack.log_text()
    assert not any(port_open(port, host) for port in STACK_PORTS)  # every server stopped


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Iterator[StackProcess]:
    """One ``posepipe serve`` for the whole test session (the ports are fixed)."""
    with serve_stack(tmp_path_factory.mktemp("serve") / "serve.log") as stack:
        yield stack


def write_people_clip(folder: Path, vtest: Path) -> Path:
    """4 s of vtest.avi with people walking, as an H.264 MP4 (``walk.mp4``, about 360 kB)."""
    frames = decoded_frames(vtest, PEOPLE_CLIP_START, PEOPLE_CLIP_FRAMES)
    return encode_frames(folder / "walk.mp4", frames, fps=10)
