"""Frame-accurate decoding with PyAV: :func:`read_frames` yields upright RGB frames
``[start, stop)``, seeking to the keyframe before ``start`` (the pixels are bit-identical to
decoding from the first frame).

``read_frames(..., hwaccel="auto")`` decodes on the GPU (NVDEC, through FFmpeg's CUDA hwaccel)
when this FFmpeg build, the machine and the codec allow it, and in software otherwise; a
:class:`DecodeReport` says which ran and why.

Speed on the 2-core dev machine (noisy; orders of magnitude), vtest.avi (768x576 msmpeg4v3):
decode only ~4,300 fps; :func:`read_frames` (decode + RGB) ~1,400-1,500 fps with ``threads=1``
or auto alike. An H.264 encoding of the same frames decodes at ~550 fps on one thread.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import av.codec.hwaccel
import av.error
import numpy as np
import numpy.typing as npt
from av.container import InputContainer
from av.video.reformatter import VideoReformatter
from av.video.stream import VideoStream

from posepipe.errors import InputError
from posepipe.media.probe import VideoInfo, probe, video_stream
from posepipe.media.sources import MediaSource, open_input, source_name

log = logging.getLogger(__name__)


RGBArray = npt.NDArray[np.uint8]


# How far back (in frames) read_frames first retries when a seek lands after the start frame.
_SEEK_BACKOFF = 8


@dataclass
class VideoFrame:
    """One decoded frame: ``rgb`` is upright (rotation applied), C-contiguous uint8 (H, W, 3).

    ``compact`` (when :func:`read_frames` was asked for it) is the same frame as the decoder gave
    it, to be kept in less memory and made RGB later (:func:`expand_frames`)."""

    index: int
    t: float
    rgb: RGBArray
    compact: CompactFrame | None = None


# The decoder formats a frame is kept in as they are (their planes in one array, as PyAV's
# to_ndarray gives them); 4:2:0 is half the bytes of RGB.
COMPACT_FORMATS = frozenset({"yuv420p", "yuvj420p", "nv12"})


@dataclass(frozen=True)
class CompactFrame:
    """A decoded frame in the decoder's own pixel format, with the colour tags its conversion to
    RGB reads: :func:`expand_frames` turns it into the very RGB :func:`read_frames` gave."""

    index: int
    t: float
    planes: npt.NDArray[np.uint8]
    pixel_format: str
    colorspace: int
    color_range: int

    @classmethod
    def of(cls, index: int, t: float, frame: av.VideoFrame) -> CompactFrame | None:
        """The frame kept compact, or None when its format is not one of :data:`COMPACT_FORMATS`."""
        name = frame.format.name
        if name not in COMPACT_FORMATS:
            return None
        planes = np.asarray(frame.to_ndarray(), dtype=np.uint8)
        return cls(index, t, planes, name, int(frame.colorspace), int(frame.color_range))


def expand_frames(frames: Iterable[CompactFrame], rotation: int, threads: int = 1) -> Iterator[VideoFrame]:
    """Compact frames back to upright RGB, pixel for pixel as :func:`read_frames` converted them
    (``threads``: swscale's, 0 for one per core; the pixels are the same with any number)."""
    to_rgb = _RGBConverter(rotation, threads)
    for kept in frames:
        frame = av.VideoFrame.from_ndarray(kept.planes, format=kept.pixel_format)
        frame.colorspace = kept.colorspace
        frame.color_range = kept.color_range
        yield VideoFrame(index=kept.index, t=kept.t, rgb=to_rgb(frame))


HWAccelChoice = Literal["none", "auto"]
HWACCEL_CHOICES: tuple[HWAccelChoice, ...] = ("none", "auto")
SOFTWARE = "software"
NVDEC = "nvdec"

# Why NVDEC cannot be had in this process (no CUDA device or driver), once found out: later
# opens go straight to software instead of failing again.
_nvdec_unavailable: str | None = None


@dataclass
class DecodeReport:
    """How :func:`read_frames` decoded: ``decoder`` is ``"nvdec"`` or ``"software"``; ``reason``
    says why software ran when ``hwaccel="auto"`` asked for hardware (empty otherwise)."""

    decoder: str = ""
    reason: str = ""


def nvdec_unavailable_reason() -> str | None:
    """Why NVDEC is known not to work in this process (None: not known to fail, maybe untried)."""
    if "cuda" not in av.codec.hwaccel.hwdevices_available():
        return "this FFmpeg build has no CUDA hwaccel"
    return _nvdec_unavailable


def _open_with_nvdec(path: str) -> tuple[InputContainer | None, str]:
    """The container opened with FFmpeg's CUDA hwaccel when its video stream decodes on NVDEC;
    else ``(None, why not)``. Frames are copied back to system memory (``nv12``)."""
    global _nvdec_unavailable
    unavailable = nvdec_unavailable_reason()
    if unavailable is not None:
        return None, unavailable
    accel = av.codec.hwaccel.HWAccel("cuda", allow_software_fallback=True)
    try:
        container = av.open(path, "r", metadata_errors="replace", hwaccel=accel)
    except (av.error.FFmpegError, OSError) as err:
        # The CUDA device could not be made (no GPU, no driver: EPERM from FFmpeg), or the file
        # cannot be opened at all; the software open that follows tells which.
        reason = f"no CUDA device for NVDEC ({err})"
        try:
            av.open(path, "r", metadata_errors="replace").close()
        except (av.error.FFmpegError, OSError):
            return None, reason  # the file itself: not a fact about the machine
        _nvdec_unavailable = reason
        log.info("NVDEC unavailable, decoding in software from now on: %s", reason)
        return None, reason
    stream = video_stream(container)
    if stream is not None and getattr(stream, "codec_context", None) is not None:
        if stream.codec_context.is_hwaccel:
            return container, ""
        reason = f"NVDEC does not decode {stream.codec.canonical_name}"
    else:
        reason = "no video stream"
    container.close()
    return None, reason


def read_frames(
    path: MediaSource,
    start: int = 0,
    stop: int | None = None,
    *,
    info: VideoInfo | None = None,
    threads: int = 0,
    hwaccel: HWAccelChoice = "none",
    report: DecodeReport | None = None,
    compact: bool = False,
) -> Iterator[VideoFrame]:
    """Yield frames ``[start, stop)`` in presentation order, upright RGB (with ``compact``, each
    also as a :class:`CompactFrame` where its format allows).

    Seeks to the keyframe at or before ``start`` and decodes forward, dropping earlier frames,
    so frames are bit-identical to a decode from the first frame. ``info`` (from
    :func:`probe`) saves a probe. ``threads``: decoder threads, 0 for FFmpeg's choice. Holds
    only the frames the decoder needs. Packets that fail to decode are skipped (logged).

    ``hwaccel="auto"`` decodes on NVDEC when FFmpeg has CUDA support, a CUDA device can be
    opened and NVDEC takes the codec; else in software (the first failure to open a device is
    logged and remembered for the process). The frames are copied back to the CPU and converted
    as any other, so they are the software decoder's pixels (H.264 and HEVC decoding is exact).
    ``report`` is filled in when decoding starts.
    """
    if info is None:
        if not isinstance(path, (str, Path)):
            raise ValueError("reading frames from a file object needs its info (probe it first)")
        info = probe(path)
    to_rgb = _RGBConverter(info.rotation)
    for index, t, frame in _decoded(path, start, stop, info, threads, hwaccel, report):
        kept = CompactFrame.of(index, t, frame) if compact else None
        yield VideoFrame(index=index, t=t, rgb=to_rgb(frame), compact=kept)


def read_compact_frames(
    path: MediaSource, start: int = 0, stop: int | None = None, *, info: VideoInfo, threads: int = 0
) -> Iterator[CompactFrame | VideoFrame]:
    """Frames ``[start, stop)`` as :func:`read_frames` decodes them, each kept as the decoder gave
    it (a :class:`CompactFrame`: no conversion to RGB) where its format allows, else upright RGB."""
    to_rgb = _RGBConverter(info.rotation)
    for index, t, frame in _decoded(path, start, stop, info, threads, "none", None):
        kept = CompactFrame.of(index, t, frame)
        yield kept if kept is not None else VideoFrame(index=index, t=t, rgb=to_rgb(frame))


def _decoded(
    path: MediaSource,
    start: int,
    stop: int | None,
    info: VideoInfo,
    threads: int,
    hwaccel: HWAccelChoice,
    report: DecodeReport | None,
) -> Iterator[tuple[int, float, av.VideoFrame]]:
    """The decoder's frames ``[start, stop)`` with their index and time (see :func:`read_frames`)."""
    if start < 0 or (stop is not None and stop < 0):
        raise ValueError(f"start and stop must be >= 0, got {start}, {stop}")
    if threads < 0:
        raise ValueError(f"threads must be >= 0, got {threads}")
    if hwaccel not in HWACCEL_CHOICES:
        raise ValueError(f"hwaccel must be one of {', '.join(HWACCEL_CHOICES)}, not {hwaccel!r}")
    end = info.frame_count if stop is None else min(stop, info.frame_count)
    if start >= end:
        return
    report = report if report is not None else DecodeReport()
    container, stream = _open_for_decoding(path, threads, hwaccel, report)
    try:
        frames = _seek(container, stream, info, start) if start > 0 and info.exact_pts else None
        if frames is None:  # decode from the first frame; reopen, as a failed seek leaves no telling where
            if start > 0 and info.exact_pts:
                container.close()
                container, stream = _open_for_decoding(path, threads, hwaccel, report)
            frames = _decode(container, stream)
        for index, frame in _number(frames, info):
            if index >= end:
                break
            if index >= start:
                yield index, _frame_time(frame, info, index), frame
    finally:
        container.close()


def _open_for_decoding(
    path: MediaSource, threads: int, hwaccel: HWAccelChoice = "none", report: DecodeReport | None = None
) -> tuple[InputContainer, VideoStream]:
    container: InputContainer | None = None
    reason = ""
    if hwaccel == "auto" and isinstance(path, (str, Path)):
        container, reason = _open_with_nvdec(str(path))
    elif hwaccel == "auto":
        reason = "NVDEC decodes files on disk only"
    decoder = NVDEC if container is not None else SOFTWARE
    if container is None:
        container = open_input(path)
    if report is not None:
        report.decoder, report.reason = decoder, reason
    log.debug("%s: decoding with %s%s", source_name(path), decoder, f" ({reason})" if reason else "")
    stream = video_stream(container)
    if stream is None:
        container.close()
        raise InputError(source_name(path), "no video stream")
    stream.codec_context.thread_type = "AUTO"
    stream.codec_context.thread_count = threads
    return container, stream


class _RGBConverter:
    """Decoded frame to upright, C-contiguous RGB.

    One reused swscale context with one thread: ~1,500 fps at 768x576 here, against ~1,250 for
    ``frame.to_ndarray(format="rgb24")`` (which builds a new context per frame) and less with
    swscale's own threads (the decoder already has the other core).
    """

    def __init__(self, rotation: int, threads: int = 1) -> None:
        self._reformatter = VideoReformatter()
        self._threads = threads
        self._turns = {0: 0, 90: -1, 180: 2, 270: 1}[rotation]  # np.rot90 turns (CCW positive)

    def __call__(self, frame: av.VideoFrame) -> RGBArray:
        rgb = self._reformatter.reformat(frame, format="rgb24", threads=self._threads).to_ndarray()
        if self._turns:
            rgb = np.rot90(rgb, self._turns)
        # to_ndarray can return a strided view (row padding); consumers need dense rows.
        return np.ascontiguousarray(rgb, dtype=np.uint8)


def _frame_time(frame: av.VideoFrame, info: VideoInfo, index: int) -> float:
    if info.exact_pts and frame.pts is not None:
        return float(frame.pts * info.time_base)
    return info.frame_time(index)


def _seek(
    container: InputContainer, stream: VideoStream, info: VideoInfo, start: int
) -> Iterator[av.VideoFrame] | None:
    """Frames from the keyframe at or before frame ``start``, or None if seeking cannot get there.

    A seek may land after ``start`` (with B-frames the demuxer's index holds decode times, and
    MPEG-TS seeks by bisecting bytes) or on a non-keyframe: then it retries further back.
    """
    back = 0
    while True:
        seek_index = max(0, start - back)
        container.seek(info.frame_pts[seek_index], backward=True, any_frame=False, stream=stream)
        frames = _decode(container, stream)
        first = next(frames, None)
        if first is not None:
            first_index = _pts_index(info, first.pts)
            if first_index is not None and first_index <= start and first.key_frame:
                return _chain(first, frames)
        if seek_index == 0:
            return None
        back = _SEEK_BACKOFF if back == 0 else back * 2


def _chain(first: av.VideoFrame, rest: Iterator[av.VideoFrame]) -> Iterator[av.VideoFrame]:
    yield first
    yield from rest


def _number(frames: Iterator[av.VideoFrame], info: VideoInfo) -> Iterator[tuple[int, av.VideoFrame]]:
    """Index frames by their pts (robust to dropped frames), else by counting."""
    previous = -1
    for frame in frames:
        index = _pts_index(info, frame.pts) if info.exact_pts else None
        if index is None:
            index = previous + 1
        previous = index
        yield index, frame


def _pts_index(info: VideoInfo, pts: int | None) -> int | None:
    if pts is None:
        return None
    i = bisect_left(info.frame_pts, pts)
    return i if i < len(info.frame_pts) and info.frame_pts[i] == pts else None


def _decode(container: InputContainer, stream: VideoStream) -> Iterator[av.VideoFrame]:
    """Decode ``stream`` from the container's position to the end, skipping bad packets."""
    for packet in container.demux(stream):
        if packet.size == 0 and (packet.pts is not None or packet.dts is not None):
            continue  # a stored empty packet (AVI dropped frame): would read as end of stream
        try:
            frames = stream.decode(packet if packet.size else None)
        except av.error.FFmpegError as err:
            log.warning(
                "%s: skipping a packet that does not decode (pts %s): %s", container.name, packet.pts, err
            )
            continue
        yield from frames
