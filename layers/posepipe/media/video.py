"""Video in and out with PyAV: probe, frame-accurate reading, browser-playable H.264 writing.

* :func:`probe` demuxes the whole video stream once (no decoding; it reads the file) to get the
  exact frame count and every frame's timestamp, decodes the first frame to prove the stream
  decodes, and turns every way a file can be unusable into an :class:`InputError` that says why.
* :func:`read_frames` yields upright RGB frames ``[start, stop)``, seeking to the keyframe
  before ``start``: the pixels are bit-identical to decoding from the first frame.
* ``read_frames(..., hwaccel="auto")`` decodes on the GPU (NVDEC, through FFmpeg's CUDA
  hwaccel) when this FFmpeg build, the machine and the codec allow it, and in software otherwise;
  a :class:`DecodeReport` says which ran and why.
* :class:`VideoWriter` writes H.264 (libx264, yuv420p, BT.709 tags) in a faststart MP4 with
  the source's own timestamps (VFR kept) and, optionally, the source's audio.

Speed on the 2-core dev machine (noisy; orders of magnitude), vtest.avi (768x576 msmpeg4v3,
795 frames): probe ~5-10 ms; decode only ~4,300 fps; :func:`read_frames` (decode + RGB)
~1,400-1,500 fps with ``threads=1`` or auto alike (the RGB conversion dominates). Encoding
768x576 with :class:`VideoWriter` (RGB -> yuv420p -> libx264, auto threads, crf 23): ~300 fps
``veryfast`` (5 KiB/frame), ~410 ``superfast`` (9 KiB), ~620 ``ultrafast`` (15 KiB). All far
faster than the pose model (~70 fps).
"""

from __future__ import annotations

import logging
import math
from bisect import bisect_left
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise
from pathlib import Path
from types import TracebackType
from typing import Literal

import av
import av.codec.hwaccel
import av.error
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer
from av.packet import Packet
from av.video.reformatter import ColorRange, Colorspace, VideoReformatter
from av.video.stream import VideoStream

from posepipe.errors import InputError
from posepipe.result import Source

__all__ = [
    "HWACCEL_CHOICES",
    "DecodeReport",
    "HWAccelChoice",
    "VideoFrame",
    "VideoInfo",
    "VideoWriter",
    "probe",
    "read_frames",
]

log = logging.getLogger(__name__)

RGBArray = npt.NDArray[np.uint8]

# Audio codecs the MP4 muxer takes as they are (stream copy); anything else becomes AAC.
MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "opus", "alac", "ac3", "eac3", "flac"})

# Containers whose header declares the frame count exactly (the MP4/MOV sample table): fewer
# packets than declared means the file was cut short. (AVI's header declares a length in frame
# periods instead, which gaps in the timestamps make larger than the packet count.)
_SAMPLE_TABLE_FORMATS = frozenset({"mov", "mp4"})

