"""The result format's frames that were not processed (their chunk failed): in the dataclasses, the
JSON Schema, the exports and the annotated video, never to be read as "nobody there"."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pytest
from posepipe.export.coco import to_coco
from posepipe.result import Frame, Person, PoseResult, Source, validate_result
from posepipe.skeleton import NUM_LANDMARKS

from tests.support.paths import REPO


def person() -> Person:
    landmarks = np.zeros((NUM_LANDMARKS, 5), dtype=np.float32)
    landmarks[:, 0] = np.linspace(10, 50, NUM_LANDMARKS)
    landmarks[:, 1] = np.linspace(20, 200, NUM_LANDMARKS)
    landmarks[:, 3:] = 0.9
    return Person(
        landmarks=landmarks, world_landmarks=np.zeros((NUM_LANDMARKS, 3), np.float32), score=0.9, id=0
    )


def result(frames: list[Frame]) -> PoseResult:
    source = Source(uri="clip.mp4", width=64, height=240, fps=10.0, frame_count=len(frames), duration_s=0.3)
    return PoseResult(source=source, model={"name": "pose_landmarker_full"}, frames=frames)


def test_a_frame_not_processed_says_so_and_round_trips() -> None:
    frames = [Frame(0, 0.0, [person()]), Frame(1, 0.1, processed=False), Frame(2, 0.2, [])]
    data = result(frames).to_dict()
    validate_result(data)
    assert [f.get("processed") for f in data["frames"]] == [None, False, None]  # only where it is false
    again = PoseResult.from_dict(json.loads(json.dumps(data)))
    assert [f.processed for f in again.frames] == [True, False, True]
    assert [len(f.persons) for f in again.frames] == [1, 0, 0]
    assert [f.person_count for f in again.frames] == [1, None, 0]  # nobody looked / nobody there


def test_a_frame_not_processed_has_no_persons() -> None:
    with pytest.raises(ValueError, match="frame 4: a frame that was not processed has no persons"):
        Frame(4, 0.4, [person()], processed=False)
    data = result([Frame(0, 0.0, [person()])]).to_dict()
    data["frames"][0]["processed"] = False
    with pytest.raises(jsonschema.ValidationError):
        validate_result(data)
    data["frames"][0]["processed"] = "no"
    with pytest.raises(jsonschema.ValidationError):
        validate_result(data)


def test_coco_leaves_out_the_frames_not_processed() -> None:
    coco = to_coco(
        result([Frame(0, 0.0, [person()]), Frame(1, 0.1, processed=False), Frame(2, 0.2)]).to_dict()
    )
    assert [image["frame_index"] for image in coco["images"]] == [0, 2]  # frame 2: processed, nobody
    assert [a["image_id"] for a in coco["annotations"]] == [1]


def test_the_schema_documents_the_flag() -> None:
    schema = json.loads((REPO / "layers/posepipe/schemas/pose.schema.json").read_text())
    processed = schema["properties"]["frames"]["items"]["properties"]["processed"]
    assert processed["type"] == "boolean"
    assert processed["default"] is True
    assert "not mean that nobody was there" in processed["description"]
