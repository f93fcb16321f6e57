"""render_frames keeps the source's colours: 4:2:0 sources are drawn in their own samples and
encoded in their own matrix and range, tagged so; others go through RGB and BT.709."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest
from posepipe.annotation.drawing import DrawOptions, drawn_boxes
from posepipe.annotation.render import planar_colour, render_frames
from posepipe.media.colour import YUVColour
from posepipe.media.decode import CompactFrame, read_compact_frames, read_frames
from posepipe.media.probe import VideoInfo, probe
from posepipe.result import Frame, Person
from posepipe.skeleton import NUM_LANDMARKS

FRAMES = 12


def _source_pictures(sample: Callable[[str], Path]) -> list[npt.NDArray[np.uint8]]:
    video = sample("vtest.avi")
    return [f.rgb for f in read_frames(video, 200, 200 + FRAMES)]


def _encode(
    path: Path, pictures: list[npt.NDArray[np.uint8]], *, pix_fmt: str, colorspace: int, color_range: int,
    rotation: int | None = None,
) -> Path:  # fmt: skip
    """H.264 at high quality, samples converted with and tagged as the given matrix and range."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10, options={"crf": "10"})
        assert isinstance(stream, av.VideoStream)
        stream.height, stream.width = pictures[0].shape[:2]
        stream.pix_fmt = pix_fmt
        stream.codec_context.colorspace, stream.codec_context.color_range = colorspace, color_range
        if rotation:
            stream.set_display_rotation(-rotation)
        for i, picture in enumerate(pictures):
            rgb = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="rgb24")
            full = pix_fmt == "yuvj420p" or color_range == 2
            frame = rgb.reformat(format=pix_fmt, dst_colorspace=colorspace, dst_color_range=2 if full else 1)
            frame.colorspace, frame.color_range = colorspace, color_range
            frame.pts, frame.time_base = i, Fraction(1, 10)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def _person(x: float, y: float) -> Person:
    rng = np.random.default_rng(int(x))
    landmarks = np.zeros((NUM_LANDMARKS, 5), dtype=np.float32)
    landmarks[:, :2] = np.array([x, y]) + rng.normal(0, 30, (NUM_LANDMARKS, 2))
    landmarks[:, 3:] = 1.0
    return Person(landmarks, np.zeros((NUM_LANDMARKS, 3), dtype=np.float32), score=0.9, id=int(x) % 7)


def _frames(info: VideoInfo) -> list[Frame]:
    persons = [_person(info.width * 0.3, info.height * 0.4), _person(info.width * 0.7, info.height * 0.6)]
    return [Frame(index=i, t=info.frame_time(i), persons=persons if i % 2 else []) for i in range(FRAMES)]


CASES = {
    "untagged": ("yuv420p", 2, 0, YUVColour(6, False), (6, 1, 6)),
    "bt709": ("yuv420p", 1, 1, YUVColour(1, False), (1, 1, 1)),
    "bt601 full range": ("yuvj420p", 6, 2, YUVColour(6, True), (6, 2, 6)),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("kept", [False, True], ids=["decoded again", "kept"])
def test_render_keeps_the_sources_colour(
    case: str, kept: bool, sample: Callable[[str], Path], tmp_path: Path
) -> None:
    pix_fmt, colorspace, color_range, colour, tags = CASES[case]
    pictures = _source_pictures(sample)
    video = _encode(
        tmp_path / "in.mp4", pictures, pix_fmt=pix_fmt, colorspace=colorspace, color_range=color_range
    )
    info = probe(video)
    assert planar_colour(info) == colour
    source = {f.index: f.rgb.astype(np.int16) for f in read_frames(video, info=info)}
    frames = _frames(info)
    decoded = None
    if kept:
        decoded = [f for f in read_compact_frames(video, info=info) if isinstance(f, CompactFrame)]
        assert len(decoded) == FRAMES
    timings = render_frames(video, info, frames, tmp_path / "out.mp4", DrawOptions(), decoded=decoded)
    assert timings["decoded_frames"] == (0 if kept else FRAMES)

    with av.open(str(tmp_path / "out.mp4")) as out:
        stream = out.streams.video[0]
        context = stream.codec_context
        assert (context.colorspace, context.color_range, context.color_primaries) == tags
        got = [f.to_ndarray(format="rgb24").astype(np.int16) for f in out.decode(stream)]
    assert len(got) == FRAMES
    for frame, picture in zip(frames, got, strict=True):
        mask = np.ones(picture.shape[:2], dtype=bool)
        for x0, y0, x1, y1 in drawn_boxes((info.height, info.width), frame.persons, DrawOptions()):
            mask[y0:y1, x0:x1] = False
        # Away from the drawings a player shows the source's colours (the difference is
        # libx264's loss); a wrong matrix or range would be off by 5 to 20 levels.
        error = np.abs(picture - source[frame.index])[mask]
        assert error.mean() < 4, (frame.index, error.mean())
        assert np.abs((picture - source[frame.index])[mask].mean(axis=0)).max() < 1.0  # no colour cast
        if frame.persons:
            assert not mask.all()


def test_rotated_sources_go_through_rgb_and_bt709(sample: Callable[[str], Path], tmp_path: Path) -> None:
    pictures = _source_pictures(sample)
    turned = [np.ascontiguousarray(np.rot90(p, 1)) for p in pictures]  # stored turned, shown upright
    video = _encode(tmp_path / "in.mp4", turned, pix_fmt="yuv420p", colorspace=2, color_range=0, rotation=90)
    info = probe(video)
    assert info.rotation == 90
    assert planar_colour(info) is None
    source = {f.index: f.rgb.astype(np.int16) for f in read_frames(video, info=info)}
    render_frames(video, info, _frames(info), tmp_path / "out.mp4", DrawOptions())
    with av.open(str(tmp_path / "out.mp4")) as out:
        stream = out.streams.video[0]
        assert (stream.codec_context.colorspace, stream.codec_context.color_range) == (1, 1)
        first = next(out.decode(stream)).to_ndarray(format="rgb24").astype(np.int16)
    assert first.shape == (info.height, info.width, 3)
    assert np.abs(first - source[0]).mean() < 4