# First box types of an ISO BMFF (MP4/MOV) file.
_ISOBMFF_BOXES = frozenset(
    {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid", b"styp", b"sidx", b"moof"}
)

# How far back (in frames) read_frames first retries when a seek lands after the start frame.
_SEEK_BACKOFF = 8

# Audio packets this close (seconds) outside the written video's span are still kept.
_AUDIO_MARGIN_S = 0.05


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learnt about a video file's (first) video stream.

    ``width``/``height`` are of the upright, displayed frame; ``coded_width``/``coded_height``
    of the frame as stored and decoded (before ``rotation``). ``frame_count`` and
    ``frame_pts`` come from demuxing every packet, not from the header. ``exact_pts`` is
    False when the stream's packets lack usable timestamps (missing or repeated); then
    ``frame_pts`` are synthesised from ``fps`` and :func:`read_frames` does not seek.
    """

    uri: str
    codec: str
    width: int
    height: int
    coded_width: int
    coded_height: int
    fps: float
    frame_count: int
    duration_s: float
    rotation: int
    pix_fmt: str
    has_audio: bool
    audio_codec: str | None
    time_base: Fraction
    frame_pts: tuple[int, ...]
    exact_pts: bool = True

    def to_source(self) -> Source:
        return Source(
            uri=self.uri,
            width=self.width,
            height=self.height,
            fps=self.fps,
            frame_count=self.frame_count,
            duration_s=self.duration_s,
            rotation=self.rotation,
        )

    def frame_time(self, index: int) -> float:
        """Seconds of frame ``index`` on the stream's own clock (``frame_pts[index] * time_base``)."""
        return float(self.frame_pts[index] * self.time_base)


@dataclass
class VideoFrame:
    """One decoded frame: ``rgb`` is upright (rotation applied), C-contiguous uint8 (H, W, 3)."""

    index: int
    t: float
    rgb: RGBArray


# --------------------------------------------------------------------------------------------
# probe


def probe(path: str | Path) -> VideoInfo:
    """Describe a video file exactly, or raise :class:`InputError` saying why it is unusable."""
    file = Path(path)
    source = str(path)
    _check_file(file, source)
    try:
        container = av.open(source, "r", metadata_errors="replace")
    except av.error.FFmpegError as err:
        raise InputError(source, _open_failure_reason(file, err)) from err
    except UnicodeDecodeError as err:  # pragma: no cover - metadata_errors="replace" prevents it
        raise InputError(source, f"not a video file: {err}") from err
    with container:
        if container.format.name == "image2" or container.format.name.endswith("_pipe"):
            # FFmpeg's still-image readers make a photo a one-frame "video".
            raise InputError(source, "a still image, not a video (use `posepipe image`)")
        stream = _video_stream(container)
        if stream is None:
            if container.streams.audio:
                raise InputError(source, "no video stream (audio only)")
            raise InputError(source, "no video stream")
        if getattr(stream, "codec_context", None) is None:  # PyAV leaves it unset without a decoder
            raise InputError(source, "unsupported video codec (this FFmpeg build has no decoder for it)")
        audio = container.streams.audio[0] if container.streams.audio else None
        scan = _scan(container, stream)
        _check_scan(scan, stream, container, source)
        assert scan.first_frame is not None  # _check_scan guarantees it

        time_base = stream.time_base or Fraction(1, 90000)
        first = scan.first_frame
        rotation = _rotation(first.rotation, stream.metadata.get("rotate"))
        coded_w, coded_h = first.width, first.height
        width, height = (coded_h, coded_w) if rotation in (90, 270) else (coded_w, coded_h)
        count = len(scan.pts)

        exact = all(p is not None for p in scan.pts)
        pts = sorted(p for p in scan.pts if p is not None) if exact else []
        exact = exact and all(b > a for a, b in pairwise(pts))
        rate = stream.average_rate or stream.guessed_rate
        if exact:
            # The last frame lasts its packet's duration, else the mean gap, else 1/rate.
            gap = float(scan.last_duration or (pts[-1] - pts[0]) / max(1, count - 1))
            if not gap and rate:
                gap = float(1 / (rate * time_base))
            duration_s = float((pts[-1] - pts[0] + gap) * time_base)
            fps = float(rate) if rate else (count / duration_s if duration_s > 0 else 0.0)
        else:
            fps = float(rate) if rate else 25.0
            start = next((p for p in scan.pts if p is not None), 0) or 0
            pts = [start + round(i / fps / time_base) for i in range(count)]
            duration_s = count / fps
        return VideoInfo(
            uri=source,
            codec=stream.codec.canonical_name,
            width=width,
            height=height,
            coded_width=coded_w,
            coded_height=coded_h,
            fps=fps,
            frame_count=count,
            duration_s=duration_s,
            rotation=rotation,
            pix_fmt=stream.codec_context.pix_fmt or first.format.name,
            has_audio=audio is not None,
            audio_codec=audio.codec.canonical_name if audio is not None else None,
            time_base=time_base,
            frame_pts=tuple(pts),
            exact_pts=exact,
        )


@dataclass
class _Scan:
    pts: list[int | None]  # of packets with data, in demux (decode) order
    packets: int = 0  # every packet the demuxer returned, empty ones included
    corrupt_at: int | None = None
    top_pts: int | None = None  # the highest pts
    last_duration: int = 0  # duration of the packet with the highest pts
    first_frame: av.VideoFrame | None = None
    decode_error: str | None = None


def _check_file(file: Path, source: str) -> None:
    try:
        stat = file.stat()
    except FileNotFoundError:
        raise InputError(source, "file not found") from None
    except OSError as err:
        raise InputError(source, f"cannot read file: {err.strerror or err}") from err
    if not file.is_file():
        raise InputError(source, "not a regular file")
    if stat.st_size == 0:
        raise InputError(source, "file is empty (0 bytes)")


def _video_stream(container: InputContainer) -> VideoStream | None:
    """The first real video stream (cover art in audio files is not video)."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def _scan(container: InputContainer, stream: VideoStream) -> _Scan:
    """Demux every packet of ``stream``; decode only until the first frame comes out."""
    scan = _Scan(pts=[])
    for packet in container.demux(stream):
        if packet.size == 0:
            if packet.pts is not None or packet.dts is not None:
                scan.packets += 1  # an empty packet the container stores (AVI "dropped frame")
            continue  # else: the demuxer's end-of-stream marker
        scan.packets += 1
        if packet.is_corrupt and scan.corrupt_at is None:
            scan.corrupt_at = scan.packets
        ts = packet.pts if packet.pts is not None else packet.dts
        scan.pts.append(ts)
        if ts is not None and (scan.top_pts is None or ts > scan.top_pts):
            scan.top_pts, scan.last_duration = ts, packet.duration or 0
        if scan.first_frame is None and scan.decode_error is None:
            scan.first_frame, scan.decode_error = _decode_first(stream, packet)
    if scan.first_frame is None and scan.decode_error is None and scan.pts:
        scan.first_frame, scan.decode_error = _decode_first(stream, None)
    return scan


def _decode_first(
    stream: VideoStream, packet: Packet[VideoStream] | None
) -> tuple[av.VideoFrame | None, str | None]:
    try:
        frames = stream.decode(packet)
    except av.error.FFmpegError as err:
        return None, _ffmpeg_message(err)
    return (frames[0] if frames else None), None


def _check_scan(scan: _Scan, stream: VideoStream, container: InputContainer, source: str) -> None:
    """Raise the most telling :class:`InputError` for a scan, if anything is wrong."""
    if not scan.pts:
        raise InputError(source, "no decodable video frames (the video stream is empty)")
    if scan.corrupt_at is not None:
        where = "the last frame" if scan.corrupt_at == scan.packets else f"frame {scan.corrupt_at}"
        raise InputError(
            source, f"truncated or corrupt video: data of {where} is incomplete (file cut short?)"
        )
    declared = stream.frames
    formats = set(container.format.name.split(","))
    if declared > scan.packets and formats & _SAMPLE_TABLE_FORMATS:
        raise InputError(
            source,
            f"truncated or corrupt video: {scan.packets} of {declared} declared frames present "
            "(file cut short?)",
        )
    if "avi" in formats and scan.top_pts is not None and stream.time_base is not None:
        end = scan.top_pts + max(1, scan.last_duration)
        if declared > end:
            raise InputError(
                source,
                f"truncated or corrupt video: frames end at {float(end * stream.time_base):.1f} s "
                f"of the declared {float(declared * stream.time_base):.1f} s (file cut short?)",
            )
    if scan.decode_error is not None:
        raise InputError(
            source, f"truncated or corrupt video: the first frame does not decode ({scan.decode_error})"
        )
    if scan.first_frame is None:
        raise InputError(source, f"no decodable video frames (none of {len(scan.pts)} packets decodes)")


def _open_failure_reason(file: Path, err: av.error.FFmpegError) -> str:
    """Why FFmpeg could not open a (non-empty, existing) file, in words."""
    if isinstance(err, PermissionError):
        return "cannot read file: permission denied"
    message = _ffmpeg_message(err)
    boxes = _top_level_boxes(file)
    if boxes:  # an MP4/MOV structure, so a broken video rather than not-a-video
        if b"moov" not in boxes:
            return (
                "truncated or corrupt video: MP4/MOV without its index (moov atom missing: "
                "upload or recording cut short?)"
            )
        return f"truncated or corrupt video: {message}"
    with file.open("rb") as fh:
        head = fh.read(4096)
    if _looks_like_text(head):
        return f"not a video file: it is text ({err.strerror or 'FFmpeg cannot read it'})"
    return f"not a video file: {message}"


def _ffmpeg_message(err: av.error.FFmpegError) -> str:
    """FFmpeg's error text plus, when there is one, its last log line (e.g. 'moov atom not found')."""
    text = err.strerror or str(err)
    logged = err.log[1] if isinstance(err.log, tuple) and len(err.log) > 1 else None
    if isinstance(logged, tuple) and len(logged) == 3:
        line = str(logged[2]).strip()
        if line and line not in text:
            text = f"{text}: {line}"
    return text


def _top_level_boxes(file: Path) -> list[bytes]:
    """Types of the top-level ISO BMFF boxes, or [] if the file does not start like one."""
    types: list[bytes] = []
    size_total = file.stat().st_size
    with file.open("rb") as fh:
        offset = 0
        while offset + 8 <= size_total and len(types) < 1000:
            fh.seek(offset)
            header = fh.read(16)
            size, kind = int.from_bytes(header[:4], "big"), header[4:8]
            if not types and kind not in _ISOBMFF_BOXES:
                return []
            if not all(32 <= c < 127 for c in kind):
                break
            types.append(kind)
            if size == 1 and len(header) == 16:
                size = int.from_bytes(header[8:16], "big")
            elif size == 0:
                break  # box runs to the end of the file
            if size < 8:
                break
            offset += size
    return types


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\0" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\r\n\t\f" for ch in text)


