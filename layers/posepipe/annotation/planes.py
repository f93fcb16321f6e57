"""Drawing persons over a decoded 4:2:0 frame in place: only the regions a drawing touches are
converted to RGB, drawn and converted back; the rest keeps the decoder's samples as they are.

Rendering a frame through RGB costs two full-frame conversions (4:2:0 to RGB for drawing, RGB
to 4:2:0 for the encoder), about 0.7 ms each at 768x576 on one core here, more than drawing and
as much as encoding with libx264 ``ultrafast``. A skeleton covers a few percent of a frame, and
many frames have nobody to draw.
"""

from __future__ import annotations

from collections.abc import Sequence

import av
import numpy as np
import numpy.typing as npt
from av.video.reformatter import VideoReformatter

from posepipe.annotation.drawing import Box, DrawOptions, draw_persons, drawn_boxes
from posepipe.media.colour import YUVColour
from posepipe.result import Person


def even_disjoint_boxes(boxes: Sequence[Box], frame_size: tuple[int, int]) -> list[Box]:
    """The boxes grown to even edges (4:2:0 chroma covers 2x2 pixels) within the frame, and
    merged until no two overlap."""
    height, width = frame_size
    grown = [
        (x0 - x0 % 2, y0 - y0 % 2, min(width, x1 + x1 % 2), min(height, y1 + y1 % 2))
        for x0, y0, x1, y1 in boxes
    ]
    merged: list[Box] = []
    for box in grown:
        while True:
            overlapping = next((other for other in merged if _overlap(box, other)), None)
            if overlapping is None:
                break
            merged.remove(overlapping)
            box = (
                min(box[0], overlapping[0]),
                min(box[1], overlapping[1]),
                max(box[2], overlapping[2]),
                max(box[3], overlapping[3]),
            )
        merged.append(box)
    return merged


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


class PlaneAnnotator:
    """Draws over frames of one size and colour given as PyAV's 4:2:0 layout
    (``(height * 3 / 2, width)``: Y, then U, then V; even sizes)."""

    def __init__(self, frame_size: tuple[int, int], colour: YUVColour) -> None:
        height, width = frame_size
        if height % 2 or width % 2:
            raise ValueError(f"4:2:0 frames are drawn in place only at even sizes, not {width}x{height}")
        self.frame_size, self.colour = frame_size, colour
        self._to_rgb = VideoReformatter()
        self._to_yuv = VideoReformatter()

    def draw(
        self,
        planes: npt.NDArray[np.uint8],
        persons: Sequence[Person],
        options: DrawOptions,
        *,
        frame_index: int | None = None,
        fps: float | None = None,
        note: str | None = None,
    ) -> None:
        """What :func:`posepipe.annotation.drawing.draw_persons` would draw, in ``planes``."""
        height, width = self.frame_size
        expected = (height * 3 // 2, width)
        if planes.dtype != np.uint8 or planes.shape != expected:
            raise ValueError(f"expected uint8 4:2:0 planes of shape {expected}, got {planes.shape}")
        own = [drawn_boxes(self.frame_size, [person], options) for person in persons]
        overlay = drawn_boxes(self.frame_size, [], options, frame_index=frame_index, fps=fps, note=note)
        boxes = [box for person_boxes in own for box in person_boxes] + overlay
        for region in even_disjoint_boxes(boxes, self.frame_size):
            inside = [p for p, its in zip(persons, own, strict=True) if any(_overlap(b, region) for b in its)]
            rgb = self._region_rgb(planes, region)
            draw_persons(
                rgb, inside, options, frame_index=frame_index, fps=fps, note=note, inplace=True,
                origin=(region[0], region[1]), frame_size=self.frame_size,
            )  # fmt: skip
            self._put_region(planes, region, rgb)

    def _views(
        self, planes: npt.NDArray[np.uint8]
    ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
        height, width = self.frame_size
        chroma = planes[height:].reshape(2, height // 2, width // 2)
        return planes[:height], chroma[0], chroma[1]

    def _region_rgb(self, planes: npt.NDArray[np.uint8], region: Box) -> npt.NDArray[np.uint8]:
        x0, y0, x1, y1 = region
        y, u, v = self._views(planes)
        crop = np.concatenate(
            [y[y0:y1, x0:x1].ravel(), u[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2].ravel(),
             v[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2].ravel()]
        ).reshape(-1, x1 - x0)  # fmt: skip
        frame = av.VideoFrame.from_ndarray(crop, format="yuv420p")
        frame.colorspace, frame.color_range = self.colour.matrix, self.colour.color_range
        rgb = self._to_rgb.reformat(frame, format="rgb24", threads=1).to_ndarray()
        return np.ascontiguousarray(rgb, dtype=np.uint8)

    def _put_region(self, planes: npt.NDArray[np.uint8], region: Box, rgb: npt.NDArray[np.uint8]) -> None:
        x0, y0, x1, y1 = region
        frame = av.VideoFrame.from_numpy_buffer(rgb, format="rgb24")
        yuv = self._to_yuv.reformat(
            frame, format="yuv420p", dst_colorspace=self.colour.matrix,
            dst_color_range=self.colour.color_range, threads=1,
        ).to_ndarray().ravel()  # fmt: skip
        w, h = x1 - x0, y1 - y0
        y, u, v = self._views(planes)
        luma, chroma = w * h, (w // 2) * (h // 2)
        y[y0:y1, x0:x1] = yuv[:luma].reshape(h, w)
        u[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = yuv[luma : luma + chroma].reshape(h // 2, w // 2)
        v[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = yuv[luma + chroma :].reshape(h // 2, w // 2)
