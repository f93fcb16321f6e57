"""``posepipe video --engine torch`` (the deployed GPU endpoint's code path: the top-down engine's
networks in PyTorch, batched) finds what the default CPU engine finds, on real video, on this CPU
and with PyTorch held to AVX2 (``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2``).

The clip is 12 s of vtest.avi (frames 480-600, 5 to 7 people walking), re-encoded here; the whole
video is bench/engine_parity.py's (docs/PERFORMANCE.md: 99.3 % matched, median 0.16 px).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import pytest
from posepipe.video.result_agreement import compare_results

pytestmark = [pytest.mark.slow, pytest.mark.torch]

FIRST, LAST = 480, 600
MIN_MATCHED = 0.95
MAX_MEDIAN_PX = 1.0
AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


@pytest.fixture(scope="module")
def crowd_clip(tmp_path_factory: pytest.TempPathFactory, sample: Callable[[str], Path]) -> Path:
    clip = tmp_path_factory.mktemp("clip") / "crowd.mp4"
    with av.open(str(sample("vtest.avi"))) as source, av.open(str(clip), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 768, 576, "yuv420p"
        stream.options = {"crf": "12"}
        for index, frame in enumerate(source.decode(video=0)):
            if index >= LAST:
                break
            if index >= FIRST:
                picture = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")
                out.mux(stream.encode(picture))
        out.mux(stream.encode(None))
    return clip


def video(clip: Path, out: Path, engine: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-m", "posepipe.cli", "video", str(clip), "-o", str(out), "--engine", engine,
         "--no-annotate", "--no-progress"],
        capture_output=True, text=True, timeout=900, env={**os.environ, **(env or {})},
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    result: dict[str, Any] = json.loads((out / clip.stem / "keypoints.json").read_text())
    return result


@pytest.fixture(scope="module")
def reference(crowd_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return video(crowd_clip, tmp_path_factory.mktemp("default"), "mediapipe")


@pytest.mark.parametrize("isa", ["default", "avx2"])
def test_the_torch_engine_finds_what_the_default_engine_finds(
    crowd_clip: Path, reference: dict[str, Any], tmp_path: Path, isa: str
) -> None:
    candidate = video(crowd_clip, tmp_path, "torch", AVX2 if isa == "avx2" else None)
    assert candidate["model"]["runtime"] == {
        "detector": "torch",
        "finder": "torch",
        "second_opinion": "torch",
    }
    assert reference["model"]["runtime"]["detector"] == "onnxruntime"
    report = compare_results(reference, candidate)
    assert report["reference_persons"] >= 500  # about 5 people in each of 120 frames
    assert report["matched_share"] >= MIN_MATCHED, report
    assert report["median_px"] <= MAX_MEDIAN_PX, report