def _rotation(frame_rotation: int, rotate_tag: str | None) -> int:
    """Clockwise degrees to turn decoded frames for display.

    PyAV reports the display matrix counter-clockwise; FFmpeg's CLI and OpenCV rotate frames
    clockwise by its negation (an iPhone portrait clip: matrix -90, displayed turned 90° CW).
    """
    degrees = -frame_rotation
    if degrees == 0 and rotate_tag:  # old FFmpeg exported the matrix as a "rotate" tag
        try:
            degrees = round(float(rotate_tag))
        except ValueError:
            degrees = 0
    return (round(degrees / 90) * 90) % 360


# --------------------------------------------------------------------------------------------
# hardware decoding (NVDEC)

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
    stream = _video_stream(container)
    if stream is not None and getattr(stream, "codec_context", None) is not None:
        if stream.codec_context.is_hwaccel:
            return container, ""
        reason = f"NVDEC does not decode {stream.codec.canonical_name}"
    else:
        reason = "no video stream"
    container.close()
    return None, reason


# --------------------------------------------------------------------------------------------
# read_frames


def read_frames(
    path: str | Path,
    start: int = 0,
    stop: int | None = None,
    *,
    info: VideoInfo | None = None,
    threads: int = 0,
    hwaccel: HWAccelChoice = "none",
    report: DecodeReport | None = None,
) -> Iterator[VideoFrame]:
    """Yield frames ``[start, stop)`` in presentation order, upright RGB.

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
    if start < 0 or (stop is not None and stop < 0):
        raise ValueError(f"start and stop must be >= 0, got {start}, {stop}")
    if threads < 0:
        raise ValueError(f"threads must be >= 0, got {threads}")
    if hwaccel not in HWACCEL_CHOICES:
        raise ValueError(f"hwaccel must be one of {', '.join(HWACCEL_CHOICES)}, not {hwaccel!r}")
    if info is None:
        info = probe(path)
    end = info.frame_count if stop is None else min(stop, info.frame_count)
    if start >= end:
        return
    to_rgb = _RGBConverter(info.rotation)
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
                yield VideoFrame(index=index, t=_frame_time(frame, info, index), rgb=to_rgb(frame))
    finally:
        container.close()


def _open_for_decoding(
    path: str | Path, threads: int, hwaccel: HWAccelChoice = "none", report: DecodeReport | None = None
) -> tuple[InputContainer, VideoStream]:
    container: InputContainer | None = None
    reason = ""
    if hwaccel == "auto":
        container, reason = _open_with_nvdec(str(path))
    decoder = NVDEC if container is not None else SOFTWARE
    if container is None:
        container = av.open(str(path), "r", metadata_errors="replace")
    if report is not None:
        report.decoder, report.reason = decoder, reason
    log.debug("%s: decoding with %s%s", path, decoder, f" ({reason})" if reason else "")
    stream = _video_stream(container)
    if stream is None:
        container.close()
        raise InputError(str(path), "no video stream")
    stream.codec_context.thread_type = "AUTO"
    stream.codec_context.thread_count = threads
    return container, stream


class _RGBConverter:
    """Decoded frame to upright, C-contiguous RGB.

    One reused swscale context with one thread: ~1,500 fps at 768x576 here, against ~1,250 for
    ``frame.to_ndarray(format="rgb24")`` (which builds a new context per frame) and less with
    swscale's own threads (the decoder already has the other core).
    """

    def __init__(self, rotation: int) -> None:
        self._reformatter = VideoReformatter()
        self._turns = {0: 0, 90: -1, 180: 2, 270: 1}[rotation]  # np.rot90 turns (CCW positive)

    def __call__(self, frame: av.VideoFrame) -> RGBArray:
        rgb = self._reformatter.reformat(frame, format="rgb24", threads=1).to_ndarray()
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


# --------------------------------------------------------------------------------------------
# VideoWriter


class VideoWriter:
    """Write RGB frames as H.264 (libx264, yuv420p) in a faststart MP4 that browsers play.

    Frames keep the caller's timestamps (``pts`` in ``time_base`` units, VFR included); odd
    sizes are padded by one replicated edge pixel to even. With ``audio_from``, that file's
    first audio stream is copied (or transcoded to AAC when MP4 cannot hold its codec), kept
    to the span of the written video and interleaved with it as frames arrive.
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
            # RGB is converted with the BT.709 matrix, limited range, and tagged so: browsers
            # then show the colours the decoder gave us.
            cc.colorspace, cc.color_primaries, cc.color_trc = 1, 1, 1  # AVCOL_*_BT709
            cc.color_range = int(ColorRange.MPEG)
            self._stream = stream
            self._audio = AudioCopier(self._container, Path(audio_from)) if audio_from else None
        except BaseException:
            self._abort()
            raise
        self._reformatter = VideoReformatter()
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
        if self._closed:
            raise ValueError("VideoWriter is closed")
        if rgb.dtype != np.uint8 or rgb.shape != (self.height, self.width, 3):
            raise ValueError(
                f"expected uint8 array of shape {(self.height, self.width, 3)}, got {rgb.dtype} {rgb.shape}"
            )
        if self._last_pts is not None and pts <= self._last_pts:
            raise ValueError(f"pts must increase: {pts} after {self._last_pts}")
        if self._pad is not None:
            h, w = self.height, self.width
            self._pad[:h, :w] = rgb
            self._pad[:h, w:] = rgb[:, w - 1 :]
            self._pad[h:] = self._pad[h - 1 : h]
            rgb = self._pad
        # Zero-copy view (half the cost of from_ndarray's copy): the frame dies after reformat.
        frame = av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(rgb), format="rgb24")
        yuv = self._reformatter.reformat(
            frame, format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG
        )
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


