"""What the live mode's parts share: options, an answer, the counters, and the protocols of the
API poster and the performance monitor they are handed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from posepipe.annotation.drawing import DrawOptions
from posepipe.result import Person
from posepipe.ui.client import ImageAnswer
from posepipe.ui.monitor import FrameTiming
from posepipe.ui.settings import LiveSource, UiSettings

RGBFrame = npt.NDArray[np.uint8]
MAX_IN_FLIGHT_LIMIT = 16  # threads of the cloud sender's pool: max_in_flight is capped here
DEFAULT_MAX_SIDE = 640  # frames are scaled down to this longest side before pose estimation
DEFAULT_MAX_AGE_S = 1.0  # persons found in a frame older than this are no longer drawn


def draw_options(height: int, width: int) -> DrawOptions:
    """Lines that read on a small, compressed live video: min side / 120, at least 2 px (stills: / 300)."""
    return DrawOptions(line_thickness=max(2, round(min(height, width) / 120)))


class ImagePoster(Protocol):
    """What the cloud path needs of :class:`posepipe.ui.client.ApiClient`."""

    def post_image(
        self,
        data: bytes,
        content_type: str,
        max_poses: int | None = None,
        annotate: bool = False,
        *,
        model: str = "",
        detector: str = "",
    ) -> ImageAnswer: ...


class FrameMonitor(Protocol):
    """What the frame path tells :class:`posepipe.ui.monitor.PerfMonitor`."""

    def frame_sent(self) -> None: ...

    def frame_dropped(self) -> None: ...

    def frame_rendered(self) -> None: ...

    def record(self, timing: FrameTiming) -> None: ...


@dataclass(frozen=True)
class LiveOptions:
    """The live mode's choices, read afresh for every frame (change them while running)."""

    source: LiveSource = "cloud"
    jpeg_quality: int = 80
    max_in_flight: int = 3
    max_poses: int = 4
    model: str = ""  # the cloud source's POST /images ?model= ("": the API's own)
    detector: str = ""
    smoothing: bool = True
    max_side: int = DEFAULT_MAX_SIDE
    max_age_s: float = DEFAULT_MAX_AGE_S

    def __post_init__(self) -> None:
        if self.source not in ("cloud", "local"):
            raise ValueError(f"source must be cloud or local, not {self.source!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be from 1 to 100, not {self.jpeg_quality}")
        if not 1 <= self.max_in_flight <= MAX_IN_FLIGHT_LIMIT:
            raise ValueError(
                f"max_in_flight must be from 1 to {MAX_IN_FLIGHT_LIMIT}, not {self.max_in_flight}"
            )
        if self.max_poses < 1:
            raise ValueError(f"max_poses must be at least 1, not {self.max_poses}")
        if self.max_side < 32:
            raise ValueError(f"max_side must be at least 32, not {self.max_side}")

    @classmethod
    def from_settings(cls, settings: UiSettings) -> LiveOptions:
        return cls(
            source=settings.live_source,
            jpeg_quality=settings.jpeg_quality,
            max_in_flight=min(settings.max_in_flight, MAX_IN_FLIGHT_LIMIT),
            max_poses=settings.max_poses,
            model=settings.model,
            detector=settings.detector,
            smoothing=settings.smoothing,
        )


@dataclass(frozen=True)
class PoseAnswer:
    """The persons of one frame, from either source, in pixels of the frame as captured.

    ``seq``: the frame's number in the stream; ``captured_s``: when it was offered (the source's
    clock); the seconds are this frame's share of each stage (``encode_s`` and ``network_s`` are
    0 for the local engine; ``inference_s`` is the server's time, or the local engine's).
    """

    seq: int
    captured_s: float
    source: LiveSource
    persons: list[Person]
    encode_s: float = 0.0
    network_s: float = 0.0
    inference_s: float = 0.0


@dataclass(frozen=True)
class LiveStats:
    """What the page shows of the frame path besides the monitor.

    ``answers``: answers accepted (drawn at least once, or to be); ``stale``: answers discarded
    because a newer frame's had already arrived; ``skeleton_frames``: frames returned with at
    least one skeleton drawn; ``latest_source``: where the latest answer came from (``None``
    before the first); ``persons``: the persons of the latest answer (0 when it is too old
    to draw); ``errors`` and ``last_error``: failed requests or inferences, and the latest
    message.
    """

    source: LiveSource
    latest_source: LiveSource | None
    frames: int
    answers: int
    stale: int
    skeleton_frames: int
    persons: int
    in_flight: int
    errors: int
    last_error: str | None
