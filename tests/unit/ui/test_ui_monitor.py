"""posepipe.ui.monitor: counts, rendered FPS and rolling percentiles, with a clock the test sets."""

from __future__ import annotations

import threading

import pytest
from posepipe.ui.monitor import STAGES, FrameTiming, PerfMonitor, history_columns


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_counts_and_rendered_fps_over_the_last_seconds() -> None:
    clock = Clock()
    monitor = PerfMonitor(fps_window_s=2.0, clock=clock)
    assert monitor.snapshot().fps == 0.0
    for index in range(17):  # 17 frames 0.125 s apart: 16 intervals in 2 s
        if index:
            clock.now += 0.125
        monitor.frame_sent()
        monitor.frame_rendered()
    monitor.frame_dropped()
    snapshot = monitor.snapshot()
    assert snapshot.fps == pytest.approx(8.0)
    assert (snapshot.frames_sent, snapshot.frames_dropped, snapshot.frames_rendered) == (17, 1, 17)
    assert snapshot.drop_ratio == pytest.approx(1 / 18)
    clock.now += 1.0  # a stall: the 9 frames of the last 2 s, 8 intervals in 2 s
    assert monitor.snapshot().fps == pytest.approx(4.0)
    clock.now += 5.0  # nothing rendered lately
    assert monitor.snapshot().fps == 0.0
    assert monitor.snapshot().frames_rendered == 17  # the counts stay


def test_stage_percentiles_over_a_rolling_window() -> None:
    clock = Clock()
    monitor = PerfMonitor(window=100, clock=clock)
    assert monitor.snapshot().stages == {}
    for ms in range(1, 201):  # the window keeps the last 100: 101..200 ms of network
        monitor.record(FrameTiming(encode_s=0.002, network_s=ms / 1000, inference_s=0.030, draw_s=0.001))
        clock.now += 0.05
    snapshot = monitor.snapshot()
    assert snapshot.timings == 200
    assert set(snapshot.stages) == {*STAGES, "total"}
    assert snapshot.stages["network"].p50_ms == pytest.approx(150.5)
    assert snapshot.stages["network"].p95_ms == pytest.approx(195.05)
    assert snapshot.stages["inference"].p50_ms == pytest.approx(30.0)
    assert snapshot.stages["encode"].p95_ms == pytest.approx(2.0)
    assert snapshot.stages["total"].p50_ms == pytest.approx(150.5 + 33.0)


def test_history_for_the_chart_keeps_the_latest() -> None:
    clock = Clock()
    monitor = PerfMonitor(history=3, clock=clock)
    for index in range(5):
        clock.now += 1.0
        monitor.record(FrameTiming(0.001 * index, 0.010, 0.020, 0.003))
    snapshot = monitor.snapshot()
    assert [point.t_s for point in snapshot.history] == [3.0, 4.0, 5.0]
    assert history_columns(snapshot)["encode"] == pytest.approx([2.0, 3.0, 4.0])
    assert snapshot.history[-1].total_ms == pytest.approx(4.0 + 10.0 + 20.0 + 3.0)
    monitor.reset()
    assert monitor.snapshot().history == ()
    assert monitor.snapshot().timings == 0


def test_a_writer_thread_and_a_reader_see_consistent_counts() -> None:
    monitor = PerfMonitor()
    writers = 4
    frames = 2000

    def write() -> None:
        for _ in range(frames):
            monitor.frame_sent()
            monitor.record(FrameTiming(0.001, 0.002, 0.003, 0.004))
            monitor.frame_rendered()

    threads = [threading.Thread(target=write) for _ in range(writers)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        snapshot = monitor.snapshot()  # reading while they write
        assert snapshot.frames_rendered <= snapshot.frames_sent
    for thread in threads:
        thread.join()
    snapshot = monitor.snapshot()
    assert (snapshot.frames_sent, snapshot.frames_rendered, snapshot.timings) == (8000, 8000, 8000)
