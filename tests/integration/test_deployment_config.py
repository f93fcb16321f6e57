"""`posepipe serve` is the deployed system on one machine: every function and the endpoint run
with the same variables in the stack `cdk deploy` makes and in the local stack, key by key (their
resource names and the serving machine's own settings aside: posepipe.cloud.deployment)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from posepipe.cloud import deployment
from posepipe.engines.base import DEFAULT_DETECTOR
from posepipe.local_stack.stack import LocalStack

from tests.support.cdkapp import Synthesized


def deployed_environments(app: Synthesized) -> dict[str, dict[str, Any]]:
    stack = app.stack
    built = {
        "image_infer": stack.images.built,
        "video_split": stack.videos.split,
        "aggregate": stack.videos.aggregate,
        "render_segment": stack.videos.render,
        "join_video": stack.videos.join,
        "video_jobs": stack.videos.jobs,
        "failure_records": stack.failures.built,
    }
    out = {
        name: app.resources[app.logical_id(b.function)]["Properties"]["Environment"]["Variables"]
        for name, b in built.items()
    }
    model = app.one("AWS::SageMaker::Model")["Properties"]
    out[deployment.ENDPOINT] = model["PrimaryContainer"]["Environment"]
    return out


@pytest.fixture
def local_environments(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, str]]:
    """What `posepipe serve` gives each component on a machine whose environment sets nothing."""
    for key in list(os.environ):
        if key.startswith("POSEPIPE_"):
            monkeypatch.delenv(key)
    return LocalStack().component_environments()


def test_every_component_runs_the_same_configuration_deployed_and_local(
    default_app: Synthesized, local_environments: dict[str, dict[str, str]]
) -> None:
    deployed = deployed_environments(default_app)
    assert set(deployed) == set(local_environments) == set(deployment.COMPONENTS)
    for name in deployment.COMPONENTS:
        assert deployment.differences(deployed[name], local_environments[name]) == [], name
        # the top-down engine everywhere: the endpoint's chunks, the functions' requests and images
        assert deployed[name]["POSEPIPE_DETECTOR"] == DEFAULT_DETECTOR == "centernet", name
    endpoint = deployed[deployment.ENDPOINT]
    assert endpoint["POSEPIPE_DEVICE"] == "cuda"  # the deployed endpoint needs its GPU, never the CPU
    assert endpoint["POSEPIPE_ENGINE"] == "auto"
    for name in deployment.FUNCTIONS:
        assert float(deployed[name]["POSEPIPE_FRAME_COST_MS"]) == deployment.GPU_FRAME_COST_MS
        assert deployed[name]["POSEPIPE_MAX_POSES"] == local_environments[name]["POSEPIPE_MAX_POSES"] == "20"


def test_the_comparison_sees_a_difference(
    default_app: Synthesized, local_environments: dict[str, dict[str, str]]
) -> None:
    """The key-by-key comparison can fail: a changed value or a missing key is named."""
    deployed = dict(deployed_environments(default_app)["video_split"])
    local = dict(local_environments["video_split"])
    local["POSEPIPE_CHUNK_SECONDS"] = "5"
    del local["POSEPIPE_DETECTOR"]
    assert deployment.differences(deployed, local) == [
        "POSEPIPE_DETECTOR: only deployed",
        "POSEPIPE_CHUNK_SECONDS: deployed '60', local '5'",
    ]


def test_a_variable_set_before_posepipe_serve_changes_the_local_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POSEPIPE_MAX_VIDEO_SECONDS", "100")
    environments = LocalStack().component_environments()
    assert {environments[name]["POSEPIPE_MAX_VIDEO_SECONDS"] for name in deployment.FUNCTIONS} == {"100"}
