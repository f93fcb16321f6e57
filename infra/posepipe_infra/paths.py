"""Absolute paths of what the CDK app deploys (asset paths must be absolute: jsii resolves relative
ones against its own working directory)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS = REPO / "functions"
STATE_MACHINE_DEFINITION = REPO / "layers" / "posepipe" / "cloud" / "video_pipeline.asl.json"


def docker_ignore_patterns(dockerfile: str) -> list[str]:
    """The patterns of ``<dockerfile>.dockerignore``: the CDK stages what ``docker build`` would send."""
    lines = (REPO / f"{dockerfile}.dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
