"""Shared fixtures: the real model, the real sample media, and one run of the real pipeline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cdkapp import default_app  # noqa: F401  (the app synthesized once, for every module)
from tests.uistack import local_stack  # noqa: F401  (the session's `posepipe serve`, for every module)

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
EVENTS = Path(__file__).resolve().parent / "events"


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The built model (``make test`` builds it first; built here if missing)."""
    from posepipe.assets.model_build import build_model

    return build_model()


@pytest.fixture(scope="session")
def sample() -> Callable[[str], Path]:
    """``sample("vtest.avi")``: the verified path of a sample file."""
    from posepipe.assets.samples import sample_path

    return sample_path


@dataclass
class CliRun:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str | Path, cwd: Path | None = None, timeout: float = 600) -> CliRun:
    """Run the installed ``posepipe`` command as a user would."""
    completed = subprocess.run(
        [sys.executable, "-m", "posepipe.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    return CliRun(completed.returncode, completed.stdout, completed.stderr)


@pytest.fixture(scope="session")
def cli() -> Callable[..., CliRun]:
    return run_cli


@dataclass
class VideoRun:
    out_dir: Path
    keypoints: dict[str, Any]
    summary: dict[str, Any]


def _load_run(out_dir: Path) -> VideoRun:
    return VideoRun(
        out_dir=out_dir,
        keypoints=json.loads((out_dir / "keypoints.json").read_text()),
        summary=json.loads((out_dir / "summary.json").read_text()),
    )


@pytest.fixture(scope="session")
def vtest_default(
    tmp_path_factory: pytest.TempPathFactory, sample: Callable[[str], Path], model_path: Path
) -> VideoRun:
    """``posepipe video vtest.avi`` with every default (annotated, chunked, one worker per core)."""
    out = tmp_path_factory.mktemp("vtest-default")
    run = run_cli("video", sample("vtest.avi"), "-o", out)
    assert run.returncode == 0, run.stderr
    return _load_run(out / "vtest")


@pytest.fixture(scope="session")
def vtest_one_chunk(
    tmp_path_factory: pytest.TempPathFactory, sample: Callable[[str], Path], model_path: Path
) -> VideoRun:
    """The whole of vtest.avi as one chunk: the reference chunked runs are compared with."""
    out = tmp_path_factory.mktemp("vtest-one-chunk")
    run = run_cli(
        "video", sample("vtest.avi"), "-o", out, "--workers", "1", "--chunk-frames", "100000", "--no-annotate"
    )
    assert run.returncode == 0, run.stderr
    return _load_run(out / "vtest")


# Fixtures that make a test need the local stack or PyTorch, however deep in its fixtures.
NEEDS = {"local_stack": "stack", "one_torch_thread": "torch"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what a test needs by the fixtures it uses (modules mark the rest themselves)."""
    for item in items:
        for fixture, marker in NEEDS.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(marker)
