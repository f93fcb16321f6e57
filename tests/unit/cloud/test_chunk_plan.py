"""Chunks are planned by the endpoint's time per frame, decoding included: a 4K frame costs
more than a 1080p one, so that a chunk of 4K60 still fits SageMaker's 60 s."""

from __future__ import annotations

import pytest
from posepipe.cloud import deployment
from posepipe.cloud.config import PipelineConfig
from posepipe.cloud.video_job import chunk_work_seconds, frame_cost_ms, plan_video_chunks

GPU = PipelineConfig(frame_cost_ms=deployment.GPU_FRAME_COST_MS)
UHD, FHD = 3840 * 2160, 1920 * 1080


def test_a_4k_frame_costs_the_model_and_its_decoding() -> None:
    assert frame_cost_ms(GPU, 0) == deployment.GPU_FRAME_COST_MS
    assert frame_cost_ms(GPU, UHD) == pytest.approx(6.0 + 7.0 * 8.2944)


@pytest.mark.parametrize(("fps", "pixels"), [(60.0, UHD), (30.0, UHD), (60.0, FHD), (240.0, FHD)])
def test_every_chunk_s_frames_fit_the_invocation_time_at_their_cost(fps: float, pixels: int) -> None:
    chunks = plan_video_chunks(int(fps * 600), fps, GPU, pixels=pixels)
    work = max(c.stop - c.warmup_start for c in chunks)
    assert work * frame_cost_ms(GPU, pixels) <= GPU.invocation_seconds * 1000 * 1.02  # balanced, rounded
    assert chunk_work_seconds(GPU, fps, pixels) < chunk_work_seconds(GPU, fps, pixels // 4)


def test_without_a_frame_cost_only_chunk_seconds_bounds_a_chunk() -> None:
    config = PipelineConfig(frame_cost_ms=0.0, chunk_seconds=30)
    assert chunk_work_seconds(config, 60.0, UHD) == chunk_work_seconds(config, 60.0, 0) == 30
