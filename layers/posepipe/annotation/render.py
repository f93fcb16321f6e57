"""The annotated video: frames drawn with their persons, encoded as H.264, in segments or whole.

Rendering needs the final ids and smoothed landmarks, which exist only after aggregation. The
pixels come from the frames inference decoded when the caller kept them (``decoded``), else from
decoding the source a second time (memory stays flat). Frames stay in the decoder's 4:2:0
samples where the source allows: only the regions persons are drawn in go through RGB
(:mod:`posepipe.annotation.planes`), which took rendering from about 2.4 to 1.5 ms a frame here
(768x576, one core: two full-frame conversions of about 0.7 ms each saved).
A long video is rendered as independent segments, one per chunk, that run in parallel and are
then joined by stream copy (:func:`join_segments`): no second encode. Segments are encoded
without B-frames so that their decode timestamps join monotonically.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeGuard

import av

from posepipe.annotation.drawing import DrawOptions, draw_persons
from posepipe.annotation.planes import PlaneAnnotator
from posepipe.media.audio import AudioCopier
from posepipe.media.colour import BT709_LIMITED, YUVColour
from posepipe.media.decode import (
    CompactFrame,
    RGBArray,
    VideoFrame,
    expand_frames,
    read_compact_frames,
    read_frames,
)
from posepipe.media.encode import VideoWriter
from posepipe.media.probe import VideoInfo
from posepipe.media.sources import MediaSource, open_input, source_name
from posepipe.result import Frame

SEGMENT_ENCODER_OPTIONS = {"bf": "0"}
# Encoding is the largest cost after inference. Measured here on vtest.avi (768x576, one core):
# veryfast/CRF 23 3.4 ms a frame, 6.9 KB; superfast/CRF 23 2.7 ms, 11.6 KB; ultrafast/CRF 26
# 1.7 ms, 10.3 KB, with no difference to see at that size (mean error 2.6 levels of 255).
SEGMENT_PRESET = "ultrafast"
SEGMENT_CRF = 26
NOT_PROCESSED_NOTE = "not processed: this part of the video failed"


def render_frames(
    video: MediaSource,
    info: VideoInfo,
    frames: Sequence[Frame],
    destination: Path,
    draw_options: DrawOptions | None = None,
    *,
    processing_fps: float | None = None,
    decoded: Iterable[CompactFrame] | None = None,
    threads: int = 1,
) -> dict[str, float]:
    """Draw ``frames`` (a contiguous range, ids set) over the source's frames into an MP4; a frame
    that was not processed gets :data:`NOT_PROCESSED_NOTE` in its corner.

    ``decoded``: the source's frames of that range as the decoder gave them, kept from inference;
    without it the range is decoded here. ``threads``: the encoder's and the pixel conversions'
    (1 beside other work; more when cores would otherwise sit idle, as for the job's last
    segment). Returns timings in seconds (decode, draw, encode) and ``decoded_frames``, the
    frames decoded here.

    A source of upright 8-bit 4:2:0 frames of even size (what cameras, phones and editors write)
    is drawn in its own samples (:class:`posepipe.annotation.planes.PlaneAnnotator`) and encoded
    in its own colour, tagged so; any other goes through RGB and is encoded as BT.709.
    """
    draw_options = draw_options or DrawOptions()
    if not frames:
        raise ValueError("nothing to render")
    start, stop = frames[0].index, frames[-1].index + 1
    by_index = {frame.index: frame for frame in frames}
    colour = planar_colour(info)
    annotator = PlaneAnnotator((info.height, info.width), colour) if colour is not None else None
    source: Iterable[CompactFrame | VideoFrame]
    if annotator is not None:
        source = (
            decoded
            if decoded is not None
            else read_compact_frames(video, start, stop, info=info, threads=threads)
        )
    else:
        source = (
            expand_frames(decoded, info.rotation, threads)
            if decoded is not None
            else read_frames(video, start, stop, info=info, threads=threads)
        )
    decode_s = draw_s = encode_s = 0.0
    with VideoWriter(
        destination,
        width=info.width,
        height=info.height,
        time_base=info.time_base,
        fps=info.fps,
        preset=SEGMENT_PRESET,
        crf=SEGMENT_CRF,
        encoder_options=SEGMENT_ENCODER_OPTIONS,
        threads=threads,
        colour=colour or BT709_LIMITED,
    ) as writer:
        mark = time.perf_counter()
        for picture in source:
            if annotator is not None and _in_colour(picture, annotator.colour):
                frame = by_index[picture.index]
                decoded_at = time.perf_counter()
                annotator.draw(picture.planes, frame.persons, draw_options, **_overlay(frame, processing_fps))
                drawn_at = time.perf_counter()
                writer.write_yuv420p(picture.planes, info.frame_pts[picture.index])
            else:
                rgb = picture.rgb if isinstance(picture, VideoFrame) else _expand(picture, info.rotation)
                frame = by_index[picture.index]
                decoded_at = time.perf_counter()
                overlay = _overlay(frame, processing_fps)
                image = draw_persons(rgb, frame.persons, draw_options, **overlay, inplace=True)
                drawn_at = time.perf_counter()
                writer.write(image, info.frame_pts[picture.index])
            decode_s += decoded_at - mark
            draw_s += drawn_at - decoded_at
            mark = time.perf_counter()
            encode_s += mark - drawn_at
    decoded_frames = 0.0 if decoded is not None else float(len(frames))
    return {"decode_s": decode_s, "draw_s": draw_s, "encode_s": encode_s, "decoded_frames": decoded_frames}


def planar_colour(info: VideoInfo) -> YUVColour | None:
    """The colour a source's frames are drawn and encoded in without going through RGB, or None
    when they cannot be (not 8-bit 4:2:0, rotated, or of odd size)."""
    if info.pix_fmt not in PLANAR_FORMATS or info.rotation or info.width % 2 or info.height % 2:
        return None
    return YUVColour.of_frame(info.pix_fmt, info.colorspace, info.color_range)


PLANAR_FORMATS = frozenset({"yuv420p", "yuvj420p"})


def _in_colour(frame: CompactFrame | VideoFrame, colour: YUVColour) -> TypeGuard[CompactFrame]:
    return (
        isinstance(frame, CompactFrame)
        and frame.pixel_format in PLANAR_FORMATS
        and YUVColour.of_frame(frame.pixel_format, frame.colorspace, frame.color_range) == colour
    )


def _expand(frame: CompactFrame, rotation: int) -> RGBArray:
    return next(expand_frames([frame], rotation)).rgb


def _overlay(frame: Frame, processing_fps: float | None) -> dict[str, Any]:
    return {
        "frame_index": frame.index,
        "fps": processing_fps,
        "note": None if frame.processed else NOT_PROCESSED_NOTE,
    }


def join_segments(
    segments: Iterable[MediaSource], destination: Path, audio_from: MediaSource | None = None
) -> int:
    """Join H.264 MP4 segments (same size and settings) into one faststart MP4 by stream copy.

    Segments and ``audio_from`` are paths or seekable files (segments in S3, read by ranged GETs).
    The first audio stream of ``audio_from``, if any, is copied in alongside (or transcoded to
    AAC where MP4 cannot hold it), interleaved with the video. Returns the video packets written.
    """
    pending = iter(segments)  # one at a time: a segment read from S3 holds its buffers while open
    first_segment = next(pending, None)
    if first_segment is None:
        raise ValueError("no segments to join")
    written = 0
    first_t: float | None = None
    end_t = 0.0
    with av.open(str(destination), "w", format="mp4", container_options={"movflags": "+faststart"}) as output:
        with open_input(first_segment) as first:
            out_video = output.add_stream_from_template(first.streams.video[0])
        audio = AudioCopier(output, audio_from) if audio_from is not None else None
        last_dts: int | None = None
        for segment in itertools.chain([first_segment], pending):
            with open_input(segment) as container:
                stream = container.streams.video[0]
                time_base = stream.time_base
                assert time_base is not None
                for packet in container.demux(stream):
                    if packet.dts is None or packet.pts is None:  # the demuxer's end-of-stream marker
                        continue
                    if last_dts is not None and packet.dts <= last_dts:
                        raise RuntimeError(
                            f"{source_name(segment)}: decode timestamps overlap the previous segment"
                        )
                    last_dts = packet.dts
                    start = float(packet.pts * time_base)
                    first_t = start if first_t is None else first_t
                    end_t = max(end_t, start + float((packet.duration or 0) * time_base))
                    packet.stream = out_video
                    output.mux(packet)
                    written += 1
                    if audio is not None:
                        audio.pump(first_t, start)
        if audio is not None:
            audio.pump(first_t or 0.0, end_t, final=True)
    return written
