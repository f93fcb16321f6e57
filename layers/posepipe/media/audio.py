"""A source's audio carried into an MP4 being written: copied where MP4 holds its codec, else
transcoded to AAC, kept to the span of the video written and interleaved with it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from fractions import Fraction

import av
import av.codec.hwaccel
import av.error
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer
from av.packet import Packet

from posepipe.media.sources import MediaSource, open_input

log = logging.getLogger(__name__)


# Audio codecs the MP4 muxer takes as they are (stream copy); anything else becomes AAC.
MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "opus", "alac", "ac3", "eac3", "flac"})


# Audio packets this close (seconds) outside the written video's span are still kept.
_AUDIO_MARGIN_S = 0.05


class AudioCopier:
    """Streams one file's audio into an output container, a packet at a time."""

    def __init__(self, output: OutputContainer, source: MediaSource) -> None:
        self._input: InputContainer | None = open_input(source)
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
