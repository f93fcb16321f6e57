"""docs/ARCHITECTURE.md: the flow diagram, and a behaviour -> module table whose paths all exist."""

from __future__ import annotations

import re

from tests.support.paths import REPO

ARCHITECTURE = REPO / "docs" / "ARCHITECTURE.md"
# The behaviours the table must place (issue 11, point 8), each by words its row starts with.
BEHAVIOURS = (
    "Decode frames",
    "Detect people",
    "Landmarks of a person",
    "Stable person ids",
    "Temporal smoothing",
    "Draw persons",
    "Encode browser-playable H.264",
    "The `image_infer` handler",
    "The `video_jobs` handler",
    "The `video_split` handler",
    "The `aggregate` handler",
    "The state machine",
    "The local stack",
    "The web app",
)


def test_the_architecture_has_a_mermaid_diagram_of_both_flows() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    (diagram,) = re.findall(r"```mermaid\n(.*?)```", text, flags=re.S)
    for node in ("image_job.py", "video/local.py", "cloud/handlers/aggregate.py", "video/runner.py"):
        assert node in diagram, node


def test_every_behaviour_has_its_row_and_every_path_exists() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    for behaviour in BEHAVIOURS:
        assert any(row.startswith(f"| {behaviour}") for row in rows), behaviour
    paths = re.findall(r"`((?:layers|infra|tests|functions|sagemaker_endpoint|docs)/[^`]+)`", text)
    assert len(paths) > 30
    # A pattern such as functions/<name>/app.py stands for each function's file.
    expanded = [p.replace("<name>", name) for p in paths for name in ("aggregate", "image_infer")]
    missing = [path for path in expanded if not (REPO / path).exists()]
    assert missing == []
