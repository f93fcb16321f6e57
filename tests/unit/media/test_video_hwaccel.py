"""Hardware decoding (NVDEC) with fallback: ``posepipe.media.decode.read_frames(..., hwaccel="auto")``.

On a machine without a CUDA device (the dev machines) ``auto`` must fall back to software,
say why, and give exactly the frames software decoding gives; where a GPU is present the same
tests expect NVDEC for H.264 (whose decoding is exact, so the frames are still identical).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from posepipe.engines.base import InferenceOptions
from posepipe.media.decode import DecodeReport, nvdec_unavailable_reason, read_frames
from posepipe.media.probe import probe
from posepipe.video.stages import Chunk, infer_chunk

from tests.support.clips import make_clip


def cuda_device_present() -> bool:
    return Path("/dev/nvidia0").exists()


@pytest.fixture(scope="module")
def h264_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("hwaccel") / "clip.mp4", frames=30, size=(160, 96), noise=True)


@pytest.mark.parametrize("start", [0, 17])
def test_auto_decodes_the_same_frames_and_says_which_decoder_ran(h264_clip: Path, start: int) -> None:
    report = DecodeReport()
    accelerated = list(read_frames(h264_clip, start, 30, hwaccel="auto", report=report))
    software = DecodeReport()
    plain = list(read_frames(h264_clip, start, 30, report=software))
    assert [f.index for f in accelerated] == [f.index for f in plain] == list(range(start, 30))
    for a, b in zip(accelerated, plain, strict=True):
        assert a.t == b.t
        np.testing.assert_array_equal(a.rgb, b.rgb)
    assert software == DecodeReport(decoder="software", reason="")
    if cuda_device_present():
        assert report == DecodeReport(decoder="nvdec", reason="")
    else:
        assert report.decoder == "software"
        assert report.reason.startswith("no CUDA device for NVDEC") or "no CUDA hwaccel" in report.reason
        # Found out once per process: later opens do not try again.
        assert nvdec_unavailable_reason() == report.reason


def test_a_codec_nvdec_cannot_decode_falls_back_too(sample: Callable[[str], Path]) -> None:
    video = sample("vtest.avi")  # MPEG-4 part 2 (msmpeg4v3): not an NVDEC codec
    report = DecodeReport()
    accelerated = [f.rgb for f in read_frames(video, 100, 110, hwaccel="auto", report=report)]
    plain = [f.rgb for f in read_frames(video, 100, 110)]
    assert report.decoder == "software"
    assert report.reason
    for a, b in zip(accelerated, plain, strict=True):
        np.testing.assert_array_equal(a, b)


def test_hwaccel_choices_are_checked(h264_clip: Path) -> None:
    with pytest.raises(ValueError, match="hwaccel must be one of none, auto"):
        list(read_frames(h264_clip, 0, 2, hwaccel="cuda"))  # type: ignore[arg-type]


def test_infer_chunk_records_the_decoder_when_asked_for_hardware(h264_clip: Path, model_path: Path) -> None:
    info = probe(h264_clip)
    chunk = Chunk(index=0, start=0, stop=5, warmup_start=0)
    options = InferenceOptions(model_path=str(model_path), max_poses=1)
    auto = infer_chunk(h264_clip, chunk, options, info=info, hwaccel="auto")
    assert auto.timings["nvdec"] == (1.0 if cuda_device_present() else 0.0)
    assert "nvdec" not in infer_chunk(h264_clip, chunk, options, info=info).timings
