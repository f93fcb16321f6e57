"""``posepipe image`` and the image Lambda: pose estimation on single images, one engine loaded once."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from posepipe.annotation.drawing import DrawOptions, draw_persons
from posepipe.engines.base import InferenceOptions, PoseEstimator, RunningMode
from posepipe.engines.choice import open_pose_engine
from posepipe.media.images import DEFAULT_MAX_PIXELS, LoadedImage, annotated_suffix, encode_image, load_image
from posepipe.outputs import write_files_atomically
from posepipe.result import Frame, Person, PoseResult, Source

# The rotation part of each EXIF orientation (clockwise degrees to display); 2, 4, 5 and 7 also
# mirror the picture, which Pillow undoes too.
_EXIF_ROTATION = {1: 0, 2: 0, 3: 180, 4: 180, 5: 270, 6: 90, 7: 90, 8: 270}


@dataclass(frozen=True)
class ImageJobOptions:
    inference: InferenceOptions = field(default_factory=InferenceOptions)
    annotate: bool = True
    max_pixels: int = DEFAULT_MAX_PIXELS
    draw: DrawOptions = field(default_factory=DrawOptions)


def image_result(image: LoadedImage, persons: list[Person], uri: str, model: dict[str, Any]) -> PoseResult:
    """The result of one image; persons are numbered in MediaPipe's order."""
    for person_id, person in enumerate(persons):
        person.id = person_id
    source = Source(
        uri=uri,
        width=image.width,
        height=image.height,
        fps=None,
        frame_count=1,
        duration_s=None,
        rotation=_EXIF_ROTATION.get(image.exif_orientation, 0),
    )
    return PoseResult(source=source, model=model, frames=[Frame(index=0, t=0.0, persons=persons)])


class ImageJob:
    """Pose estimation on single images with one engine loaded once (IMAGE mode)."""

    def __init__(self, options: ImageJobOptions | None = None) -> None:
        self.options = options or ImageJobOptions()
        self.engine: PoseEstimator = open_pose_engine(
            self.options.inference.engine_options(RunningMode.IMAGE)
        )

    def run(self, data: str | Path | bytes, uri: str) -> tuple[PoseResult, bytes | None, str]:
        """Result, annotated image bytes (``None`` unless annotating) and the annotated suffix."""
        image = load_image(data, source=uri, max_pixels=self.options.max_pixels)
        persons = self.engine.detect(image.rgb)
        result = image_result(image, persons, uri, self.engine.model_dict())
        annotated = None
        if self.options.annotate:
            drawn = draw_persons(image.rgb, result.frames[0].persons, self.options.draw)
            annotated = encode_image(drawn, image.format)
        return result, annotated, annotated_suffix(image.format)

    def write(self, path: Path, out_dir: Path) -> list[Path]:
        """Write ``<stem>.pose.json`` (and ``<stem>.annotated.<ext>``) for ``path``; both or neither."""
        result, annotated, suffix = self.run(path, str(path))
        files = {out_dir / f"{path.stem}.pose.json": _json_bytes(result.to_dict())}
        if annotated is not None:
            files[out_dir / f"{path.stem}.annotated{suffix}"] = annotated
        write_files_atomically(files)
        return list(files)

    def close(self) -> None:
        self.engine.close()


def _json_bytes(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode("utf-8")
