"""Browser-playable H.264 writing with PyAV: :class:`VideoWriter` writes libx264, yuv420p with
colour tags (BT.709 unless told otherwise), in a faststart MP4, with the source's own timestamps
(VFR kept) and, optionally, the source's audio (:class:`posepipe.media.audio.AudioCopier`).

Speed here, 768x576 (RGB -> yuv420p -> libx264, auto threads, crf 23): ~300 fps ``veryfast``
(5 KiB/frame), ~410 ``superfast`` (9 KiB), ~620 ``ultrafast`` (15 KiB).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import av.codec.hwaccel
import av.error
import numpy as np
import numpy.typing as npt
from av.container import OutputContainer
from av.video.reformatter import VideoReformatter

from posepipe.media.audio import AudioCopier
from posepipe.media.colour import BT709_LIMITED, YUVColour
from posepipe.media.decode import RGBArray

log = logging.getLogger(__name__)


class VideoWriter:
    """Write RGB frames as H.264 (libx264, yuv420p) in a faststart MP4 that browsers play.

    Frames keep the caller's timestamps (``pts`` in ``time_base`` units, VFR included); odd
    sizes are padded by one replicated edge pixel to even. With ``audio_from``, that file's
    first audio stream is copied (or transcoded to AAC when MP4 cannot hold its codec), kept
    to the span of the written video and interleaved with it as frames arrive. ``threads``: the
    encoder's and the RGB to 4:2:0 conversion's, 0 for FFmpeg's choice (one per core or more).

    ``colour``: the matrix and range RGB frames are converted with and the stream is tagged with;
    :meth:`write_yuv420p` takes 4:2:0 samples already in that colour (a decoder's own planes),
    which skips both conversions.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        width: int,
        height: int,
        time_base: Fraction,
        fps: float,
        audio_from: str | Path | None = None,
        crf: int = 23,
        preset: str = "veryfast",
        threads: int = 0,
        encoder_options: Mapping[str, str] | None = None,
        colour: YUVColour = BT709_LIMITED,
    ) -> None:
        if width <= 0 or height <= 0:
            raise ValueError(f"bad frame size {width}x{height}")
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"bad fps {fps}")
        self.path = Path(path)
        self.width, self.height = width, height
        self.time_base = Fraction(time_base)
        self._out_w, self._out_h = width + width % 2, height + height % 2
        self._pad = (
            np.empty((self._out_h, self._out_w, 3), dtype=np.uint8)
            if (self._out_w, self._out_h) != (width, height)
            else None
        )
        self._container: OutputContainer = av.open(
            str(self.path), "w", format="mp4", container_options={"movflags": "+faststart"}
        )
        self._closed = False
        try:
            stream = self._container.add_stream(
                "libx264",
                rate=Fraction(fps).limit_denominator(100_000),
                options={"crf": str(crf), "preset": preset, **(encoder_options or {})},
            )
            stream.width, stream.height, stream.pix_fmt = self._out_w, self._out_h, "yuv420p"
            stream.time_base = self.time_base  # the muxer keeps it exactly (mp4 scales it up)
            cc = stream.codec_context
            cc.time_base = self.time_base
            cc.thread_count = threads
            # RGB is converted with the colour's matrix and range, and tagged so: browsers
            # then show the colours the decoder gave us.
            cc.colorspace, cc.color_range = colour.matrix, colour.color_range
            cc.color_primaries = cc.color_trc = colour.primaries
            self._stream = stream
            self._audio = AudioCopier(self._container, Path(audio_from)) if audio_from else None
        except BaseException:
            self._abort()
            raise
        self._reformatter = VideoReformatter()
        self._threads = threads
        self.colour = colour
        self._last_pts: int | None = None
        self._first_t: float | None = None
        self._frames = 0

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort()

    @property
    def frames_written(self) -> int:
        return self._frames

    def write(self, rgb: RGBArray, pts: int) -> None:
        """Encode one (height, width, 3) uint8 RGB frame shown at ``pts`` (in ``time_base``)."""
        self._check_open(pts)
        if rgb.dtype != np.uint8 or rgb.shape != (self.height, self.width, 3):
            raise ValueError(
                f"expected uint8 array of shape {(self.height, self.width, 3)}, got {rgb.dtype} {rgb.shape}"
            )
        if self._pad is not None:
            h, w = self.height, self.width
            self._pad[:h, :w] = rgb
            self._pad[:h, w:] = rgb[:, w - 1 :]
            self._pad[h:] = self._pad[h - 1 : h]
            rgb = self._pad
        # Zero-copy view (half the cost of from_ndarray's copy): the frame dies after reformat.
        frame = av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(rgb), format="rgb24")
        yuv = self._reformatter.reformat(
            frame,
            format="yuv420p",
            dst_colorspace=self.colour.matrix,
            dst_color_range=self.colour.color_range,
            threads=self._threads,
        )
        self._encode(yuv, pts)

    def write_yuv420p(self, planes: npt.NDArray[np.uint8], pts: int) -> None:
        """Encode one frame given as 4:2:0 samples in this writer's :attr:`colour`, laid out as
        PyAV's ``to_ndarray`` gives them (``(height * 3 / 2, width)``: Y, then U, then V); the
        frame's size must be even."""
        self._check_open(pts)
        expected = (self.height * 3 // 2, self.width)
        if self._pad is not None or planes.dtype != np.uint8 or planes.shape != expected:
            raise ValueError(
                f"expected uint8 4:2:0 planes of shape {expected}, got {planes.dtype} {planes.shape}"
            )
        yuv = av.VideoFrame.from_ndarray(planes, format="yuv420p")
        yuv.colorspace, yuv.color_range = self.colour.matrix, self.colour.color_range
        self._encode(yuv, pts)

    def _check_open(self, pts: int) -> None:
        if self._closed:
            raise ValueError("VideoWriter is closed")
        if self._last_pts is not None and pts <= self._last_pts:
            raise ValueError(f"pts must increase: {pts} after {self._last_pts}")

    def _encode(self, yuv: av.VideoFrame, pts: int) -> None:
        yuv.pts, yuv.time_base = pts, self.time_base
        self._container.mux(self._stream.encode(yuv))
        t = float(pts * self.time_base)
        if self._first_t is None:
            self._first_t = t
        self._last_pts = pts
        self._frames += 1
        if self._audio is not None:
            self._audio.pump(self._first_t, t)

    def close(self) -> None:
        """Flush the encoder, add the rest of the audio and finish the file (moov moved first)."""
        if self._closed:
            return
        if self._frames == 0:
            self._abort()
            raise ValueError(f"{self.path}: no frames written")
        try:
            self._container.mux(self._stream.encode(None))
            if self._audio is not None:
                assert self._first_t is not None
                assert self._last_pts is not None
                last = float(self._last_pts * self.time_base)
                # The last frame lasts until the next would come; take the nominal frame rate.
                rate = self._stream.codec_context.framerate
                end = last + (float(1 / rate) if rate else 0.0)
                self._audio.pump(self._first_t, end, final=True)
        finally:
            self._closed = True
            self._container.close()
            if self._audio is not None:
                self._audio.close()

    def _abort(self) -> None:
        """Close everything without finishing the file (after an error)."""
        self._closed = True
        try:
            self._container.close()
        except (av.error.FFmpegError, OSError) as err:  # pragma: no cover - best effort
            log.debug("closing %s after an error: %s", self.path, err)
        audio = getattr(self, "_audio", None)
        if audio is not None:
            audio.close()
