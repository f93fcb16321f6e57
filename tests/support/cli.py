"""The ``posepipe`` command run as a user runs it, and what a ``posepipe video`` run leaves behind."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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


@dataclass
class VideoRun:
    out_dir: Path
    keypoints: dict[str, Any]
    summary: dict[str, Any]


def load_run(out_dir: Path) -> VideoRun:
    return VideoRun(
        out_dir=out_dir,
        keypoints=json.loads((out_dir / "keypoints.json").read_text()),
        summary=json.loads((out_dir / "summary.json").read_text()),
    )
