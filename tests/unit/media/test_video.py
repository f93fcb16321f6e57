"""posepipe.media (probe, decode, encode, audio) on real media: vtest.avi (real pedestrians) and
small clips made here with PyAV.

Oracles are independent of the code under test where possible: plain PyAV decoding for
pixels and timestamps, our own ISO BMFF box walk for the file layout, OpenCV (its own FFmpeg
build and rotation code) for which way a rotated clip is upright.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt
import pytest
from posepipe.errors import InputError
from posepipe.media.decode import VideoFrame, expand_frames, read_frames
from posepipe.media.encode import VideoWriter
from posepipe.media.probe import VideoInfo, probe

from tests.support.clips import make_audio_only, make_clip, sine

VTEST = Path(os.environ.get("POSEPIPE_SAMPLES", "/work/shared/media")) / "vtest.avi"

RGB = npt.NDArray[np.uint8]


# --------------------------------------------------------------------------------------------
# helpers


def _md5(rgb: RGB) -> str:
    return hashlib.md5(np.ascontiguousarray(rgb).tobytes()).hexdigest()


def top_level_boxes(path: Path) -> list[str]:
    """Top-level ISO BMFF box types in file order (our own walk, not FFmpeg's)."""
    data = path.read_bytes()
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        kind = data[offset + 4 : offset + 8].decode("latin-1")
        if size == 1:
            size = int.from_bytes(data[offset + 8 : offset + 16], "big")
        elif size == 0:
            size = len(data) - offset
        boxes.append(kind)
        assert size >= 8, f"bad box {kind!r} at {offset}"
        offset += size
    return boxes


def decode_all(path: Path) -> tuple[av.video.stream.VideoStream, list[tuple[float, RGB]]]:
    """(stream, [(frame.time, rgb)]) with plain PyAV."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [
            (float(f.time), np.ascontiguousarray(f.to_ndarray(format="rgb24"), dtype=np.uint8))
            for f in container.decode(stream)
        ]
    return stream, frames


def decoded_audio(path: Path) -> tuple[str, int, npt.NDArray[np.float32]]:
    """(codec, sample_rate, first channel as float) of a file's first audio stream."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        codec = stream.codec.canonical_name
        chunks = []
        rate = 0
        for frame in container.decode(stream):
            rate = frame.sample_rate
            chunks.append(frame.to_ndarray()[0].astype(np.float32))  # planar or mono
    return codec, rate, np.concatenate(chunks)


def dominant_hz(samples: npt.NDArray[np.float32], rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


def copy_through_writer(
    src: Path,
    dst: Path,
    *,
    stop: int | None = None,
    audio: bool = True,
    draw: Callable[[RGB], None] | None = None,
) -> VideoInfo:
    """Read ``src`` with read_frames and write it with VideoWriter, keeping its timestamps."""
    info = probe(src)
    with VideoWriter(
        dst,
        width=info.width,
        height=info.height,
        time_base=info.time_base,
        fps=info.fps,
        audio_from=src if audio else None,
        preset="ultrafast",
    ) as writer:
        for frame in read_frames(src, 0, stop, info=info):
            rgb = frame.rgb.copy()
            if draw is not None:
                draw(rgb)
            writer.write(rgb, info.frame_pts[frame.index])
    return info


# --------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="session")
def vtest() -> Path:
    if not VTEST.is_file():
        pytest.fail(f"sample video missing: {VTEST} (set POSEPIPE_SAMPLES to its folder)")
    return VTEST


@pytest.fixture(scope="session")
def vtest_info(vtest: Path) -> VideoInfo:
    return probe(vtest)


@pytest.fixture(scope="session")
def vtest_oracle(vtest: Path) -> list[tuple[int | None, str]]:
    """(pts, md5 of RGB) of every vtest frame, decoded from the start with plain PyAV."""
    with av.open(str(vtest)) as container:
        return [
            (f.pts, _md5(np.ascontiguousarray(f.to_ndarray(format="rgb24"))))
            for f in container.decode(video=0)
        ]


@pytest.fixture(scope="module")
def faststart_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 frames of noise (so the data is large and evenly spread), moov before mdat."""
    path = tmp_path_factory.mktemp("media") / "faststart.mp4"
    return make_clip(path, frames=30, size=(160, 120), noise=True, faststart=True)


# --------------------------------------------------------------------------------------------
# probe


def test_probe_vtest(vtest: Path, vtest_info: VideoInfo, vtest_oracle: list[tuple[int | None, str]]) -> None:
    info = vtest_info
    assert info.uri == str(vtest)
    # DIV3: MPEG-4 part 2, Microsoft variant 3 (FFmpeg's codec id name, as ffprobe prints it).
    assert info.codec == "msmpeg4v3"
    assert (info.width, info.height) == (768, 576)
    assert (info.coded_width, info.coded_height) == (768, 576)
    assert info.fps == pytest.approx(10.0)
    assert info.frame_count == 795 == len(vtest_oracle)
    assert info.duration_s == pytest.approx(79.5)
    assert info.rotation == 0
    assert info.pix_fmt == "yuv420p"
    assert info.has_audio is False
    assert info.audio_codec is None
    assert info.time_base == Fraction(1, 10)
    assert info.exact_pts
    assert list(info.frame_pts) == [pts for pts, _ in vtest_oracle]
    assert info.frame_time(400) == pytest.approx(40.0)
    source = info.to_source()
    assert (source.width, source.height, source.frame_count, source.rotation) == (768, 576, 795, 0)
    assert source.fps == pytest.approx(10.0)
    assert source.duration_s == pytest.approx(79.5)


def test_probe_counts_packets_not_header(tmp_path: Path) -> None:
    # An AVI with a gap in its timestamps: the header declares 21 frame periods, 20 are stored.
    path = make_clip(tmp_path / "gap.avi", frames=20, vcodec="mpeg4", audio="libmp3lame")
    with av.open(str(path)) as container:
        declared = container.streams.video[0].frames
        real = sum(1 for _ in container.decode(video=0))
    info = probe(path)
    assert info.frame_count == real == len(info.frame_pts)
    assert info.has_audio
    assert info.audio_codec == "mp3"
    assert declared >= real  # the header is not what we count


# --------------------------------------------------------------------------------------------
# read_frames


def test_read_frames_seek_is_bit_exact(
    vtest: Path, vtest_info: VideoInfo, vtest_oracle: list[tuple[int | None, str]]
) -> None:
    got = list(read_frames(vtest, 400, 420, info=vtest_info))
    assert [f.index for f in got] == list(range(400, 420))
    assert [f.t for f in got] == pytest.approx([i / 10 for i in range(400, 420)])
    assert [_md5(f.rgb) for f in got] == [md5 for _, md5 in vtest_oracle[400:420]]
    sequential = [f for f in read_frames(vtest, 0, 420, info=vtest_info) if f.index >= 400]
    assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(got, sequential, strict=True))
    frame = got[0]
    assert frame.rgb.shape == (576, 768, 3)
    assert frame.rgb.dtype == np.uint8
    assert frame.rgb.flags.c_contiguous


@pytest.mark.parametrize(("start", "stop"), [(1, 4), (249, 252), (250, 251), (500, 503), (792, 900)])
def test_read_frames_ranges_around_keyframes(
    vtest: Path,
    vtest_info: VideoInfo,
    vtest_oracle: list[tuple[int | None, str]],
    start: int,
    stop: int,
) -> None:
    # vtest's keyframes are at 0, 250, 500, 750.
    got = list(read_frames(vtest, start, stop, info=vtest_info))
    expected = list(range(start, min(stop, 795)))
    assert [f.index for f in got] == expected
    assert [_md5(f.rgb) for f in got] == [vtest_oracle[i][1] for i in expected]


def test_read_frames_edges(vtest: Path) -> None:
    assert list(read_frames(vtest, 10, 10)) == []
    assert list(read_frames(vtest, 900)) == []
    with pytest.raises(ValueError, match=">= 0"):
        next(read_frames(vtest, -1))
    last = list(read_frames(vtest, 794))  # probes by itself
    assert [f.index for f in last] == [794]
    assert last[0].t == pytest.approx(79.4)


@pytest.mark.parametrize("suffix", [".mp4", ".ts"])
def test_read_frames_seek_with_b_frames(tmp_path: Path, suffix: str) -> None:
    # H.264 with B-frames and a short GOP: demuxer indexes hold decode times (MP4) or nothing
    # (MPEG-TS), so a plain seek can land after the wanted frame.
    path = tmp_path / f"bframes{suffix}"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"g": "12", "bf": "3", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
        base = np.random.default_rng(2).integers(0, 256, (96, 128, 3), dtype=np.uint8)
        for i in range(60):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.roll(base, 3 * i, axis=1)))
            frame.pts, frame.time_base = i, Fraction(1, 25)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    _, oracle = decode_all(path)
    info = probe(path)
    assert info.frame_count == len(oracle) == 60
    for start in (1, 11, 12, 13, 30, 47, 59):
        got = list(read_frames(path, start, start + 2, info=info))
        assert [f.index for f in got] == list(range(start, min(start + 2, 60))), start
        for f in got:
            assert f.t == pytest.approx(oracle[f.index][0])
            assert np.array_equal(f.rgb, oracle[f.index][1]), start


@pytest.mark.parametrize(
    ("rotation", "corner"), [(90, "top-right"), (180, "bottom-right"), (270, "bottom-left")]
)
def test_rotation_probe_and_upright_frames(tmp_path: Path, rotation: int, corner: str) -> None:
    width, height = 64, 32
    path = tmp_path / f"rot{rotation}.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.set_display_rotation(-rotation)  # counter-clockwise in PyAV
        img = np.full((height, width, 3), 128, dtype=np.uint8)
        img[:8, :8] = (255, 0, 0)  # a red mark at the stored frame's top-left
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(img)
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))

    info = probe(path)
    assert info.rotation == rotation
    assert (info.coded_width, info.coded_height) == (width, height)
    upright = (height, width) if rotation in (90, 270) else (width, height)
    assert (info.width, info.height) == upright

    frames = list(read_frames(path, info=info))
    assert len(frames) == 3
    rgb = frames[0].rgb
    assert rgb.shape == (info.height, info.width, 3)
    assert rgb.flags.c_contiguous

    def red_corner(img: RGB) -> str:
        ys, xs = np.nonzero((img[:, :, 0] > 180) & (img[:, :, 1] < 90))
        h, w = img.shape[:2]
        return f"{'top' if ys.mean() < h / 2 else 'bottom'}-{'left' if xs.mean() < w / 2 else 'right'}"

    assert red_corner(rgb) == corner
    # OpenCV applies the display matrix itself: it must agree on which way is up.
    capture = cv2.VideoCapture(str(path))
    ok, bgr = capture.read()
    capture.release()
    assert ok
    assert bgr.shape == rgb.shape
    assert red_corner(np.ascontiguousarray(bgr[:, :, ::-1])) == corner


# --------------------------------------------------------------------------------------------
# bad inputs


def _missing(tmp: Path, _: Path) -> Path:
    return tmp / "nope.mp4"


def _empty(tmp: Path, _: Path) -> Path:
    path = tmp / "empty.mp4"
    path.touch()
    return path


def _text(tmp: Path, _: Path) -> Path:
    path = tmp / "clip.mp4"
    path.write_text("this is not a video\n" * 20)
    return path


def _cut_faststart(tmp: Path, faststart: Path) -> Path:
    data = faststart.read_bytes()
    boxes = top_level_boxes(faststart)
    assert boxes.index("moov") < boxes.index("mdat")
    path = tmp / "half.mp4"
    path.write_bytes(data[: len(data) // 2])
    return path


def _cut_at_packet_boundary(tmp: Path, faststart: Path) -> Path:
    # Cut exactly where frame 15's data ends: every packet read is whole, 15 are missing.
    with av.open(str(faststart)) as container:
        entries = container.streams.video[0].index_entries
        ends = sorted(entries[i].pos + entries[i].size for i in range(len(entries)))
    path = tmp / "boundary.mp4"
    path.write_bytes(faststart.read_bytes()[: ends[14]])
    return path


def _moov_missing(tmp: Path, _: Path) -> Path:
    full = make_clip(tmp / "plain.mp4", frames=30, size=(160, 120), noise=True)
    assert top_level_boxes(full)[-1] == "moov"  # not faststart: the index comes last
    data = full.read_bytes()
    path = tmp / "nomoov.mp4"
    path.write_bytes(data[: len(data) // 2])
    return path


def _zeroed_data(tmp: Path, faststart: Path) -> Path:
    data = bytearray(faststart.read_bytes())
    start = data.index(b"mdat") + 4
    data[start:] = bytes(len(data) - start)
    path = tmp / "zeroed.mp4"
    path.write_bytes(bytes(data))
    return path


def _cut_avi(tmp: Path, _: Path) -> Path:
    data = VTEST.read_bytes()
    path = tmp / "half.avi"
    path.write_bytes(data[: len(data) // 2])
    return path


def _cut_avi_at_chunk(tmp: Path, _: Path) -> Path:
    # Cut where frame 300's chunk starts: every chunk read is whole, the rest are missing.
    with av.open(str(VTEST)) as container:
        entries = container.streams.video[0].index_entries
        starts = sorted(entries[i].pos for i in range(len(entries)))
    path = tmp / "chunks.avi"
    path.write_bytes(VTEST.read_bytes()[: starts[300]])
    return path


def _mp3_with_cover_art(tmp: Path, _: Path) -> Path:
    # A cover picture is a video stream to FFmpeg (disposition attached_pic), not a video.
    path = tmp / "song.mp3"
    with av.open(str(path), "w") as out:
        sound = out.add_stream("libmp3lame", rate=22050, layout="mono")
        cover = out.add_stream("mjpeg")
        cover.width, cover.height, cover.pix_fmt = 32, 32, "yuvj420p"
        cover.disposition = av.stream.Disposition.attached_pic
        picture = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), dtype=np.uint8))
        picture.pts = 0
        out.mux(cover.encode(picture) + cover.encode(None))
        af = av.AudioFrame.from_ndarray(sine(0.5, 22050, 1), format="fltp", layout="mono")
        af.sample_rate, af.pts = 22050, 0
        out.mux(sound.encode(af))
        out.mux(sound.encode(None))
    with av.open(str(path)) as container:
        assert container.streams.video  # FFmpeg does list the picture as a video stream
    return path


def _m4a(tmp: Path, _: Path) -> Path:
    return make_audio_only(tmp / "voice.m4a", "aac")


def _wav(tmp: Path, _: Path) -> Path:
    return make_audio_only(tmp / "voice.wav", "pcm_s16le")


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_missing, "file not found"),
        (_empty, "file is empty (0 bytes)"),
        (_text, "not a video file"),
        (_cut_faststart, "truncated or corrupt video: data of the last frame is incomplete"),
        (_cut_at_packet_boundary, "truncated or corrupt video: 15 of 30 declared frames present"),
        (_moov_missing, "truncated or corrupt video: MP4/MOV without its index (moov atom missing"),
        (_zeroed_data, "truncated or corrupt video: the first frame does not decode"),
        (_cut_avi, "truncated or corrupt video"),
        (_cut_avi_at_chunk, "truncated or corrupt video: frames end at 30.0 s of the declared 79.5 s"),
        (_m4a, "no video stream (audio only)"),
        (_mp3_with_cover_art, "no video stream (audio only)"),
        (_wav, "no video stream (audio only)"),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else "",
)
def test_probe_rejects_bad_input(
    tmp_path: Path, faststart_mp4: Path, make: Callable[[Path, Path], Path], reason: str
) -> None:
    path = make(tmp_path, faststart_mp4)
    with pytest.raises(InputError) as caught:
        probe(path)
    err = caught.value
    assert err.source == str(path)
    assert err.reason.startswith(reason), err.reason
    assert str(err) == f"{path}: {err.reason}"
    assert err.code == "bad_input"


def test_probe_text_file_says_text(tmp_path: Path, faststart_mp4: Path) -> None:
    with pytest.raises(InputError, match=r"not a video file: it is text \(Invalid data"):
        probe(_text(tmp_path, faststart_mp4))


def test_faststart_source_is_fine(faststart_mp4: Path) -> None:
    # The uncut file the bad inputs are made from probes and reads.
    info = probe(faststart_mp4)
    assert info.frame_count == 30
    assert len(list(read_frames(faststart_mp4, 25, info=info))) == 5


# --------------------------------------------------------------------------------------------
# VideoWriter


def _annotate(rgb: RGB) -> None:
    rgb[100:140, 200:400] = 255


def test_writer_annotated_vtest_copy(tmp_path: Path, vtest: Path, vtest_info: VideoInfo) -> None:
    out = tmp_path / "annotated.mp4"
    frames: list[VideoFrame] = list(read_frames(vtest, 0, 60, info=vtest_info))
    with VideoWriter(
        out, width=768, height=576, time_base=vtest_info.time_base, fps=vtest_info.fps
    ) as writer:
        for frame in frames:
            rgb = frame.rgb.copy()
            _annotate(rgb)
            writer.write(rgb, vtest_info.frame_pts[frame.index])
    assert writer.frames_written == 60

    boxes = top_level_boxes(out)
    assert boxes[0] == "ftyp"
    assert boxes.index("moov") < boxes.index("mdat")  # faststart: playable while downloading

    stream, decoded = decode_all(out)
    assert stream.codec.canonical_name == "h264"
    assert stream.codec_context.pix_fmt == "yuv420p"
    assert (stream.width, stream.height) == (768, 576)
    assert stream.codec_context.colorspace == 1  # tagged BT.709, as converted
    assert len(decoded) == 60
    assert [t for t, _ in decoded] == pytest.approx([f.t for f in frames], abs=1e-3)
    for (_, rgb), frame in zip(decoded, frames, strict=True):
        assert rgb[100:140, 200:400].min() > 200  # the annotation is there
        original = frame.rgb.astype(np.int16)
        outside = np.abs(rgb.astype(np.int16) - original)[200:, :]
        assert outside.mean() < 6  # and the rest is the source, colours included

    info = probe(out)
    assert (info.codec, info.frame_count, info.rotation) == ("h264", 60, 0)
    assert info.frame_time(59) == pytest.approx(5.9, abs=1e-3)


def test_writer_keeps_colours(tmp_path: Path) -> None:
    # Saturated colours show a wrong or mismatched RGB->YUV matrix (BT.601 vs BT.709) at once.
    colours = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (220, 200, 60)]
    rgb = np.zeros((96, 128, 3), dtype=np.uint8)
    for i, colour in enumerate(colours):
        rgb[(i // 2) * 48 : (i // 2 + 1) * 48, (i % 2) * 64 : (i % 2 + 1) * 64] = colour
    out = tmp_path / "colours.mp4"
    with VideoWriter(out, width=128, height=96, time_base=Fraction(1, 10), fps=10, crf=12) as writer:
        for i in range(3):
            writer.write(rgb, i)
    _, decoded = decode_all(out)
    got = decoded[0][1].astype(np.int16)
    for i, colour in enumerate(colours):
        y, x = (i // 2) * 48 + 24, (i % 2) * 64 + 32
        assert np.abs(got[y - 8 : y + 8, x - 8 : x + 8] - np.array(colour)).max() <= 4, colour


def test_writer_pads_odd_size_to_even(tmp_path: Path, vtest: Path, vtest_info: VideoInfo) -> None:
    out = tmp_path / "odd.mp4"
    frames = [f.rgb[:575, :767] for f in read_frames(vtest, 0, 8, info=vtest_info)]
    with VideoWriter(out, width=767, height=575, time_base=Fraction(1, 10), fps=10) as writer:
        for i, rgb in enumerate(frames):
            writer.write(np.ascontiguousarray(rgb), i)
    stream, decoded = decode_all(out)
    assert (stream.width, stream.height) == (768, 576)
    assert len(decoded) == 8
    rgb = decoded[0][1].astype(np.int16)
    source = frames[0].astype(np.int16)
    assert np.abs(rgb[:575, :767] - source).mean() < 6  # not scaled: pixels stay in place
    assert np.abs(rgb[:, 767] - rgb[:, 766]).mean() < 4  # the added column repeats the edge
    assert np.abs(rgb[575] - rgb[574]).mean() < 4  # and so does the added row


def test_writer_keeps_vfr_timestamps(tmp_path: Path) -> None:
    out = tmp_path / "vfr.mp4"
    pts = [0, 1, 3, 4, 7, 8, 20, 21, 22, 40]
    time_base = Fraction(1, 30)
    with VideoWriter(out, width=64, height=48, time_base=time_base, fps=30) as writer:
        for i, p in enumerate(pts):
            writer.write(np.full((48, 64, 3), 20 * i, dtype=np.uint8), p)
    _, decoded = decode_all(out)
    assert [t for t, _ in decoded] == pytest.approx([float(p * time_base) for p in pts], abs=1e-3)
    info = probe(out)
    assert [info.frame_time(i) for i in range(len(pts))] == pytest.approx(
        [float(p * time_base) for p in pts], abs=1e-3
    )


@pytest.mark.parametrize(
    ("name", "vcodec", "acodec", "out_codec"),
    [
        ("aac.mp4", "libx264", "aac", "aac"),  # copied
        ("mp3.avi", "mpeg4", "libmp3lame", "mp3"),  # copied (AVI's codec tag dropped)
        ("pcm.mkv", "mpeg4", "pcm_s16le", "aac"),  # MP4 cannot hold PCM: transcoded
        ("mp2.avi", "mpeg4", "mp2", "aac"),  # transcoded, from AVI's per-packet timestamps
    ],
)
def test_writer_keeps_audio(tmp_path: Path, name: str, vcodec: str, acodec: str, out_codec: str) -> None:
    src = make_clip(tmp_path / name, frames=20, vcodec=vcodec, audio=acodec)
    out = tmp_path / "with_audio.mp4"
    info = copy_through_writer(src, out)
    assert info.has_audio

    codec, rate, samples = decoded_audio(out)
    assert codec == out_codec
    assert len(samples) / rate == pytest.approx(2.0, abs=0.1)
    assert dominant_hz(samples, rate) == pytest.approx(440, abs=5)

    _, decoded = decode_all(out)
    assert len(decoded) == info.frame_count
    assert [t for t, _ in decoded] == pytest.approx(
        [info.frame_time(i) for i in range(info.frame_count)], abs=1e-3
    )
    assert top_level_boxes(out).index("moov") < top_level_boxes(out).index("mdat")
    with av.open(str(out)) as container:  # audio and video are interleaved in the file
        kinds = [p.stream.type for p in sorted(container.demux(), key=lambda p: p.pos or 0) if p.size]
    switches = sum(1 for a, b in pairwise(kinds) if a != b)
    assert switches >= 2


def test_writer_transcodes_audio_with_coarse_timestamps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # AVI stamps MP3 per packet (1152 samples); the AAC encoder cuts 1024-sample frames, so
    # timestamps must be recomputed in samples. Force the transcode path for MP3 to test it.
    monkeypatch.setattr("posepipe.media.audio.MP4_AUDIO_CODECS", frozenset({"aac"}))
    src = make_clip(tmp_path / "mp3.avi", frames=20, vcodec="mpeg4", audio="libmp3lame")
    out = tmp_path / "aac.mp4"
    copy_through_writer(src, out)
    codec, rate, samples = decoded_audio(out)
    assert codec == "aac"
    assert len(samples) / rate == pytest.approx(2.0, abs=0.1)
    assert dominant_hz(samples, rate) == pytest.approx(440, abs=5)


def test_writer_trims_audio_to_written_frames(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "long.mp4", frames=20, audio="aac")
    out = tmp_path / "first_second.mp4"
    copy_through_writer(src, out, stop=10)  # 1 s of video out of 2 s
    codec, rate, samples = decoded_audio(out)
    assert codec == "aac"
    assert len(samples) / rate == pytest.approx(1.0, abs=0.12)


def test_writer_trims_audio_before_first_frame(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "long.mp4", frames=20, audio="aac")
    info = probe(src)
    out = tmp_path / "second_second.mp4"
    with VideoWriter(out, width=96, height=64, time_base=info.time_base, fps=10, audio_from=src) as writer:
        for frame in read_frames(src, 10, info=info):  # frames at 1.0 .. 1.9 s
            writer.write(frame.rgb, info.frame_pts[frame.index])
    _, decoded = decode_all(out)
    assert decoded[0][0] == pytest.approx(1.0, abs=1e-3)  # source timing kept
    _, rate, samples = decoded_audio(out)
    assert len(samples) / rate == pytest.approx(1.0, abs=0.12)


def test_writer_without_audio_source_audio(tmp_path: Path, vtest: Path) -> None:
    out = tmp_path / "silent.mp4"
    with VideoWriter(out, width=32, height=32, time_base=Fraction(1, 10), fps=10, audio_from=vtest) as w:
        for i in range(3):
            w.write(np.zeros((32, 32, 3), dtype=np.uint8), i)
    with av.open(str(out)) as container:
        assert [s.type for s in container.streams] == ["video"]


def test_writer_rejects_misuse(tmp_path: Path) -> None:
    writer = VideoWriter(tmp_path / "x.mp4", width=32, height=32, time_base=Fraction(1, 10), fps=10)
    with pytest.raises(ValueError, match="shape"):
        writer.write(np.zeros((32, 30, 3), dtype=np.uint8), 0)
    writer.write(np.zeros((32, 32, 3), dtype=np.uint8), 5)
    with pytest.raises(ValueError, match="pts must increase"):
        writer.write(np.zeros((32, 32, 3), dtype=np.uint8), 5)
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write(np.zeros((32, 32, 3), dtype=np.uint8), 6)
    empty = VideoWriter(tmp_path / "y.mp4", width=32, height=32, time_base=Fraction(1, 10), fps=10)
    with pytest.raises(ValueError, match="no frames"):
        empty.close()


def test_probe_refuses_a_still_image(tmp_path: Path) -> None:
    from PIL import Image

    for name in ("photo.jpg", "photo.png"):
        Image.new("RGB", (64, 48), (200, 30, 30)).save(tmp_path / name)
        with pytest.raises(InputError, match=r"a still image, not a video \(use `posepipe image`\)"):
            probe(tmp_path / name)


@pytest.mark.parametrize("rotation", [None, 90])
def test_compact_frames_expand_to_the_very_rgb_read_frames_gave(tmp_path: Path, rotation: int | None) -> None:
    """What posepipe video keeps between inference and rendering: the decoder's 4:2:0 planes (half
    the bytes of RGB), made RGB again pixel for pixel, rotation included."""
    clip = make_clip(tmp_path / "clip.mp4", frames=12, size=(96, 64), noise=True, rotation=rotation)
    info = probe(clip)
    frames = list(read_frames(clip, 3, 12, info=info, compact=True))
    compact = [frame.compact for frame in frames]
    assert all(
        kept is not None and kept.planes.nbytes * 2 == frame.rgb.nbytes
        for kept, frame in zip(compact, frames, strict=True)
    )
    again = list(expand_frames([kept for kept in compact if kept is not None], info.rotation))
    assert [f.index for f in again] == [f.index for f in frames] == list(range(3, 12))
    for original, expanded in zip(frames, again, strict=True):
        assert expanded.t == original.t
        np.testing.assert_array_equal(expanded.rgb, original.rgb)
    assert all(frame.compact is None for frame in read_frames(clip, 0, 2, info=info))  # only when asked
