"""The annotated video: frames drawn with their persons, encoded as H.264, in segments or whole.

Rendering needs the final ids and smoothed landmarks, which exist only after aggregation. The
pixels come from the frames inference decoded when the caller kept them (``decoded``), else from
decoding the source a second time (memory stays flat).
A long video is rendered as independent segments, one per chunk, that run in parallel and are
then joined by stream copy (:func:`join_segments`): no second encode. Segments are encoded
without B-frames so that their decode timestamps join monotonically.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import av

from posepipe.annotation.drawing import DrawOptions, draw_persons
from posepipe.media.audio import AudioCopier
from posepipe.media.decode import VideoFrame, read_frames
from posepipe.media.encode import VideoWriter
from posepipe.media.probe import VideoInfo
from posepipe.result import Frame

SEGMENT_ENCODER_OPTIONS = {"bf": "0"}
# Encoding is the largest cost after inference. Measured here on vtest.avi (768x576, one core):
# veryfast/CRF 23 3.4 ms a frame, 6.9 KB; superfast/CRF 23 2.7 ms, 11.6 KB; ultrafast/CRF 26
# 1.7 ms, 10.3 KB, with no difference to see at that size (mean error 2.6 levels of 255).
SEGMENT_PRESET = "ultrafast"
SEGMENT_CRF = 26
NOT_PROCESSED_NOTE = "not processed: this part of the video failed"


def render_frames(
    video: str | Path,
    info: VideoInfo,
    frames: Sequence[Frame],
    destination: Path,
    draw_options: DrawOptions | None = None,
    *,
    processing_fps: float | None = None,
    decoded: Iterable[VideoFrame] | None = None,
) -> dict[str, float]:
    """Draw ``frames`` (a contiguous range, ids set) over the source's frames into an MP4; a frame
    that was not processed gets :data:`NOT_PROCESSED_NOTE` in its corner.

    ``decoded``: the source's frames of that range as :func:`posepipe.media.decode.read_frames`
    gave them, kept from inference; without it the range is decoded here. Returns timings in
    seconds (decode, draw, encode) and ``decoded_frames``, the frames decoded here.
    """
    draw_options = draw_options or DrawOptions()
    if not frames:
        raise ValueError("nothing to render")
    start, stop = frames[0].index, frames[-1].index + 1
    by_index = {frame.index: frame for frame in frames}
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
        threads=1,
    ) as writer:
        mark = time.perf_counter()
        source = decoded if decoded is not None else read_frames(video, start, stop, info=info, threads=1)
        for picture in source:
            decoded_at = time.perf_counter()
            decode_s += decoded_at - mark
            frame = by_index[picture.index]
            image = draw_persons(
                picture.rgb,
                frame.persons,
                draw_options,
                frame_index=picture.index,
                fps=processing_fps,
                note=None if frame.processed else NOT_PROCESSED_NOTE,
                inplace=True,
            )
            drawn_at = time.perf_counter()
            draw_s += drawn_at - decoded_at
            writer.write(image, info.frame_pts[picture.index])
            mark = time.perf_counter()
            encode_s += mark - drawn_at
    decoded_frames = 0.0 if decoded is not None else float(len(frames))
    return {"decode_s": decode_s, "draw_s": draw_s, "encode_s": encode_s, "decoded_frames": decoded_frames}


def join_segments(segments: Iterable[Path], destination: Path, audio_from: str | Path | None = None) -> int:
    """Join H.264 MP4 segments (same size and settings) into one faststart MP4 by stream copy.

    The first audio stream of ``audio_from``, if any, is copied in alongside (or transcoded to
    AAC where MP4 cannot hold it), interleaved with the video. Returns the video packets written.
    """
    segment_list = list(segments)
    if not segment_list:
        raise ValueError("no segments to join")
    written = 0
    first_t: float | None = None
    end_t = 0.0
    with av.open(str(destination), "w", format="mp4", container_options={"movflags": "+faststart"}) as output:
        with av.open(str(segment_list[0])) as first:
            out_video = output.add_stream_from_template(first.streams.video[0])
        audio = AudioCopier(output, Path(audio_from)) if audio_from is not None else None
        last_dts: int | None = None
        for segment in segment_list:
            with av.open(str(segment)) as container:
                stream = container.streams.video[0]
                time_base = stream.time_base
                assert time_base is not None
                for packet in container.demux(stream):
                    if packet.dts is None or packet.pts is None:  # the demuxer's end-of-stream marker
                        continue
                    if last_dts is not None and packet.dts <= last_dts:
                        raise RuntimeError(f"{segment}: decode timestamps overlap the previous segment")
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