class AudioCopier:
    """Streams one file's audio into an output container, a packet at a time."""

    def __init__(self, output: OutputContainer, source: Path) -> None:
        self._input: InputContainer | None = av.open(str(source), "r", metadata_errors="replace")
        self._output = output
        self._in: AudioStream | None = self._input.streams.audio[0] if self._input.streams.audio else None
        self._packets: Iterator[Packet[AudioStream]] = iter(())
        self._pending: Packet[AudioStream] | None = None
        self._transcode = False
        self._next_sample: int | None = None
        if self._in is None:
            self.close()
            return
        self._transcode = self._in.codec.canonical_name not in MP4_AUDIO_CODECS
        if self._transcode:
            channels = self._in.codec_context.channels
            self._out: AudioStream = output.add_stream(
                "aac",
                rate=self._in.codec_context.sample_rate or 48000,
                layout="mono" if channels == 1 else "stereo",
            )
        else:
            self._out = output.add_stream_from_template(self._in)  # resets the codec tag
        self._packets = self._input.demux(self._in)

    def pump(self, start: float, until: float, *, final: bool = False) -> None:
        """Mux audio packets that begin before ``until`` (s), dropping those ending before ``start``."""
        if self._in is None:
            return
        while True:
            packet = self._pending if self._pending is not None else next(self._packets, None)
            self._pending = None
            if packet is None:
                break
            if packet.size == 0 or (packet.pts is None and packet.dts is None):
                continue
            ts = packet.pts if packet.pts is not None else packet.dts
            assert ts is not None
            assert packet.time_base is not None
            begin = float(ts * packet.time_base)
            if begin >= until + (_AUDIO_MARGIN_S if final else 0.0):
                if not final:
                    self._pending = packet
                break
            if begin + float((packet.duration or 0) * packet.time_base) < start - _AUDIO_MARGIN_S:
                continue
            self._mux(packet)
        if final:
            if self._transcode:
                self._flush_transcoder()
            self.close()

    def _mux(self, packet: Packet[AudioStream]) -> None:
        if not self._transcode:
            packet.stream = self._out
            try:
                self._output.mux(packet)
            except av.error.FFmpegError as err:  # e.g. a timestamp going backwards
                log.warning("audio: skipping a packet the muxer refuses (pts %s): %s", packet.pts, err)
            return
        assert self._in is not None
        try:
            frames = self._in.decode(packet)
        except av.error.FFmpegError as err:
            log.warning("audio: skipping a packet that does not decode: %s", err)
            return
        for frame in frames:
            self._output.mux(self._out.encode(self._retime(frame)))

    def _retime(self, frame: av.AudioFrame) -> av.AudioFrame:
        """Timestamps in samples, contiguous: the encoder splits frames into 1024-sample ones
        and, given coarse timestamps (AVI's are per packet), would repeat them."""
        rate = frame.sample_rate
        actual = (
            round(frame.pts * frame.time_base * rate)
            if frame.pts is not None and frame.time_base is not None
            else None
        )
        if self._next_sample is None or (actual is not None and actual > self._next_sample + rate // 10):
            self._next_sample = actual or 0  # the start, or a real gap in the source
        frame.pts, frame.time_base = self._next_sample, Fraction(1, rate)
        self._next_sample += frame.samples
        return frame

    def _flush_transcoder(self) -> None:
        assert self._in is not None
        try:
            frames = self._in.decode(None)
        except av.error.FFmpegError:  # pragma: no cover - nothing left to save
            frames = []
        for frame in frames:
            self._output.mux(self._out.encode(self._retime(frame)))
        self._output.mux(self._out.encode(None))

    def close(self) -> None:
        if self._input is not None:
            self._input.close()
            self._input = None
        self._in = None
