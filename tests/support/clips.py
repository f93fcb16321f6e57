"""Small real media made for tests: clips with audio, rotation, odd sizes; audio-only files."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt


def sine(seconds: float, rate: int, channels: int, hz: float = 440.0) -> npt.NDArray[np.float32]:
    t = np.arange(int(seconds * rate)) / rate
    wave = (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    return np.ascontiguousarray(np.tile(wave, (channels, 1)))


def make_clip(
    path: Path,
    *,
    frames: int = 20,
    size: tuple[int, int] = (96, 64),
    fps: int = 10,
    vcodec: str = "libx264",
    audio: str | None = None,
    audio_rate: int = 44100,
    seconds: float | None = None,
    rotation: int | None = None,
    faststart: bool = False,
    noise: bool = False,
) -> Path:
    """A small clip: a moving gradient (or noise), optional 440 Hz audio and display rotation.

    ``rotation`` is clockwise degrees for display (what probe reports); PyAV's
    ``set_display_rotation`` takes counter-clockwise degrees, hence the minus.
    """
    width, height = size
    rng = np.random.default_rng(1)
    options = {"movflags": "+faststart"} if faststart else None
    with av.open(str(path), "w", container_options=options) as out:
        video = out.add_stream(vcodec, rate=fps)
        assert isinstance(video, av.VideoStream)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        if rotation is not None:
            video.set_display_rotation(-rotation)
        sound = out.add_stream(audio, rate=audio_rate, layout="mono") if audio else None
        assert sound is None or isinstance(sound, av.AudioStream)
        ramp = np.linspace(0, 200, width, dtype=np.float32)[None, :, None]
        for i in range(frames):
            if noise:
                img = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            else:
                img = np.broadcast_to((ramp + 5 * i) % 256, (height, width, 3)).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            samples = sine(seconds if seconds is not None else frames / fps, audio_rate, 1)
            step = 1152
            for s0 in range(0, samples.shape[1], step):
                chunk = np.ascontiguousarray(samples[:, s0 : s0 + step])
                af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                af.sample_rate, af.pts, af.time_base = audio_rate, s0, Fraction(1, audio_rate)
                out.mux(sound.encode(af))
            out.mux(sound.encode(None))
    return path


def make_audio_only(path: Path, codec: str) -> Path:
    with av.open(str(path), "w") as out:
        sound = out.add_stream(codec, rate=22050, layout="mono")
        assert isinstance(sound, av.AudioStream)
        samples = sine(0.5, 22050, 1)
        af = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        af.sample_rate, af.pts, af.time_base = 22050, 0, Fraction(1, 22050)
        out.mux(sound.encode(af))
        out.mux(sound.encode(None))
    return path


def encode_frames(
    path: Path,
    frames: list[npt.NDArray[np.uint8]],
    *,
    fps: int = 10,
    rotation: int | None = None,
    audio: bool = False,
    size: tuple[int, int] | None = None,
    vcodec: str = "libx264",
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
) -> Path:
    """Encode real pictures (upright RGB) as an H.264 MP4 (or ``vcodec`` in ``pix_fmt``, with the
    encoder's ``options``).

    With ``size`` (width, height), each picture is scaled up to fit it and centred on black
    (:func:`letterbox`), one at a time, so that a 4K clip is not held in memory.

    With ``rotation`` (clockwise degrees for display), the pictures are stored turned the other
    way, as a phone stores a portrait video, and the display matrix says how to show them.
    With ``audio``, a 440 Hz AAC track as long as the video.
    """
    turns = {None: 0, 0: 0, 90: 1, 180: 2, 270: 3}[rotation]

    def stored(f: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        picture = letterbox(f, size)[0] if size else f
        return np.ascontiguousarray(np.rot90(picture, turns))  # rot90 turns anticlockwise

    with av.open(str(path), "w") as out:
        video = out.add_stream(vcodec, rate=fps)
        assert isinstance(video, av.VideoStream)
        video.height, video.width = stored(frames[0]).shape[:2]
        video.pix_fmt = pix_fmt
        video.options = dict(options or {})
        if rotation:
            video.set_display_rotation(-rotation)
        sound = out.add_stream("aac", rate=44100, layout="mono") if audio else None
        for i, picture in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(stored(picture), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if isinstance(sound, av.AudioStream):
            samples = sine(len(frames) / fps, 44100, 1)
            for s0 in range(0, samples.shape[1], 1024):
                chunk = np.ascontiguousarray(samples[:, s0 : s0 + 1024])
                af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                af.sample_rate, af.pts, af.time_base = 44100, s0, Fraction(1, 44100)
                out.mux(sound.encode(af))
            out.mux(sound.encode(None))
    return path


def decoded_frames(path: Path, start: int, count: int) -> list[npt.NDArray[np.uint8]]:
    """Frames ``start`` to ``start + count`` of the video at ``path``, as RGB pictures."""
    frames: list[npt.NDArray[np.uint8]] = []
    with av.open(str(path)) as video:
        for index, frame in enumerate(video.decode(video=0)):
            if index >= start:
                frames.append(np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8))
            if len(frames) == count:
                break
    return frames


def letterbox(
    picture: npt.NDArray[np.uint8], size: tuple[int, int]
) -> tuple[npt.NDArray[np.uint8], float, tuple[int, int]]:
    """``picture`` scaled to fit ``size`` (width, height) and centred on black: the new picture,
    the scale and the (x, y) offset of its top-left corner."""
    import cv2

    width, height = size
    scale = min(width / picture.shape[1], height / picture.shape[0])
    w, h = round(picture.shape[1] * scale), round(picture.shape[0] * scale)
    x, y = (width - w) // 2, (height - h) // 2
    canvas = np.zeros((height, width, 3), np.uint8)
    canvas[y : y + h, x : x + w] = cv2.resize(picture, (w, h), interpolation=cv2.INTER_CUBIC)
    return canvas, scale, (x, y)


def make_long_clip(path: Path, *, seconds: int, fps: int = 1, size: tuple[int, int] = (160, 120)) -> Path:
    """A long H.264 MP4 (its ``moov`` index at the end, as a camera writes it) of noise frames at
    about 32 kbit/s: 4 hours at 1 fps are about 58 MB, encoded in seconds."""
    width, height = size
    rng = np.random.default_rng(4)
    pool = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(8)]
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        assert isinstance(video, av.VideoStream)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.bit_rate = 32_000
        for i in range(seconds * fps):
            frame = av.VideoFrame.from_ndarray(pool[i % len(pool)], format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
    return path


def pad_mp4(source: Path, path: Path, total_bytes: int) -> Path:
    """``source`` (an MP4) grown to ``total_bytes`` by a top-level ``free`` box at its end: a file
    as large as a test needs (a multipart upload) whose video is still ``source``'s few frames
    (demuxers skip ``free`` boxes, ISO/IEC 14496-12 8.1.2)."""
    data = source.read_bytes()
    padding = total_bytes - len(data)
    if not 8 <= padding < 2**32:
        raise ValueError(f"cannot pad {len(data)} bytes to {total_bytes} with one 32-bit free box")
    with path.open("wb") as out:
        out.write(data)
        out.write(padding.to_bytes(4, "big") + b"free")
        block = bytes(1024 * 1024)
        left = padding - 8
        while left:
            out.write(block[: min(left, len(block))])
            left -= min(left, len(block))
    return path
